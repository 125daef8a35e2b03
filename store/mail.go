package store

import (
	"context"
	"time"
)

// MailStore keeps the email outbox (docs/email.md): a mail is queued with its
// message and retried until the SMTP server accepts it.
//
// One outbox row per message (and the recipient list the mailbox had when
// the message arrived). A row is "pending" until the SMTP server accepted
// the mail, then "sent"; sent rows are kept for a while so that the start-up
// reconciliation (UnmailedMessages) can tell a mailed message from one whose
// row was never written (a crash between the message and its row).
type MailStore interface {
	// EnqueueMail inserts a pending row. It sets ID, Status ("pending"),
	// CreatedAt and, when zero, NextAttemptAt (now). ErrExists if the
	// message already has a row (so enqueueing is idempotent).
	EnqueueMail(ctx context.Context, m *OutboxMail) error
	// GetMail returns the row of a message. ErrNotFound.
	GetMail(ctx context.Context, messageID string) (*OutboxMail, error)
	// DueMail returns up to limit (0 = 100) pending rows whose
	// NextAttemptAt is not after now, the longest-waiting first.
	DueMail(ctx context.Context, now time.Time, limit int) ([]OutboxMail, error)
	// ClaimMail is DueMail for senders that share the outbox with other
	// instances: it also leases the rows (store/claims.go).
	ClaimMail(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OutboxMail, error)
	// NextMailAttempt returns the earliest NextAttemptAt of the pending
	// rows; ErrNotFound when none is pending.
	NextMailAttempt(ctx context.Context) (time.Time, error)
	// PendingMail counts the pending rows.
	PendingMail(ctx context.Context) (int, error)
	// RetryMail records a failed attempt: Attempts+1, LastError, the next
	// attempt time. ErrNotFound if the row is gone or no longer pending.
	RetryMail(ctx context.Context, id int64, next time.Time, lastErr string) error
	// MarkMailSent records that the SMTP server accepted the mail. ErrNotFound.
	MarkMailSent(ctx context.Context, id int64, at time.Time) error
	// DropMail deletes a row (its message is gone). Missing = nil.
	DropMail(ctx context.Context, id int64) error
	// PurgeSentMail deletes sent rows sent before t and returns how many.
	PurgeSentMail(ctx context.Context, before time.Time) (int, error)
	// UnmailedMessages returns the messages received at or after since, in
	// mailboxes that have an email address, that have no outbox row (any
	// status), ordered by ID.
	UnmailedMessages(ctx context.Context, since time.Time) ([]Message, error)
}

// Outbox row states.
const (
	MailPending = "pending"
	MailSent    = "sent"
)

// OutboxMail is one queued notification mail.
type OutboxMail struct {
	ID                            int64
	MessageID, Tenant, Mailbox    string
	Recipients                    []string // addresses, as the mailbox listed them
	AttachAudio, DeleteAfterEmail bool     // the mailbox's settings when the message arrived
	Status                        string   // MailPending | MailSent
	Attempts                      int
	NextAttemptAt                 time.Time
	LastError                     string
	CreatedAt, SentAt             time.Time // SentAt is zero while pending
}
