package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// clientsSchema is schema version 7: API clients and their tokens (issue
// 21). Both go with their tenant (ON DELETE CASCADE).
const clientsSchema = `
CREATE TABLE api_clients (
	id          TEXT PRIMARY KEY,
	tenant      TEXT NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,
	name        TEXT NOT NULL DEFAULT '',
	scopes      TEXT NOT NULL DEFAULT '[]', -- JSON array
	secret_hash TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	revoked_at  INTEGER NOT NULL DEFAULT 0  -- 0 = active
) STRICT;
CREATE INDEX api_clients_by_tenant ON api_clients(tenant);

CREATE TABLE api_client_tokens (
	hash       TEXT PRIMARY KEY,
	client_id  TEXT NOT NULL REFERENCES api_clients(id) ON DELETE CASCADE,
	scopes     TEXT NOT NULL DEFAULT '[]',
	expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX api_client_tokens_by_client ON api_client_tokens(client_id);
CREATE INDEX api_client_tokens_by_expiry ON api_client_tokens(expires_at);
`

const clientCols = `id, tenant, name, scopes, secret_hash, created_at, revoked_at`

func scanClient(sc scanner) (APIClient, error) {
	var (
		c                APIClient
		scopes           string
		created, revoked int64
	)
	if err := sc.Scan(&c.ID, &c.Tenant, &c.Name, &scopes, &c.SecretHash, &created, &revoked); err != nil {
		return APIClient{}, err
	}
	var err error
	if c.Scopes, err = decodeList(scopes); err != nil {
		return APIClient{}, fmt.Errorf("client %s: scopes: %w", c.ID, err)
	}
	c.CreatedAt, c.RevokedAt = fromNanos(created), timeOrZero(revoked)
	return c, nil
}

func (s *sqliteStore) CreateAPIClient(ctx context.Context, c *APIClient) error {
	if c.ID == "" || c.SecretHash == "" {
		return errors.New("store: create client: id and secret hash are required")
	}
	now := time.Now().UTC()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: create client: %w", err)
	}
	defer tx.Rollback()
	if err := tenantExists(ctx, tx, c.Tenant); err != nil {
		return fmt.Errorf("store: create client: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO api_clients (`+clientCols+`) VALUES (?, ?, ?, ?, ?, ?, 0)`,
		c.ID, c.Tenant, c.Name, encodeList(c.Scopes), c.SecretHash, now.UnixNano())
	if isConflict(err) {
		return fmt.Errorf("store: create client: %w", ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: create client: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: create client: commit: %w", err)
	}
	c.CreatedAt, c.RevokedAt = now, time.Time{}
	return nil
}

func (s *sqliteStore) GetAPIClient(ctx context.Context, id string) (*APIClient, error) {
	c, err := scanClient(s.r.QueryRowContext(ctx, `SELECT `+clientCols+` FROM api_clients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: client: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: client: %w", err)
	}
	return &c, nil
}

func (s *sqliteStore) ListAPIClients(ctx context.Context, tenant string) ([]APIClient, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+clientCols+` FROM api_clients WHERE tenant = ? ORDER BY created_at, id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("store: list clients of %s: %w", tenant, err)
	}
	out, err := collect(rows, scanClient)
	if err != nil {
		return nil, fmt.Errorf("store: list clients of %s: %w", tenant, err)
	}
	return out, nil
}

func (s *sqliteStore) RevokeAPIClient(ctx context.Context, tenant, id string, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: revoke client: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE api_clients SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END
WHERE tenant = ? AND id = ?`, at.UTC().UnixNano(), tenant, id)
	if err != nil {
		return fmt.Errorf("store: revoke client: %w", err)
	}
	if err := mustAffect(res, "client", tenant+"/"+id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM api_client_tokens WHERE client_id = ?`, id); err != nil {
		return fmt.Errorf("store: revoke client: tokens: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: revoke client: commit: %w", err)
	}
	return nil
}

func (s *sqliteStore) CreateClientToken(ctx context.Context, t ClientToken) error {
	if t.Hash == "" || t.ClientID == "" {
		return errors.New("store: create client token: hash and client are required")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: create client token: %w", err)
	}
	defer tx.Rollback()
	// Expired tokens are useless: they go whenever a new one is issued.
	if _, err := tx.ExecContext(ctx, `DELETE FROM api_client_tokens WHERE expires_at < ?`, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("store: create client token: %w", err)
	}
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM api_clients WHERE id = ?`, t.ClientID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: create client token: client %s: %w", t.ClientID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: create client token: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO api_client_tokens (hash, client_id, scopes, expires_at) VALUES (?, ?, ?, ?)`,
		t.Hash, t.ClientID, encodeList(t.Scopes), t.ExpiresAt.UTC().UnixNano())
	if isConflict(err) {
		return fmt.Errorf("store: create client token: %w", ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: create client token: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: create client token: commit: %w", err)
	}
	return nil
}

func (s *sqliteStore) ClientByToken(ctx context.Context, hash string) (*ClientToken, *APIClient, error) {
	var (
		t       = ClientToken{Hash: hash}
		scopes  string
		expires int64
	)
	row := s.r.QueryRowContext(ctx, `SELECT t.client_id, t.scopes, t.expires_at, c.id, c.tenant, c.name, c.scopes,
c.secret_hash, c.created_at, c.revoked_at FROM api_client_tokens t JOIN api_clients c ON c.id = t.client_id WHERE t.hash = ?`, hash)
	c, err := scanClient(scannerFunc(func(dest ...any) error {
		return row.Scan(append([]any{&t.ClientID, &scopes, &expires}, dest...)...)
	}))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fmt.Errorf("store: client token: %w", ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store: client token: %w", err)
	}
	if t.Scopes, err = decodeList(scopes); err != nil {
		return nil, nil, fmt.Errorf("store: client token: scopes: %w", err)
	}
	t.ExpiresAt = fromNanos(expires)
	return &t, &c, nil
}

// scannerFunc adapts a function to scanner.
type scannerFunc func(dest ...any) error

func (f scannerFunc) Scan(dest ...any) error { return f(dest...) }
