package store

import (
	"context"
	"errors"
	"time"
)

// ErrPurged is returned (wrapped) by UndoForget when nothing of the caller
// is hidden any more because the grace period ended and it was purged.
var ErrPurged = errors.New("store: already purged")

// Forget is one Forget Me of one caller number (docs/gdpr.md).
type Forget struct {
	ID        string    // the operation's id (one per request contact)
	Tenant    string    // "" = every tenant
	E164      string    // the caller, "+<digits>"
	PhoneHash string    // keyed hash of E164: the only trace kept after the purge
	At        time.Time // when the messages were hidden (the grace counts from here)
}

// GDPRAudit is one line of the audit trail: who did which operation, when,
// on how many messages. The contact is a keyed hash, never in clear.
type GDPRAudit struct {
	ID          int64
	At          time.Time
	Actor       string // "operator", "tenant:<name>:<token id>", "drop-folder", …
	Operation   string // "export", "forget", "undo", "purge", "retention"
	RequestCase string
	Scope       string // the tenant, or "" for every tenant
	ContactKind string // "phone", "email", "ipaddr", …
	ContactHash string // keyed hash (HMAC-SHA256) of the normalised contact
	Response    string // "SUCCESS", "SUCCESS: not found", "ERROR: …"
	Messages    int
}

// GDPRStore finds, hides, restores and purges messages by caller number
// (docs/gdpr.md), keeps the audit trail, and serves retention (docs/gdpr.md).
//
// A caller matches a number "+<digits>" when its E.164 form is that number
// or when it was received as exactly "+<digits>" or "<digits>". Lookups use
// indexes on caller_e164 and caller_id, never a scan of every mailbox.
// Forgotten messages move to a hidden table: every query of the messages
// table (IVR, API, counts, MWI, mail) stops seeing them at once.
type GDPRStore interface {
	// MessagesByCaller returns the visible messages of the caller e164 in
	// tenant ("" = every tenant), ordered by ID.
	MessagesByCaller(ctx context.Context, tenant, e164 string) ([]Message, error)
	// ForgetCaller hides the caller's visible messages in f.Tenant in one
	// transaction and records a tombstone per tenant touched (keyed by
	// f.PhoneHash). It returns the hidden messages (none is no error).
	ForgetCaller(ctx context.Context, f Forget) ([]Message, error)
	// UndoForget restores the caller's hidden messages in tenant ("" =
	// every tenant) whose mailbox still exists, and returns them. When none
	// is hidden but a purged tombstone of phoneHash exists in scope, it
	// returns ErrPurged.
	UndoForget(ctx context.Context, tenant, e164, phoneHash string) ([]Message, error)
	// ForgottenBefore returns up to limit (0 = 1000) hidden messages hidden
	// before t, oldest first.
	ForgottenBefore(ctx context.Context, t time.Time, limit int) ([]Message, error)
	// PurgeForgotten deletes the hidden rows ids (their audio already
	// removed by the caller) and marks a tombstone purged when none of its
	// rows remain. Absent ids are skipped.
	PurgeForgotten(ctx context.Context, ids []string) error
	// CountForgotten counts the hidden messages.
	CountForgotten(ctx context.Context) (int, error)

	// AddGDPRAudit appends a to the audit trail and sets its ID (and At when zero).
	AddGDPRAudit(ctx context.Context, a *GDPRAudit) error
	// ListGDPRAudit returns up to limit (0 = 100) lines with ID > after, oldest first.
	ListGDPRAudit(ctx context.Context, after int64, limit int) ([]GDPRAudit, error)

	// SetTenantRetention sets the tenant's default retention in days (0 =
	// keep); days < 0 removes it (the global default applies).
	// ErrNotFound if the tenant does not exist.
	SetTenantRetention(ctx context.Context, tenant string, days int) error
	// TenantRetention returns the tenant's default; ok is false when unset.
	TenantRetention(ctx context.Context, tenant string) (days int, ok bool, err error)
	// ExpiredMessages returns up to limit (0 = 1000) messages older than
	// their retention at now, ordered by ID: the mailbox's retention_days
	// when > 0, else the tenant's default when set, else defaultDays; 0
	// days keeps messages for ever.
	ExpiredMessages(ctx context.Context, now time.Time, defaultDays, limit int) ([]Message, error)
	// DeleteMessages deletes the rows of msgs (by tenant, mailbox and ID)
	// in one transaction, each with its change event as DeleteMessage
	// writes it, and returns the rows deleted; absent ones are skipped.
	// The caller deletes the media. The retention sweep uses it so that a
	// batch costs one commit, not one per message.
	DeleteMessages(ctx context.Context, msgs []Message) ([]Message, error)
	// TidyMessages brings the planner's view of the messages table up to
	// date after a large deletion: VACUUM (ANALYZE) on PostgreSQL, so that
	// the MWI counts stay index-only; PRAGMA optimize on SQLite.
	TidyMessages(ctx context.Context) error
}
