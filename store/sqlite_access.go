package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// accessSchema is schema version 2: what the access IVR (issue 3) keeps.
// Rows go with their mailbox (ON DELETE CASCADE), so a mailbox created
// again under the same number starts clean.
const accessSchema = `
CREATE TABLE login_failures (
	tenant  TEXT NOT NULL,
	mailbox TEXT NOT NULL,
	at      INTEGER NOT NULL, -- unix nanoseconds, UTC
	FOREIGN KEY (tenant, mailbox) REFERENCES mailboxes(tenant, number) ON DELETE CASCADE
) STRICT;
CREATE INDEX login_failures_by_mailbox ON login_failures(tenant, mailbox, at);

CREATE TABLE login_locks (
	tenant       TEXT NOT NULL,
	mailbox      TEXT NOT NULL,
	locked_until INTEGER NOT NULL, -- unix nanoseconds, UTC
	PRIMARY KEY (tenant, mailbox),
	FOREIGN KEY (tenant, mailbox) REFERENCES mailboxes(tenant, number) ON DELETE CASCADE
) STRICT;
`

func (s *sqlStore) RecordLoginFailure(ctx context.Context, tenant, mailbox string, at time.Time) (int, error) {
	where := tenant + "/" + mailbox
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: record login failure %s: %w", where, err)
	}
	defer tx.Rollback()
	var one int
	// Locking the mailbox row serialises concurrent failures of one mailbox
	// on PostgreSQL, so that each counts the others (SQLite has one writer).
	lock := ""
	if s.d == dialectPostgres {
		lock = " FOR UPDATE"
	}
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM mailboxes WHERE tenant = ? AND number = ?`+lock, tenant, mailbox).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("store: record login failure: mailbox %s: %w", where, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("store: record login failure %s: %w", where, err)
	}
	t := at.UTC().UnixNano()
	from := at.Add(-LoginFailureWindow).UTC().UnixNano()
	if _, err := tx.ExecContext(ctx, `DELETE FROM login_failures WHERE tenant = ? AND mailbox = ? AND at <= ?`,
		tenant, mailbox, from); err != nil {
		return 0, fmt.Errorf("store: record login failure %s: %w", where, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO login_failures (tenant, mailbox, at) VALUES (?, ?, ?)`,
		tenant, mailbox, t); err != nil {
		return 0, fmt.Errorf("store: record login failure %s: %w", where, err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM login_failures
WHERE tenant = ? AND mailbox = ? AND at > ? AND at <= ?`, tenant, mailbox, from, t).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: record login failure %s: %w", where, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: record login failure %s: commit: %w", where, err)
	}
	return n, nil
}

func (s *sqlStore) LockLogin(ctx context.Context, tenant, mailbox string, until time.Time) error {
	where := tenant + "/" + mailbox
	// INSERT … SELECT inserts nothing when the mailbox does not exist.
	res, err := s.w.ExecContext(ctx, `INSERT INTO login_locks (tenant, mailbox, locked_until)
SELECT tenant, number, ? FROM mailboxes WHERE tenant = ? AND number = ?
ON CONFLICT (tenant, mailbox) DO UPDATE SET locked_until = `+s.d.greatest()+`(login_locks.locked_until, excluded.locked_until)`,
		until.UTC().UnixNano(), tenant, mailbox)
	if err != nil {
		return fmt.Errorf("store: lock login %s: %w", where, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: lock login %s: %w", where, err)
	} else if n == 0 {
		return fmt.Errorf("store: lock login: mailbox %s: %w", where, ErrNotFound)
	}
	return nil
}

func (s *sqlStore) LoginLockedUntil(ctx context.Context, tenant, mailbox string) (time.Time, error) {
	var until int64
	err := s.r.QueryRowContext(ctx, `SELECT locked_until FROM login_locks WHERE tenant = ? AND mailbox = ?`,
		tenant, mailbox).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: login lock of %s/%s: %w", tenant, mailbox, err)
	}
	return fromNanos(until), nil
}

func (s *sqlStore) ClearLoginFailures(ctx context.Context, tenant, mailbox string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: clear login failures %s/%s: %w", tenant, mailbox, err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		`DELETE FROM login_failures WHERE tenant = ? AND mailbox = ?`,
		`DELETE FROM login_locks WHERE tenant = ? AND mailbox = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, tenant, mailbox); err != nil {
			return fmt.Errorf("store: clear login failures %s/%s: %w", tenant, mailbox, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: clear login failures %s/%s: commit: %w", tenant, mailbox, err)
	}
	return nil
}
