package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Several instances share one database (docs/mwi.md): each keeps a
// heartbeat row in cluster_instances while it runs, and work that lives in
// one instance's memory (an MWI subscription's dialog) is owned by one. An
// instance whose row expired (or is gone: a clean stop deletes it) is dead,
// and the others claim what it owned. Work done by exactly one instance
// with no rows of its own (the unsolicited MWI targets) is held by a named
// lease in cluster_leases. Times are the instances' clocks (keep them in
// sync, NTP), like the other leases of the store.

// clusterSchemaSQLite is schema version 9 on SQLite: subscription owners,
// instance heartbeats and named leases. Existing subscriptions get the
// owner "" (nobody's): the first instance to start claims them.
const clusterSchemaSQLite = `
ALTER TABLE mwi_subscriptions ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX mwi_subscriptions_by_owner ON mwi_subscriptions(owner);

CREATE TABLE cluster_instances (
	id         TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL -- unix nanoseconds, UTC
) STRICT;

CREATE TABLE cluster_leases (
	name       TEXT PRIMARY KEY,
	owner      TEXT NOT NULL,
	expires_at INTEGER NOT NULL -- unix nanoseconds, UTC
) STRICT;
`

// clusterSchemaPostgres is schema version 9 on PostgreSQL.
const clusterSchemaPostgres = `
ALTER TABLE mwi_subscriptions ADD COLUMN owner TEXT COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX mwi_subscriptions_by_owner ON mwi_subscriptions(owner);

CREATE TABLE cluster_instances (
	id         TEXT COLLATE "C" PRIMARY KEY,
	expires_at BIGINT NOT NULL
);

CREATE TABLE cluster_leases (
	name       TEXT COLLATE "C" PRIMARY KEY,
	owner      TEXT COLLATE "C" NOT NULL,
	expires_at BIGINT NOT NULL
);
`

// instanceRowsKept is how long the row of a dead instance stays before a
// heartbeat of another one deletes it. A missing row means dead too, so
// this only bounds the table.
const instanceRowsKept = time.Hour

// ClusterStore keeps the instances' heartbeats and the named leases.
type ClusterStore interface {
	// HeartbeatInstance records that instance id lives until now+ttl.
	HeartbeatInstance(ctx context.Context, id string, ttl time.Duration) error
	// ReleaseInstance records that id stopped: what it owned may be
	// claimed at once.
	ReleaseInstance(ctx context.Context, id string) error
	// ClaimLease takes or renews the lease called name for owner until
	// now+ttl; false while another owner's lease runs.
	ClaimLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	// ReleaseLease ends owner's lease of name, if it holds it.
	ReleaseLease(ctx context.Context, name, owner string) error
}

func (s *sqlStore) HeartbeatInstance(ctx context.Context, id string, ttl time.Duration) error {
	if id == "" {
		return errors.New("store: heartbeat: empty instance id")
	}
	now := time.Now().UTC()
	if _, err := s.w.ExecContext(ctx, `INSERT INTO cluster_instances (id, expires_at) VALUES (?, ?)
ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at`, id, now.Add(ttl).UnixNano()); err != nil {
		return fmt.Errorf("store: heartbeat of instance %s: %w", id, err)
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM cluster_instances WHERE expires_at < ?`,
		now.Add(-instanceRowsKept).UnixNano()); err != nil {
		return fmt.Errorf("store: forget dead instances: %w", err)
	}
	return nil
}

func (s *sqlStore) ReleaseInstance(ctx context.Context, id string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM cluster_instances WHERE id = ?`, id); err != nil {
		return fmt.Errorf("store: release instance %s: %w", id, err)
	}
	return nil
}

func (s *sqlStore) ClaimLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if name == "" || owner == "" {
		return false, errors.New("store: claim lease: empty name or owner")
	}
	now := time.Now().UTC()
	// One statement: the row is inserted, renewed by its owner, or taken
	// over once expired; otherwise it is left alone and nothing returns.
	var got string
	err := s.w.QueryRowContext(ctx, `INSERT INTO cluster_leases (name, owner, expires_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE cluster_leases.owner = excluded.owner OR cluster_leases.expires_at < ?
RETURNING owner`, name, owner, now.Add(ttl).UnixNano(), now.UnixNano()).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: claim lease %q: %w", name, err)
	}
	return got == owner, nil
}

func (s *sqlStore) ReleaseLease(ctx context.Context, name, owner string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM cluster_leases WHERE name = ? AND owner = ?`, name, owner); err != nil {
		return fmt.Errorf("store: release lease %q: %w", name, err)
	}
	return nil
}
