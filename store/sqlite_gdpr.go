package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// gdprSchema is schema version 6: GDPR and retention (issue 6).
//
// Forgotten messages move from messages to gdpr_hidden (same columns plus
// the forget), so every existing query of messages stops seeing them in the
// same transaction; undo moves them back. The purge deletes the hidden row
// (caller id included) and leaves only a tombstone keyed by a keyed hash of
// the number, which lets a late undo answer "already purged".
const gdprSchema = `
CREATE INDEX messages_by_e164 ON messages(caller_e164);
CREATE INDEX messages_by_caller_id ON messages(caller_id);
CREATE INDEX messages_by_received ON messages(received_at);

CREATE TABLE gdpr_hidden (
	id          TEXT PRIMARY KEY,
	tenant      TEXT NOT NULL,
	mailbox     TEXT NOT NULL,
	folder      TEXT NOT NULL,
	caller_id   TEXT NOT NULL DEFAULT '',
	caller_e164 TEXT NOT NULL DEFAULT '',
	caller_name TEXT NOT NULL DEFAULT '',
	received_at INTEGER NOT NULL,
	duration_ms INTEGER NOT NULL DEFAULT 0,
	urgent      INTEGER NOT NULL DEFAULT 0,
	read        INTEGER NOT NULL DEFAULT 0,
	size        INTEGER NOT NULL DEFAULT 0,
	media_key   TEXT NOT NULL,
	forget_id   TEXT NOT NULL,
	hidden_at   INTEGER NOT NULL -- unix nanoseconds, UTC
) STRICT;
CREATE INDEX gdpr_hidden_by_e164 ON gdpr_hidden(caller_e164);
CREATE INDEX gdpr_hidden_by_caller_id ON gdpr_hidden(caller_id);
CREATE INDEX gdpr_hidden_by_time ON gdpr_hidden(hidden_at);
CREATE INDEX gdpr_hidden_by_forget ON gdpr_hidden(forget_id, tenant);

CREATE TABLE gdpr_forgets (
	id           TEXT NOT NULL,
	tenant       TEXT NOT NULL,
	phone_hash   TEXT NOT NULL,  -- keyed hash; the number is never kept here
	forgotten_at INTEGER NOT NULL,
	messages     INTEGER NOT NULL,
	state        TEXT NOT NULL,  -- hidden | undone | purged
	done_at      INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (id, tenant)
) STRICT;
CREATE INDEX gdpr_forgets_by_hash ON gdpr_forgets(phone_hash);

CREATE TABLE gdpr_audit (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	at           INTEGER NOT NULL,
	actor        TEXT NOT NULL,
	operation    TEXT NOT NULL,
	request_case TEXT NOT NULL DEFAULT '',
	scope        TEXT NOT NULL DEFAULT '',
	contact_kind TEXT NOT NULL DEFAULT '',
	contact_hash TEXT NOT NULL DEFAULT '',
	response     TEXT NOT NULL DEFAULT '',
	messages     INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE tenant_retention (
	tenant TEXT PRIMARY KEY REFERENCES tenants(name) ON DELETE CASCADE,
	days   INTEGER NOT NULL
) STRICT;
`

const hiddenCols = messageCols + `, forget_id, hidden_at`

// callerWhere matches the caller e164 ("+<digits>") in the columns of alias
// a, within tenant ("" = every tenant).
func callerWhere(d dialect, a, tenant, e164 string) (string, []any, error) {
	if len(e164) < 2 || e164[0] != '+' || strings.Trim(e164[1:], "0123456789") != "" {
		return "", nil, fmt.Errorf("store: caller %q is not an E.164 number", e164)
	}
	where := "(" + a + ".caller_e164 = ? OR " + a + ".caller_id = ? OR " + a + ".caller_id = ?)"
	args := []any{e164, e164, e164[1:]}
	if tenant != "" {
		// SQLite's unary + keeps its planner on the caller indexes: a
		// tenant may hold most of the messages, a caller only a few.
		// PostgreSQL's planner weighs that from its statistics.
		plus := "+"
		if d == dialectPostgres {
			plus = ""
		}
		where += " AND " + plus + a + ".tenant = ?"
		args = append(args, tenant)
	}
	return where, args, nil
}

func (s *sqlStore) MessagesByCaller(ctx context.Context, tenant, e164 string) ([]Message, error) {
	where, args, err := callerWhere(s.d, "m", tenant, e164)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+messageCols+` FROM messages m WHERE `+where+` ORDER BY m.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: messages by caller: %w", err)
	}
	out, err := collect(rows, scanMessage)
	if err != nil {
		return nil, fmt.Errorf("store: messages by caller: %w", err)
	}
	return out, nil
}

func (s *sqlStore) ForgetCaller(ctx context.Context, f Forget) ([]Message, error) {
	where, args, err := callerWhere(s.d, "m", f.Tenant, f.E164)
	if err != nil {
		return nil, err
	}
	if f.ID == "" || f.PhoneHash == "" {
		return nil, errors.New("store: forget: id and phone hash are required")
	}
	at := f.At
	if at.IsZero() {
		at = time.Now()
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: forget: %w", err)
	}
	defer tx.Rollback()
	// Copy, then delete: one transaction, so nobody sees both or neither.
	if _, err := tx.ExecContext(ctx, `INSERT INTO gdpr_hidden (`+hiddenCols+`)
SELECT `+messageCols+`, ?, ? FROM messages m WHERE `+where,
		append([]any{f.ID, at.UTC().UnixNano()}, args...)...); err != nil {
		return nil, fmt.Errorf("store: forget: hide: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `DELETE FROM messages WHERE id IN
(SELECT id FROM gdpr_hidden WHERE forget_id = ?) RETURNING `+messageCols, f.ID)
	if err != nil {
		return nil, fmt.Errorf("store: forget: %w", err)
	}
	msgs, err := collect(rows, scanMessage)
	if err != nil {
		return nil, fmt.Errorf("store: forget: %w", err)
	}
	perTenant := map[string]int{}
	for _, m := range msgs {
		perTenant[m.Tenant]++
	}
	for t, n := range perTenant {
		if _, err := tx.ExecContext(ctx, `INSERT INTO gdpr_forgets (id, tenant, phone_hash, forgotten_at, messages, state)
VALUES (?, ?, ?, ?, ?, 'hidden')`, f.ID, t, f.PhoneHash, at.UTC().UnixNano(), n); err != nil {
			return nil, fmt.Errorf("store: forget: tombstone: %w", err)
		}
	}
	sortMessages(msgs)
	// Hidden messages leave the counts, MWI and events at once.
	for i := range msgs {
		if err := s.writeChange(ctx, tx, Change{Kind: MessageDeleted, Tenant: msgs[i].Tenant, Mailbox: msgs[i].Mailbox, Message: &msgs[i]}); err != nil {
			return nil, fmt.Errorf("store: forget: %w", err)
		}
	}
	if err := s.commitChanges(tx); err != nil {
		return nil, fmt.Errorf("store: forget: commit: %w", err)
	}
	s.checkpointSoon()
	return msgs, nil
}

func scanHidden(sc scanner) (hiddenRow, error) {
	var (
		h                hiddenRow
		received, hidden int64
	)
	err := sc.Scan(&h.m.ID, &h.m.Tenant, &h.m.Mailbox, &h.m.Folder, &h.m.CallerID, &h.m.CallerE164,
		&h.m.CallerName, &received, &h.m.DurationMS, &h.m.Urgent, &h.m.Read, &h.m.Size, &h.m.MediaKey,
		&h.forgetID, &hidden)
	if err != nil {
		return hiddenRow{}, err
	}
	h.m.ReceivedAt = fromNanos(received)
	return h, nil
}

type hiddenRow struct {
	m        Message
	forgetID string
}

func (s *sqlStore) UndoForget(ctx context.Context, tenant, e164, phoneHash string) ([]Message, error) {
	where, args, err := callerWhere(s.d, "h", tenant, e164)
	if err != nil {
		return nil, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: undo forget: %w", err)
	}
	defer tx.Rollback()
	// Only messages whose mailbox still exists come back; the others wait
	// for the purge.
	rows, err := tx.QueryContext(ctx, `DELETE FROM gdpr_hidden AS h WHERE `+where+`
AND EXISTS (SELECT 1 FROM mailboxes b WHERE b.tenant = h.tenant AND b.number = h.mailbox)
RETURNING `+hiddenCols, args...)
	if err != nil {
		return nil, fmt.Errorf("store: undo forget: %w", err)
	}
	hidden, err := collect(rows, scanHidden)
	if err != nil {
		return nil, fmt.Errorf("store: undo forget: %w", err)
	}
	if len(hidden) == 0 {
		q := `SELECT 1 FROM gdpr_forgets WHERE phone_hash = ? AND state = 'purged'`
		qargs := []any{phoneHash}
		if tenant != "" {
			q += ` AND tenant = ?`
			qargs = append(qargs, tenant)
		}
		var one int
		err := tx.QueryRowContext(ctx, q+` LIMIT 1`, qargs...).Scan(&one)
		if err == nil {
			return nil, fmt.Errorf("store: undo forget: %w", ErrPurged)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("store: undo forget: %w", err)
		}
		return nil, nil
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO messages (`+messageCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, fmt.Errorf("store: undo forget: %w", err)
	}
	defer ins.Close()
	type key struct{ id, tenant string }
	touched := map[key]bool{}
	msgs := make([]Message, 0, len(hidden))
	for _, h := range hidden {
		m := h.m
		if _, err := ins.ExecContext(ctx, m.ID, m.Tenant, m.Mailbox, m.Folder, m.CallerID, m.CallerE164,
			m.CallerName, m.ReceivedAt.UnixNano(), m.DurationMS, m.Urgent, m.Read, m.Size, m.MediaKey); err != nil {
			return nil, fmt.Errorf("store: undo forget %s: %w", m.ID, err)
		}
		touched[key{h.forgetID, m.Tenant}] = true
		msgs = append(msgs, m)
	}
	now := time.Now().UTC().UnixNano()
	for k := range touched {
		if _, err := tx.ExecContext(ctx, `UPDATE gdpr_forgets SET state = 'undone', done_at = ?
WHERE id = ? AND tenant = ? AND state = 'hidden'
AND NOT EXISTS (SELECT 1 FROM gdpr_hidden WHERE forget_id = ? AND tenant = ?)`, now, k.id, k.tenant, k.id, k.tenant); err != nil {
			return nil, fmt.Errorf("store: undo forget: tombstone: %w", err)
		}
	}
	sortMessages(msgs)
	// Restored messages come back to the counts, MWI and events. The purge
	// writes nothing: its messages were already gone.
	for i := range msgs {
		if err := s.writeChange(ctx, tx, Change{Kind: MessageCreated, Tenant: msgs[i].Tenant, Mailbox: msgs[i].Mailbox, Message: &msgs[i]}); err != nil {
			return nil, fmt.Errorf("store: undo forget: %w", err)
		}
	}
	if err := s.commitChanges(tx); err != nil {
		return nil, fmt.Errorf("store: undo forget: commit: %w", err)
	}
	return msgs, nil
}

func (s *sqlStore) ForgottenBefore(ctx context.Context, t time.Time, limit int) ([]Message, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+hiddenCols+` FROM gdpr_hidden
WHERE hidden_at < ? ORDER BY hidden_at, id LIMIT ?`, t.UTC().UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: forgotten messages: %w", err)
	}
	hs, err := collect(rows, scanHidden)
	if err != nil {
		return nil, fmt.Errorf("store: forgotten messages: %w", err)
	}
	out := make([]Message, len(hs))
	for i := range hs {
		out[i] = hs[i].m
	}
	return out, nil
}

func (s *sqlStore) PurgeForgotten(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: purge: %w", err)
	}
	defer tx.Rollback()
	del, err := tx.PrepareContext(ctx, `DELETE FROM gdpr_hidden WHERE id = ? RETURNING forget_id, tenant`)
	if err != nil {
		return fmt.Errorf("store: purge: %w", err)
	}
	defer del.Close()
	type key struct{ id, tenant string }
	touched := map[key]bool{}
	for _, id := range ids {
		var k key
		err := del.QueryRowContext(ctx, id).Scan(&k.id, &k.tenant)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store: purge %s: %w", id, err)
		}
		touched[k] = true
	}
	now := time.Now().UTC().UnixNano()
	for k := range touched {
		if _, err := tx.ExecContext(ctx, `UPDATE gdpr_forgets SET state = 'purged', done_at = ?
WHERE id = ? AND tenant = ? AND state <> 'purged'
AND NOT EXISTS (SELECT 1 FROM gdpr_hidden WHERE forget_id = ? AND tenant = ?)`, now, k.id, k.tenant, k.id, k.tenant); err != nil {
			return fmt.Errorf("store: purge: tombstone: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: purge: commit: %w", err)
	}
	return nil
}

func (s *sqlStore) CountForgotten(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM gdpr_hidden`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count forgotten: %w", err)
	}
	return n, nil
}

// ---- audit ----

func (s *sqlStore) AddGDPRAudit(ctx context.Context, a *GDPRAudit) error {
	if a.At.IsZero() {
		a.At = time.Now()
	}
	a.At = a.At.UTC()
	err := s.w.QueryRowContext(ctx, `INSERT INTO gdpr_audit
(at, actor, operation, request_case, scope, contact_kind, contact_hash, response, messages)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		a.At.UnixNano(), a.Actor, a.Operation, a.RequestCase, a.Scope, a.ContactKind, a.ContactHash,
		a.Response, a.Messages).Scan(&a.ID)
	if err != nil {
		return fmt.Errorf("store: gdpr audit: %w", err)
	}
	return nil
}

func (s *sqlStore) ListGDPRAudit(ctx context.Context, after int64, limit int) ([]GDPRAudit, error) {
	if limit <= 0 {
		limit = defaultPageSize
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, at, actor, operation, request_case, scope,
contact_kind, contact_hash, response, messages FROM gdpr_audit WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list gdpr audit: %w", err)
	}
	out, err := collect(rows, func(sc scanner) (GDPRAudit, error) {
		var (
			a  GDPRAudit
			at int64
		)
		err := sc.Scan(&a.ID, &at, &a.Actor, &a.Operation, &a.RequestCase, &a.Scope, &a.ContactKind,
			&a.ContactHash, &a.Response, &a.Messages)
		a.At = fromNanos(at)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list gdpr audit: %w", err)
	}
	return out, nil
}

// ---- retention ----

func (s *sqlStore) SetTenantRetention(ctx context.Context, tenant string, days int) error {
	if days < 0 {
		if _, err := s.w.ExecContext(ctx, `DELETE FROM tenant_retention WHERE tenant = ?`, tenant); err != nil {
			return fmt.Errorf("store: tenant retention %q: %w", tenant, err)
		}
		return nil
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO tenant_retention (tenant, days)
SELECT name, ? FROM tenants WHERE name = ?
ON CONFLICT (tenant) DO UPDATE SET days = excluded.days`, days, tenant)
	if err != nil {
		return fmt.Errorf("store: tenant retention %q: %w", tenant, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: tenant %q: %w", tenant, ErrNotFound)
	}
	return nil
}

func (s *sqlStore) TenantRetention(ctx context.Context, tenant string) (int, bool, error) {
	var days int
	err := s.r.QueryRowContext(ctx, `SELECT days FROM tenant_retention WHERE tenant = ?`, tenant).Scan(&days)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: tenant retention %q: %w", tenant, err)
	}
	return days, true, nil
}

// dayNanos is one day in the unit of received_at.
const dayNanos = int64(24 * time.Hour)

func (s *sqlStore) ExpiredMessages(ctx context.Context, now time.Time, defaultDays, limit int) ([]Message, error) {
	if limit <= 0 {
		limit = 1000
	}
	// The shortest retention in force bounds the scan through the
	// received_at index; the exact per-mailbox rule is applied on those rows.
	var shortest sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT min(d) FROM (
	SELECT retention_days AS d FROM mailboxes WHERE retention_days > 0
	UNION ALL SELECT days FROM tenant_retention WHERE days > 0
	UNION ALL SELECT CAST(? AS BIGINT) WHERE CAST(? AS BIGINT) > 0) AS shortest`, defaultDays, defaultDays).Scan(&shortest)
	if err != nil {
		return nil, fmt.Errorf("store: expired messages: %w", err)
	}
	if !shortest.Valid {
		return nil, nil
	}
	nowN := now.UTC().UnixNano()
	// CROSS JOIN keeps messages the outer loop on SQLite (PostgreSQL plans
	// it as the inner join it is): ids rise with time, so the oldest are
	// read first in id order and the LIMIT ends the scan. Left to itself,
	// SQLite's planner read every mailbox's every message and sorted them,
	// for each batch of the sweep (BENCHMARKS.md, "Data at scale").
	rows, err := s.r.QueryContext(ctx, `SELECT `+prefixed("m", messageCols)+` FROM messages m
CROSS JOIN mailboxes b
LEFT JOIN tenant_retention r ON r.tenant = m.tenant
WHERE b.tenant = m.tenant AND b.number = m.mailbox AND m.received_at < ?
AND (CASE WHEN b.retention_days > 0 THEN b.retention_days WHEN r.days IS NOT NULL THEN r.days ELSE ? END) > 0
AND m.received_at < ? - (CASE WHEN b.retention_days > 0 THEN b.retention_days WHEN r.days IS NOT NULL THEN r.days ELSE ? END) * ?
ORDER BY m.id LIMIT ?`,
		nowN-shortest.Int64*dayNanos, defaultDays, nowN, defaultDays, dayNanos, limit)
	if err != nil {
		return nil, fmt.Errorf("store: expired messages: %w", err)
	}
	out, err := collect(rows, scanMessage)
	if err != nil {
		return nil, fmt.Errorf("store: expired messages: %w", err)
	}
	return out, nil
}

func (s *sqlStore) DeleteMessages(ctx context.Context, msgs []Message) ([]Message, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: delete messages: %w", err)
	}
	defer tx.Rollback()
	out := make([]Message, 0, len(msgs))
	for _, m := range msgs {
		got, err := scanMessage(s.txQueryRow(ctx, tx, qDeleteRow, m.ID, m.Tenant, m.Mailbox))
		if errors.Is(err, sql.ErrNoRows) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("store: delete message %s/%s/%s: %w", m.Tenant, m.Mailbox, m.ID, err)
		}
		deleted := got
		if err := s.writeChange(ctx, tx, Change{Kind: MessageDeleted, Tenant: got.Tenant, Mailbox: got.Mailbox, Message: &deleted}); err != nil {
			return nil, fmt.Errorf("store: delete message %s/%s/%s: %w", m.Tenant, m.Mailbox, m.ID, err)
		}
		out = append(out, got)
	}
	if err := s.commitChanges(tx); err != nil {
		return nil, fmt.Errorf("store: delete messages: commit: %w", err)
	}
	return out, nil
}

func (s *sqlStore) TidyMessages(ctx context.Context) error {
	q := `PRAGMA optimize`
	if s.d == dialectPostgres {
		// Outside a transaction (VACUUM refuses one); it takes no lock
		// that writers or readers wait for.
		q = `VACUUM (ANALYZE) messages`
	}
	if _, err := s.w.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("store: tidy messages: %w", err)
	}
	return nil
}

// prefixed qualifies a comma-separated column list with alias a.
func prefixed(a, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = a + "." + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}
