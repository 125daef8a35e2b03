package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// apiSchema is schema version 4: tokens, webhooks and the durable event
// queue (issue 5).
const apiSchema = `
CREATE TABLE api_tokens (
	hash       TEXT PRIMARY KEY,          -- SHA-256 hex of the secret
	id         TEXT NOT NULL UNIQUE,
	kind       TEXT NOT NULL,             -- tenant | user
	tenant     TEXT NOT NULL, -- no FK: the API removes them with the tenant
	mailbox    TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL DEFAULT 0 -- 0 = never
) STRICT;
CREATE INDEX api_tokens_by_tenant ON api_tokens(tenant, mailbox);

CREATE TABLE webhooks (
	id         TEXT PRIMARY KEY,
	tenant     TEXT NOT NULL, -- no FK: the API removes them with the tenant
	url        TEXT NOT NULL,
	events     TEXT NOT NULL DEFAULT '[]',
	secret     TEXT NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE webhook_jobs (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	webhook_id TEXT NOT NULL,
	event_id   TEXT NOT NULL,
	event_type TEXT NOT NULL,
	body       BLOB NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0,
	next_at    INTEGER NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_jobs_due ON webhook_jobs(next_at);

CREATE TABLE webhook_deliveries (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	webhook_id  TEXT NOT NULL,
	event_id    TEXT NOT NULL,
	event_type  TEXT NOT NULL,
	attempt     INTEGER NOT NULL,
	status      INTEGER NOT NULL,
	error       TEXT NOT NULL DEFAULT '',
	final       TEXT NOT NULL,
	duration_ms INTEGER NOT NULL,
	at          INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries(webhook_id, id);
`

func nanosOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func timeOrZero(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return fromNanos(n)
}

// ---- tokens ----

const tokenCols = `id, kind, tenant, mailbox, created_at, expires_at`

func scanToken(sc scanner) (Token, error) {
	var (
		t                Token
		created, expires int64
	)
	if err := sc.Scan(&t.ID, &t.Kind, &t.Tenant, &t.Mailbox, &created, &expires); err != nil {
		return Token{}, err
	}
	t.CreatedAt, t.ExpiresAt = fromNanos(created), timeOrZero(expires)
	return t, nil
}

func (s *sqlStore) CreateToken(ctx context.Context, t *Token, hash string) error {
	if t.Kind != TokenTenant && t.Kind != TokenUser {
		return fmt.Errorf("store: create token: invalid kind %q", t.Kind)
	}
	if hash == "" {
		return errors.New("store: create token: empty hash")
	}
	if t.ID == "" {
		t.ID = uuid.Must(uuid.NewV7()).String()
	}
	now := time.Now().UTC()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: create token: %w", err)
	}
	defer tx.Rollback()
	if err := tenantExists(ctx, tx, t.Tenant); err != nil {
		return fmt.Errorf("store: create token: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO api_tokens (hash, `+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		hash, t.ID, t.Kind, t.Tenant, t.Mailbox, now.UnixNano(), nanosOrZero(t.ExpiresAt))
	if isConflict(err) {
		return fmt.Errorf("store: create token: %w", ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: create token: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: create token: commit: %w", err)
	}
	t.CreatedAt = now
	return nil
}

func (s *sqlStore) TokenByHash(ctx context.Context, hash string) (*Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: token: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: token: %w", err)
	}
	return &t, nil
}

func (s *sqlStore) ListTokens(ctx context.Context, tenant, kind string) ([]Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tokenCols+` FROM api_tokens
WHERE tenant = ? AND (? = '' OR kind = ?) ORDER BY created_at, id`, tenant, kind, kind)
	if err != nil {
		return nil, fmt.Errorf("store: list tokens of %s: %w", tenant, err)
	}
	out, err := collect(rows, scanToken)
	if err != nil {
		return nil, fmt.Errorf("store: list tokens of %s: %w", tenant, err)
	}
	return out, nil
}

func (s *sqlStore) DeleteToken(ctx context.Context, tenant, idOrHash string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM api_tokens WHERE tenant = ? AND (id = ? OR hash = ?)`,
		tenant, idOrHash, idOrHash)
	if err != nil {
		return fmt.Errorf("store: delete token: %w", err)
	}
	return mustAffect(res, "token", tenant+"/"+idOrHash)
}

func (s *sqlStore) DeleteTokens(ctx context.Context, tenant, mailbox string) error {
	var err error
	if mailbox == "" {
		_, err = s.w.ExecContext(ctx, `DELETE FROM api_tokens WHERE tenant = ?`, tenant)
	} else {
		_, err = s.w.ExecContext(ctx, `DELETE FROM api_tokens WHERE tenant = ? AND kind = ? AND mailbox = ?`,
			tenant, TokenUser, mailbox)
	}
	if err != nil {
		return fmt.Errorf("store: delete tokens of %s/%s: %w", tenant, mailbox, err)
	}
	return nil
}

// ---- webhooks ----

const webhookCols = `id, tenant, url, events, secret, created_at`

func scanWebhook(sc scanner) (Webhook, error) {
	var (
		w       Webhook
		events  string
		created int64
	)
	if err := sc.Scan(&w.ID, &w.Tenant, &w.URL, &events, &w.Secret, &created); err != nil {
		return Webhook{}, err
	}
	var err error
	if w.Events, err = decodeList(events); err != nil {
		return Webhook{}, fmt.Errorf("webhook %s: events: %w", w.ID, err)
	}
	w.CreatedAt = fromNanos(created)
	return w, nil
}

func (s *sqlStore) CreateWebhook(ctx context.Context, w *Webhook) error {
	if w.ID == "" {
		w.ID = uuid.Must(uuid.NewV7()).String()
	}
	now := time.Now().UTC()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: create webhook: %w", err)
	}
	defer tx.Rollback()
	if err := tenantExists(ctx, tx, w.Tenant); err != nil {
		return fmt.Errorf("store: create webhook: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO webhooks (`+webhookCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		w.ID, w.Tenant, w.URL, encodeList(w.Events), w.Secret, now.UnixNano())
	if isConflict(err) {
		return fmt.Errorf("store: create webhook %s: %w", w.ID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: create webhook: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: create webhook: commit: %w", err)
	}
	w.CreatedAt = now
	return nil
}

func (s *sqlStore) GetWebhook(ctx context.Context, tenant, id string) (*Webhook, error) {
	w, err := scanWebhook(s.r.QueryRowContext(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE tenant = ? AND id = ?`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: webhook %s/%s: %w", tenant, id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get webhook %s/%s: %w", tenant, id, err)
	}
	return &w, nil
}

func (s *sqlStore) ListWebhooks(ctx context.Context, tenant string) ([]Webhook, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+webhookCols+` FROM webhooks
WHERE (? = '' OR tenant = ?) ORDER BY created_at, id`, tenant, tenant)
	if err != nil {
		return nil, fmt.Errorf("store: list webhooks: %w", err)
	}
	out, err := collect(rows, scanWebhook)
	if err != nil {
		return nil, fmt.Errorf("store: list webhooks: %w", err)
	}
	return out, nil
}

func (s *sqlStore) DeleteWebhook(ctx context.Context, tenant, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: delete webhook %s: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE tenant = ? AND id = ?`, tenant, id)
	if err != nil {
		return fmt.Errorf("store: delete webhook %s: %w", id, err)
	}
	if err := mustAffect(res, "webhook", tenant+"/"+id); err != nil {
		return err
	}
	for _, q := range []string{`DELETE FROM webhook_jobs WHERE webhook_id = ?`, `DELETE FROM webhook_deliveries WHERE webhook_id = ?`} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return fmt.Errorf("store: delete webhook %s: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: delete webhook %s: commit: %w", id, err)
	}
	return nil
}

// ---- the durable queue ----

func (s *sqlStore) EnqueueWebhookJobs(ctx context.Context, jobs []WebhookJob) error {
	if len(jobs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: enqueue webhook jobs: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().UTC()
	for i := range jobs {
		j := &jobs[i]
		if j.NextAt.IsZero() {
			j.NextAt = now
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO webhook_jobs (webhook_id, event_id, event_type, body, attempts, next_at, created_at)
VALUES (?, ?, ?, ?, 0, ?, ?) RETURNING id`, j.WebhookID, j.EventID, j.EventType, j.Body, j.NextAt.UnixNano(), now.UnixNano()).Scan(&j.ID)
		if err != nil {
			return fmt.Errorf("store: enqueue webhook job: %w", err)
		}
		j.Attempts, j.CreatedAt = 0, now
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: enqueue webhook jobs: commit: %w", err)
	}
	return nil
}

func (s *sqlStore) DueWebhookJobs(ctx context.Context, now time.Time, limit int) ([]WebhookJob, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, webhook_id, event_id, event_type, body, attempts, next_at, created_at
FROM webhook_jobs WHERE next_at <= ? ORDER BY next_at, id LIMIT ?`, now.UnixNano(), pageSize(limit))
	if err != nil {
		return nil, fmt.Errorf("store: due webhook jobs: %w", err)
	}
	out, err := collect(rows, func(sc scanner) (WebhookJob, error) {
		var (
			j             WebhookJob
			next, created int64
		)
		err := sc.Scan(&j.ID, &j.WebhookID, &j.EventID, &j.EventType, &j.Body, &j.Attempts, &next, &created)
		j.NextAt, j.CreatedAt = fromNanos(next), fromNanos(created)
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: due webhook jobs: %w", err)
	}
	return out, nil
}

func (s *sqlStore) NextWebhookJobAt(ctx context.Context) (time.Time, bool, error) {
	var n sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT min(next_at) FROM webhook_jobs`).Scan(&n); err != nil {
		return time.Time{}, false, fmt.Errorf("store: next webhook job: %w", err)
	}
	if !n.Valid {
		return time.Time{}, false, nil
	}
	return fromNanos(n.Int64), true, nil
}

func (s *sqlStore) FinishWebhookJob(ctx context.Context, id int64, d WebhookDelivery, next time.Time) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: finish webhook job %d: %w", id, err)
	}
	defer tx.Rollback()
	if d.At.IsZero() {
		d.At = time.Now().UTC()
	}
	if next.IsZero() {
		_, err = tx.ExecContext(ctx, `DELETE FROM webhook_jobs WHERE id = ?`, id)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE webhook_jobs SET attempts = attempts + 1, next_at = ? WHERE id = ?`, next.UnixNano(), id)
	}
	if err != nil {
		return fmt.Errorf("store: finish webhook job %d: %w", id, err)
	}
	// The log keeps the last attempts of a webhook only if the webhook
	// still exists (a delete while a delivery was in flight drops it).
	_, err = tx.ExecContext(ctx, `INSERT INTO webhook_deliveries
(webhook_id, event_id, event_type, attempt, status, error, final, duration_ms, at)
SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?)`,
		d.WebhookID, d.EventID, d.EventType, d.Attempt, d.Status, d.Error, d.Final, d.DurationMS, d.At.UnixNano(), d.WebhookID)
	if err != nil {
		return fmt.Errorf("store: finish webhook job %d: log: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: finish webhook job %d: commit: %w", id, err)
	}
	return nil
}

func (s *sqlStore) ListWebhookDeliveries(ctx context.Context, webhookID string, before int64, limit int) ([]WebhookDelivery, int64, error) {
	limit = pageSize(limit)
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, webhook_id, event_id, event_type, attempt, status, error, final, duration_ms, at
FROM webhook_deliveries WHERE webhook_id = ? AND id < ? ORDER BY id DESC LIMIT ?`, webhookID, before, limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("store: webhook deliveries of %s: %w", webhookID, err)
	}
	out, err := collect(rows, func(sc scanner) (WebhookDelivery, error) {
		var (
			d  WebhookDelivery
			at int64
		)
		err := sc.Scan(&d.ID, &d.WebhookID, &d.EventID, &d.EventType, &d.Attempt, &d.Status, &d.Error, &d.Final, &d.DurationMS, &at)
		d.At = fromNanos(at)
		return d, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: webhook deliveries of %s: %w", webhookID, err)
	}
	var next int64
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}
