package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// sipAuthSchema is the schema step of SIP digest credentials, REGISTER
// bindings and the nonce key (issue 15). Credentials and bindings go with
// their mailbox (ON DELETE CASCADE).
const sipAuthSchema = `
CREATE TABLE sip_credentials (
	tenant     TEXT NOT NULL,
	mailbox    TEXT NOT NULL,
	realm      TEXT NOT NULL,
	ha1_md5    TEXT NOT NULL,
	ha1_sha256 TEXT NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, mailbox),
	FOREIGN KEY (tenant, mailbox) REFERENCES mailboxes(tenant, number) ON DELETE CASCADE
) STRICT;

CREATE TABLE sip_registrations (
	tenant     TEXT NOT NULL,
	mailbox    TEXT NOT NULL,
	contact    TEXT NOT NULL,
	source     TEXT NOT NULL DEFAULT '',
	transport  TEXT NOT NULL DEFAULT '',
	path       TEXT NOT NULL DEFAULT '[]', -- JSON array
	call_id    TEXT NOT NULL DEFAULT '',
	cseq       INTEGER NOT NULL DEFAULT 0,
	notified   TEXT NOT NULL DEFAULT '', -- the last change NOTIFYd (ClaimSIPRegistrationNotify)
	expires_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, mailbox, contact),
	FOREIGN KEY (tenant, mailbox) REFERENCES mailboxes(tenant, number) ON DELETE CASCADE
) STRICT;
CREATE INDEX sip_registrations_by_expiry ON sip_registrations(expires_at);

CREATE TABLE sip_auth_key (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	key TEXT NOT NULL -- hex; the nonce HMAC key shared by the cluster
) STRICT;
`

// pgSIPAuthSchema is sipAuthSchema for PostgreSQL.
const pgSIPAuthSchema = `
CREATE TABLE sip_credentials (
	tenant     TEXT COLLATE "C" NOT NULL,
	mailbox    TEXT COLLATE "C" NOT NULL,
	realm      TEXT NOT NULL,
	ha1_md5    TEXT NOT NULL,
	ha1_sha256 TEXT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (tenant, mailbox),
	FOREIGN KEY (tenant, mailbox) REFERENCES mailboxes(tenant, number) ON DELETE CASCADE
);

CREATE TABLE sip_registrations (
	tenant     TEXT COLLATE "C" NOT NULL,
	mailbox    TEXT COLLATE "C" NOT NULL,
	contact    TEXT COLLATE "C" NOT NULL,
	source     TEXT NOT NULL DEFAULT '',
	transport  TEXT NOT NULL DEFAULT '',
	path       TEXT NOT NULL DEFAULT '[]',
	call_id    TEXT NOT NULL DEFAULT '',
	cseq       BIGINT NOT NULL DEFAULT 0,
	notified   TEXT NOT NULL DEFAULT '',
	expires_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (tenant, mailbox, contact),
	FOREIGN KEY (tenant, mailbox) REFERENCES mailboxes(tenant, number) ON DELETE CASCADE
);
CREATE INDEX sip_registrations_by_expiry ON sip_registrations(expires_at);

CREATE TABLE sip_auth_key (
	id  BIGINT PRIMARY KEY CHECK (id = 1),
	key TEXT NOT NULL
);
`

func (s *sqlStore) SetSIPCredentials(ctx context.Context, c *SIPCredentials) error {
	if c.HA1MD5 == "" || c.HA1SHA256 == "" || c.Realm == "" {
		return errors.New("store: set sip credentials: realm and both HA1 values are required")
	}
	now := time.Now().UTC()
	res, err := s.w.ExecContext(ctx, `INSERT INTO sip_credentials (tenant, mailbox, realm, ha1_md5, ha1_sha256, updated_at)
		SELECT tenant, number, ?, ?, ?, ? FROM mailboxes WHERE tenant = ? AND number = ?
		ON CONFLICT (tenant, mailbox) DO UPDATE SET realm = excluded.realm, ha1_md5 = excluded.ha1_md5,
			ha1_sha256 = excluded.ha1_sha256, updated_at = excluded.updated_at`,
		c.Realm, c.HA1MD5, c.HA1SHA256, now.UnixNano(), c.Tenant, c.Mailbox)
	if err != nil {
		return fmt.Errorf("store: set sip credentials %s/%s: %w", c.Tenant, c.Mailbox, err)
	}
	if err := mustAffect(res, "mailbox", c.Tenant+"/"+c.Mailbox); err != nil {
		return fmt.Errorf("store: set sip credentials: %w", err)
	}
	c.UpdatedAt = now
	return nil
}

func (s *sqlStore) GetSIPCredentials(ctx context.Context, tenant, mailbox string) (*SIPCredentials, error) {
	c := SIPCredentials{Tenant: tenant, Mailbox: mailbox}
	var updated int64
	err := s.r.QueryRowContext(ctx, `SELECT realm, ha1_md5, ha1_sha256, updated_at FROM sip_credentials
		WHERE tenant = ? AND mailbox = ?`, tenant, mailbox).Scan(&c.Realm, &c.HA1MD5, &c.HA1SHA256, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: sip credentials %s/%s: %w", tenant, mailbox, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: sip credentials %s/%s: %w", tenant, mailbox, err)
	}
	c.UpdatedAt = fromNanos(updated)
	return &c, nil
}

func (s *sqlStore) DeleteSIPCredentials(ctx context.Context, tenant, mailbox string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM sip_credentials WHERE tenant = ? AND mailbox = ?`, tenant, mailbox); err != nil {
		return fmt.Errorf("store: delete sip credentials %s/%s: %w", tenant, mailbox, err)
	}
	return nil
}

func (s *sqlStore) SIPAuthKey(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("store: sip auth key: %w", err)
	}
	// The first instance's key wins; the others read it.
	if _, err := s.w.ExecContext(ctx, `INSERT INTO sip_auth_key (id, key) VALUES (1, ?) ON CONFLICT (id) DO NOTHING`,
		hex.EncodeToString(fresh)); err != nil {
		return nil, fmt.Errorf("store: sip auth key: %w", err)
	}
	var k string
	if err := s.w.QueryRowContext(ctx, `SELECT key FROM sip_auth_key WHERE id = 1`).Scan(&k); err != nil {
		return nil, fmt.Errorf("store: sip auth key: %w", err)
	}
	key, err := hex.DecodeString(k)
	if err != nil {
		return nil, fmt.Errorf("store: sip auth key: %w", err)
	}
	return key, nil
}

func (s *sqlStore) SaveSIPRegistration(ctx context.Context, r *SIPRegistration) error {
	if r.Contact == "" {
		return errors.New("store: save sip registration: contact is required")
	}
	now := time.Now().UTC()
	res, err := s.w.ExecContext(ctx, `INSERT INTO sip_registrations
		(tenant, mailbox, contact, source, transport, path, call_id, cseq, expires_at, updated_at)
		SELECT tenant, number, ?, ?, ?, ?, ?, ?, ?, ? FROM mailboxes WHERE tenant = ? AND number = ?
		ON CONFLICT (tenant, mailbox, contact) DO UPDATE SET source = excluded.source,
			transport = excluded.transport, path = excluded.path, call_id = excluded.call_id,
			cseq = excluded.cseq, expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
		r.Contact, r.Source, r.Transport, encodeList(r.Path), r.CallID, int64(r.CSeq),
		r.ExpiresAt.UTC().UnixNano(), now.UnixNano(), r.Tenant, r.Mailbox)
	if err != nil {
		return fmt.Errorf("store: save sip registration %s/%s: %w", r.Tenant, r.Mailbox, err)
	}
	if err := mustAffect(res, "mailbox", r.Tenant+"/"+r.Mailbox); err != nil {
		return fmt.Errorf("store: save sip registration: %w", err)
	}
	r.UpdatedAt = now
	return nil
}

func (s *sqlStore) DeleteSIPRegistration(ctx context.Context, tenant, mailbox, contact string) error {
	q, args := `DELETE FROM sip_registrations WHERE tenant = ? AND mailbox = ?`, []any{tenant, mailbox}
	if contact != "" {
		q, args = q+` AND contact = ?`, append(args, contact)
	}
	if _, err := s.w.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("store: delete sip registration %s/%s: %w", tenant, mailbox, err)
	}
	return nil
}

func (s *sqlStore) ListSIPRegistrations(ctx context.Context, tenant, mailbox string, now time.Time) ([]SIPRegistration, error) {
	rows, err := s.hotQuery(ctx, `SELECT contact, source, transport, path, call_id, cseq, expires_at, updated_at
		FROM sip_registrations WHERE tenant = ? AND mailbox = ? AND expires_at > ? ORDER BY contact`,
		tenant, mailbox, now.UTC().UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: list sip registrations %s/%s: %w", tenant, mailbox, err)
	}
	out, err := collect(rows, func(sc scanner) (SIPRegistration, error) {
		r := SIPRegistration{Tenant: tenant, Mailbox: mailbox}
		var (
			path             string
			cseq             int64
			expires, updated int64
		)
		if err := sc.Scan(&r.Contact, &r.Source, &r.Transport, &path, &r.CallID, &cseq, &expires, &updated); err != nil {
			return r, err
		}
		var err error
		if r.Path, err = decodeList(path); err != nil {
			return r, fmt.Errorf("registration %s: path: %w", r.Contact, err)
		}
		r.CSeq, r.ExpiresAt, r.UpdatedAt = uint32(cseq), fromNanos(expires), fromNanos(updated)
		return r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list sip registrations %s/%s: %w", tenant, mailbox, err)
	}
	return out, nil
}

func (s *sqlStore) ClaimSIPRegistrationNotify(ctx context.Context, tenant, mailbox, contact, eventID string) (bool, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE sip_registrations SET notified = ?
		WHERE tenant = ? AND mailbox = ? AND contact = ? AND notified <> ?`, eventID, tenant, mailbox, contact, eventID)
	if err != nil {
		return false, fmt.Errorf("store: claim sip registration notify %s/%s: %w", tenant, mailbox, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: claim sip registration notify %s/%s: %w", tenant, mailbox, err)
	}
	return n == 1, nil
}
