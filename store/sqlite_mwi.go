package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// mwiSchema is schema version 3: MWI subscriptions (issue 4) and the
// unsolicited targets that were told to stop. Neither references the
// mailboxes table: a mailbox's deletion is seen by the notifier, which
// sends the last NOTIFYs (0/0, then terminated) before it forgets them.
const mwiSchema = `
CREATE TABLE mwi_subscriptions (
	id           TEXT PRIMARY KEY,
	tenant       TEXT NOT NULL,
	mailbox      TEXT NOT NULL,
	call_id      TEXT NOT NULL,
	local_tag    TEXT NOT NULL,
	remote_tag   TEXT NOT NULL,
	event_id     TEXT NOT NULL DEFAULT '',
	local_uri    TEXT NOT NULL,
	remote_uri   TEXT NOT NULL,
	contact      TEXT NOT NULL,
	route_set    TEXT NOT NULL DEFAULT '[]', -- JSON array of Record-Route values
	transport    TEXT NOT NULL,
	source       TEXT NOT NULL,
	account_host TEXT NOT NULL DEFAULT '',
	local_cseq   INTEGER NOT NULL,
	remote_cseq  INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL, -- unix nanoseconds, UTC
	created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX mwi_subscriptions_by_mailbox ON mwi_subscriptions(tenant, mailbox);

CREATE TABLE mwi_target_stops (
	tenant     TEXT NOT NULL,
	mailbox    TEXT NOT NULL,
	target     TEXT NOT NULL,
	reason     TEXT NOT NULL,
	stopped_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, mailbox, target)
) STRICT;
`

const mwiSubCols = `id, tenant, mailbox, call_id, local_tag, remote_tag, event_id, local_uri, remote_uri,
	contact, route_set, transport, source, account_host, local_cseq, remote_cseq, expires_at, created_at, owner`

func (s *sqlStore) SaveMWISubscription(ctx context.Context, m *MWISubscription) error {
	if m.ID == "" || m.CallID == "" {
		return fmt.Errorf("store: save MWI subscription: empty id or Call-ID")
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Now().UTC()
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO mwi_subscriptions (`+mwiSubCols+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
	tenant = excluded.tenant, mailbox = excluded.mailbox, call_id = excluded.call_id,
	local_tag = excluded.local_tag, remote_tag = excluded.remote_tag, event_id = excluded.event_id,
	local_uri = excluded.local_uri, remote_uri = excluded.remote_uri, contact = excluded.contact,
	route_set = excluded.route_set, transport = excluded.transport, source = excluded.source,
	account_host = excluded.account_host,
	local_cseq = `+s.d.greatest()+`(mwi_subscriptions.local_cseq, excluded.local_cseq), remote_cseq = excluded.remote_cseq,
	expires_at = excluded.expires_at, owner = excluded.owner`,
		m.ID, m.Tenant, m.Mailbox, m.CallID, m.LocalTag, m.RemoteTag, m.EventID, m.LocalURI, m.RemoteURI,
		m.Contact, encodeList(m.RouteSet), m.Transport, m.Source, m.AccountHost,
		int64(m.LocalCSeq), int64(m.RemoteCSeq), m.ExpiresAt.UTC().UnixNano(), m.CreatedAt.UTC().UnixNano(), m.Owner)
	if err != nil {
		return fmt.Errorf("store: save MWI subscription %s: %w", m.ID, err)
	}
	return nil
}

func (s *sqlStore) DeleteMWISubscription(ctx context.Context, id string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM mwi_subscriptions WHERE id = ?`, id); err != nil {
		return fmt.Errorf("store: delete MWI subscription %s: %w", id, err)
	}
	return nil
}

func (s *sqlStore) ListMWISubscriptions(ctx context.Context) ([]MWISubscription, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+mwiSubCols+` FROM mwi_subscriptions ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: list MWI subscriptions: %w", err)
	}
	out, err := collect(rows, scanMWISubscription)
	if err != nil {
		return nil, fmt.Errorf("store: list MWI subscriptions: %w", err)
	}
	return out, nil
}

func scanMWISubscription(sc scanner) (MWISubscription, error) {
	var (
		m                MWISubscription
		routes           string
		lcseq, rcseq     int64
		expires, created int64
	)
	if err := sc.Scan(&m.ID, &m.Tenant, &m.Mailbox, &m.CallID, &m.LocalTag, &m.RemoteTag, &m.EventID,
		&m.LocalURI, &m.RemoteURI, &m.Contact, &routes, &m.Transport, &m.Source, &m.AccountHost,
		&lcseq, &rcseq, &expires, &created, &m.Owner); err != nil {
		return MWISubscription{}, err
	}
	var err error
	if m.RouteSet, err = decodeList(routes); err != nil {
		return MWISubscription{}, fmt.Errorf("subscription %s: route_set: %w", m.ID, err)
	}
	m.LocalCSeq, m.RemoteCSeq = uint32(lcseq), uint32(rcseq)
	m.ExpiresAt, m.CreatedAt = fromNanos(expires), fromNanos(created)
	return m, nil
}

func (s *sqlStore) SetMWILocalCSeqs(ctx context.Context, cseqs map[string]uint32) error {
	if len(cseqs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: set MWI CSeqs: %w", err)
	}
	defer tx.Rollback()
	// A start-up re-NOTIFY of 100,000 subscriptions saves 100,000 CSeqs:
	// one statement per chunk, the pairs in a JSON object, not one round
	// trip per subscription.
	const chunk = 1000
	q := `UPDATE mwi_subscriptions SET local_cseq = ` + s.d.greatest() + `(local_cseq, CAST(j.value AS BIGINT))
FROM ` + s.d.eachPair("j") + ` WHERE mwi_subscriptions.id = j.key`
	batch := make(map[string]uint32, min(chunk, len(cseqs)))
	flush := func() error {
		doc, err := json.Marshal(batch)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, q, string(doc))
		clear(batch)
		return err
	}
	for id, c := range cseqs {
		batch[id] = c
		if len(batch) == chunk {
			if err := flush(); err != nil {
				return fmt.Errorf("store: set MWI CSeqs: %w", err)
			}
		}
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			return fmt.Errorf("store: set MWI CSeqs: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: set MWI CSeqs: commit: %w", err)
	}
	return nil
}

func (s *sqlStore) RaiseMWILocalCSeqs(ctx context.Context, owner string, by uint32) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE mwi_subscriptions SET local_cseq = local_cseq + ? WHERE owner = ?`, int64(by), owner); err != nil {
		return fmt.Errorf("store: raise MWI CSeqs of %s: %w", owner, err)
	}
	return nil
}

func (s *sqlStore) StopMWITarget(ctx context.Context, stop MWITargetStop) error {
	if stop.At.IsZero() {
		stop.At = time.Now().UTC()
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO mwi_target_stops (tenant, mailbox, target, reason, stopped_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (tenant, mailbox, target) DO UPDATE SET reason = excluded.reason, stopped_at = excluded.stopped_at`,
		stop.Tenant, stop.Mailbox, stop.Target, stop.Reason, stop.At.UTC().UnixNano())
	if err != nil {
		return fmt.Errorf("store: stop MWI target %s of %s/%s: %w", stop.Target, stop.Tenant, stop.Mailbox, err)
	}
	return nil
}

func (s *sqlStore) ResumeMWITarget(ctx context.Context, tenant, mailbox, target string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM mwi_target_stops WHERE tenant = ? AND mailbox = ? AND target = ?`,
		tenant, mailbox, target); err != nil {
		return fmt.Errorf("store: resume MWI target %s of %s/%s: %w", target, tenant, mailbox, err)
	}
	return nil
}

func (s *sqlStore) ListMWITargetStops(ctx context.Context) ([]MWITargetStop, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT tenant, mailbox, target, reason, stopped_at FROM mwi_target_stops
ORDER BY tenant, mailbox, target`)
	if err != nil {
		return nil, fmt.Errorf("store: list MWI target stops: %w", err)
	}
	out, err := collect(rows, func(sc scanner) (MWITargetStop, error) {
		var (
			st MWITargetStop
			at int64
		)
		if err := sc.Scan(&st.Tenant, &st.Mailbox, &st.Target, &st.Reason, &at); err != nil {
			return MWITargetStop{}, err
		}
		st.At = fromNanos(at)
		return st, nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list MWI target stops: %w", err)
	}
	return out, nil
}

// Ownership across instances (store/cluster.go, docs/mwi.md).

func (s *sqlStore) ListOwnedMWISubscriptions(ctx context.Context, owner string) ([]MWISubscription, error) {
	// Counted first (from the owner index) so the slice is allocated once:
	// growing it row by row to 100,000 subscriptions cost 0.8 s at start-up.
	n, err := s.CountOwnedMWISubscriptions(ctx, owner)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+mwiSubCols+` FROM mwi_subscriptions WHERE owner = ? ORDER BY id`, owner)
	if err != nil {
		return nil, fmt.Errorf("store: list MWI subscriptions of %s: %w", owner, err)
	}
	out, err := collectInto(make([]MWISubscription, 0, n), rows, scanMWISubscription)
	if err != nil {
		return nil, fmt.Errorf("store: list MWI subscriptions of %s: %w", owner, err)
	}
	return out, nil
}

func (s *sqlStore) OwnedMWISubscriptionIDs(ctx context.Context, owner string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM mwi_subscriptions WHERE owner = ?`, owner)
	if err != nil {
		return nil, fmt.Errorf("store: MWI subscriptions of %s: %w", owner, err)
	}
	out, err := collect(rows, func(sc scanner) (string, error) {
		var id string
		return id, sc.Scan(&id)
	})
	if err != nil {
		return nil, fmt.Errorf("store: MWI subscriptions of %s: %w", owner, err)
	}
	return out, nil
}

func (s *sqlStore) CountOwnedMWISubscriptions(ctx context.Context, owner string) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM mwi_subscriptions WHERE owner = ?`, owner).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count MWI subscriptions of %s: %w", owner, err)
	}
	return n, nil
}

func (s *sqlStore) ClaimMWISubscriptions(ctx context.Context, owner string, now time.Time) ([]MWISubscription, error) {
	if owner == "" {
		return nil, fmt.Errorf("store: claim MWI subscriptions: empty owner")
	}
	// Every instance asks every heartbeat, and almost always nobody died:
	// the owners are found on the read pool from the owner index, one
	// probe per distinct owner, so that the usual answer costs neither a
	// scan of every subscription nor the SQLite writer.
	dead, err := s.deadMWIOwners(ctx, owner, now)
	if err != nil || len(dead) == 0 {
		return nil, err
	}
	// The liveness check is repeated in the UPDATE: an owner that came
	// back meanwhile keeps its rows. On PostgreSQL, SKIP LOCKED lets two
	// claimers pass each other's rows (a row another claimer just took is
	// re-checked: its new owner is live); SQLite's single writer
	// serialises them.
	args := []any{owner}
	for _, d := range dead {
		args = append(args, d)
	}
	args = append(args, owner, now.UTC().UnixNano())
	rows, err := s.w.QueryContext(ctx, `UPDATE mwi_subscriptions SET owner = ? WHERE id IN (
SELECT id FROM mwi_subscriptions WHERE owner IN (?`+strings.Repeat(", ?", len(dead)-1)+`) AND owner <> ?
AND owner NOT IN (SELECT id FROM cluster_instances WHERE expires_at >= ?)`+s.d.skipLocked()+`)
RETURNING `+mwiSubCols, args...)
	if err != nil {
		return nil, fmt.Errorf("store: claim MWI subscriptions: %w", err)
	}
	out, err := collect(rows, scanMWISubscription)
	if err != nil {
		return nil, fmt.Errorf("store: claim MWI subscriptions: %w", err)
	}
	slices.SortFunc(out, func(a, b MWISubscription) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// deadMWIOwners returns the owners of subscriptions, other than owner,
// that are not live instances at now. The distinct owners come from a
// walk of the owner index that jumps from one owner to the next (a
// handful of instances over any number of subscriptions).
func (s *sqlStore) deadMWIOwners(ctx context.Context, owner string, now time.Time) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `WITH RECURSIVE owners(o) AS (
	SELECT min(owner) FROM mwi_subscriptions
	UNION ALL
	SELECT (SELECT min(owner) FROM mwi_subscriptions WHERE owner > owners.o) FROM owners WHERE owners.o IS NOT NULL
)
SELECT o FROM owners WHERE o IS NOT NULL AND o <> ?
AND o NOT IN (SELECT id FROM cluster_instances WHERE expires_at >= ?)`, owner, now.UTC().UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: claim MWI subscriptions: owners: %w", err)
	}
	out, err := collect(rows, func(sc scanner) (string, error) {
		var o string
		return o, sc.Scan(&o)
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim MWI subscriptions: owners: %w", err)
	}
	return out, nil
}

func (s *sqlStore) TakeMWISubscription(ctx context.Context, owner, callID, remoteTag, localTag, eventID string) (*MWISubscription, error) {
	if owner == "" {
		return nil, fmt.Errorf("store: take MWI subscription: empty owner")
	}
	m, err := scanMWISubscription(s.w.QueryRowContext(ctx, `UPDATE mwi_subscriptions SET owner = ?
WHERE call_id = ? AND remote_tag = ? AND local_tag = ? AND event_id = ? RETURNING `+mwiSubCols,
		owner, callID, remoteTag, localTag, eventID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: take MWI subscription %s: %w", callID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: take MWI subscription %s: %w", callID, err)
	}
	return &m, nil
}
