package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// mailSchema is schema version 5: the email outbox (issue 7). No foreign
// key to messages: a message deleted while its mail waits leaves the row,
// which the sender then drops with a log line.
const mailSchema = `
CREATE TABLE mail_outbox (
	id               INTEGER PRIMARY KEY AUTOINCREMENT,
	message_id       TEXT NOT NULL UNIQUE,
	tenant           TEXT NOT NULL,
	mailbox          TEXT NOT NULL,
	recipients       TEXT NOT NULL DEFAULT '[]', -- JSON array of addresses
	attach_audio     INTEGER NOT NULL DEFAULT 0,
	delete_after     INTEGER NOT NULL DEFAULT 0,
	status           TEXT NOT NULL DEFAULT 'pending', -- pending | sent
	attempts         INTEGER NOT NULL DEFAULT 0,
	next_attempt_at  INTEGER NOT NULL, -- unix nanoseconds, UTC
	last_error       TEXT NOT NULL DEFAULT '',
	created_at       INTEGER NOT NULL,
	sent_at          INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX mail_outbox_due ON mail_outbox(status, next_attempt_at);
`

const outboxCols = `id, message_id, tenant, mailbox, recipients, attach_audio, delete_after,
status, attempts, next_attempt_at, last_error, created_at, sent_at`

func scanOutbox(sc scanner) (OutboxMail, error) {
	var (
		m                   OutboxMail
		rcpts               string
		next, created, sent int64
	)
	err := sc.Scan(&m.ID, &m.MessageID, &m.Tenant, &m.Mailbox, &rcpts, &m.AttachAudio,
		&m.DeleteAfterEmail, &m.Status, &m.Attempts, &next, &m.LastError, &created, &sent)
	if err != nil {
		return OutboxMail{}, err
	}
	if m.Recipients, err = decodeList(rcpts); err != nil {
		return OutboxMail{}, err
	}
	m.NextAttemptAt, m.CreatedAt = fromNanos(next), fromNanos(created)
	if sent != 0 {
		m.SentAt = fromNanos(sent)
	}
	return m, nil
}

func (s *sqlStore) EnqueueMail(ctx context.Context, m *OutboxMail) error {
	if m.MessageID == "" || m.Tenant == "" || m.Mailbox == "" {
		return fmt.Errorf("store: enqueue mail: message, tenant and mailbox are required")
	}
	if len(m.Recipients) == 0 {
		return fmt.Errorf("store: enqueue mail for message %s: no recipient", m.MessageID)
	}
	now := time.Now().UTC()
	if m.NextAttemptAt.IsZero() {
		m.NextAttemptAt = now
	}
	err := s.w.QueryRowContext(ctx, `INSERT INTO mail_outbox
(message_id, tenant, mailbox, recipients, attach_audio, delete_after, status, attempts,
 next_attempt_at, last_error, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, '', ?) RETURNING id`,
		m.MessageID, m.Tenant, m.Mailbox, encodeList(m.Recipients), m.AttachAudio, m.DeleteAfterEmail,
		MailPending, m.NextAttemptAt.UTC().UnixNano(), now.UnixNano()).Scan(&m.ID)
	if isConflict(err) {
		return fmt.Errorf("store: enqueue mail for message %s: %w", m.MessageID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: enqueue mail for message %s: %w", m.MessageID, err)
	}
	m.Status, m.Attempts, m.LastError, m.CreatedAt, m.SentAt = MailPending, 0, "", now, time.Time{}
	return nil
}

func (s *sqlStore) GetMail(ctx context.Context, messageID string) (*OutboxMail, error) {
	m, err := scanOutbox(s.r.QueryRowContext(ctx,
		`SELECT `+outboxCols+` FROM mail_outbox WHERE message_id = ?`, messageID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: mail for message %s: %w", messageID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get mail for message %s: %w", messageID, err)
	}
	return &m, nil
}

func (s *sqlStore) DueMail(ctx context.Context, now time.Time, limit int) ([]OutboxMail, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+outboxCols+` FROM mail_outbox
WHERE status = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`,
		MailPending, now.UTC().UnixNano(), pageSize(limit))
	if err != nil {
		return nil, fmt.Errorf("store: due mail: %w", err)
	}
	out, err := collect(rows, scanOutbox)
	if err != nil {
		return nil, fmt.Errorf("store: due mail: %w", err)
	}
	return out, nil
}

func (s *sqlStore) NextMailAttempt(ctx context.Context) (time.Time, error) {
	var next sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT min(next_attempt_at) FROM mail_outbox WHERE status = ?`,
		MailPending).Scan(&next)
	if err != nil {
		return time.Time{}, fmt.Errorf("store: next mail attempt: %w", err)
	}
	if !next.Valid {
		return time.Time{}, fmt.Errorf("store: next mail attempt: no pending mail: %w", ErrNotFound)
	}
	return fromNanos(next.Int64), nil
}

func (s *sqlStore) PendingMail(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM mail_outbox WHERE status = ?`,
		MailPending).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count pending mail: %w", err)
	}
	return n, nil
}

func (s *sqlStore) RetryMail(ctx context.Context, id int64, next time.Time, lastErr string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE mail_outbox
SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?
WHERE id = ? AND status = ?`, next.UTC().UnixNano(), lastErr, id, MailPending)
	if err != nil {
		return fmt.Errorf("store: retry mail %d: %w", id, err)
	}
	return mustAffect(res, "pending mail", fmt.Sprint(id))
}

func (s *sqlStore) MarkMailSent(ctx context.Context, id int64, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE mail_outbox
SET status = ?, sent_at = ?, attempts = attempts + 1, last_error = '' WHERE id = ?`,
		MailSent, at.UTC().UnixNano(), id)
	if err != nil {
		return fmt.Errorf("store: mark mail %d sent: %w", id, err)
	}
	return mustAffect(res, "mail", fmt.Sprint(id))
}

func (s *sqlStore) DropMail(ctx context.Context, id int64) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM mail_outbox WHERE id = ?`, id); err != nil {
		return fmt.Errorf("store: drop mail %d: %w", id, err)
	}
	return nil
}

func (s *sqlStore) PurgeSentMail(ctx context.Context, before time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM mail_outbox WHERE status = ? AND sent_at < ?`,
		MailSent, before.UTC().UnixNano())
	if err != nil {
		return 0, fmt.Errorf("store: purge sent mail: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: purge sent mail: %w", err)
	}
	return int(n), nil
}

func (s *sqlStore) UnmailedMessages(ctx context.Context, since time.Time) ([]Message, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+messageCols+` FROM messages m
WHERE m.received_at >= ?
  AND EXISTS (SELECT 1 FROM mailboxes b WHERE b.tenant = m.tenant AND b.number = m.mailbox AND trim(b.email) != '')
  AND NOT EXISTS (SELECT 1 FROM mail_outbox o WHERE o.message_id = m.id)
ORDER BY m.id`, since.UTC().UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: unmailed messages: %w", err)
	}
	out, err := collect(rows, scanMessage)
	if err != nil {
		return nil, fmt.Errorf("store: unmailed messages: %w", err)
	}
	return out, nil
}
