package store

// This file is over 600 lines on purpose: it holds the core schema, the
// opening of both SQL backends and the mailbox queries that the rest of the
// store builds on; the other features have their own files.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers "sqlite3"
)

// migrations is the ordered schema history: migrations[i] takes the schema
// from version i to i+1. Only append; never edit a step that has shipped.
// Folder and type values are checked in Go rather than with CHECK
// constraints, because SQLite cannot alter a CHECK without rebuilding the table.
var migrations = []string{
	coreSchema,          // 1: tenants, mailboxes, messages
	accessSchema,        // 2: access IVR (issue 3), store/sqlite_access.go
	mwiSchema,           // 3: MWI subscriptions (issue 4), store/sqlite_mwi.go
	apiSchema,           // 4: tokens, webhooks, event queue (issue 5), store/sqlite_api.go
	mailSchema,          // 5: email outbox (issue 7), store/sqlite_mail.go
	gdprSchema,          // 6: GDPR forget/undo and audit, retention (issue 6), store/sqlite_gdpr.go
	outboxSchemaSQLite,  // 7: the change log (transactional outbox), store/outbox.go
	clientsSchema,       // 8: API clients and their tokens (issue 21), store/sqlite_clients.go
	clusterSchemaSQLite, // 9: MWI subscription owners, instance heartbeats, leases (issue 13), store/cluster.go
	sipAuthSchema,       // 10: SIP digest credentials, registrations, nonce key (issue 15), store/sqlite_sipauth.go
	scaleIndexesSQLite,  // 11: a covering index for a mailbox's counts (issue 18), store/scale_indexes.go
}

// coreSchema is version 1.
const coreSchema = `
CREATE TABLE tenants (
	name       TEXT PRIMARY KEY,
	domains    TEXT NOT NULL DEFAULT '[]', -- JSON array of hosts
	created_at INTEGER NOT NULL            -- unix nanoseconds, UTC
) STRICT;

CREATE TABLE mailboxes (
	tenant             TEXT NOT NULL REFERENCES tenants(name),
	number             TEXT NOT NULL,
	name               TEXT NOT NULL DEFAULT '',
	type               TEXT NOT NULL DEFAULT 'personal',
	members            TEXT NOT NULL DEFAULT '[]', -- JSON array of numbers
	pin_hash           TEXT NOT NULL DEFAULT '',
	email              TEXT NOT NULL DEFAULT '',
	attach_audio       INTEGER NOT NULL DEFAULT 0,
	delete_after_email INTEGER NOT NULL DEFAULT 0,
	max_messages       INTEGER NOT NULL DEFAULT 0,
	max_seconds        INTEGER NOT NULL DEFAULT 0,
	review             INTEGER NOT NULL DEFAULT 0,
	ask_password       INTEGER NOT NULL DEFAULT 1,
	operator           TEXT NOT NULL DEFAULT '',
	timezone           TEXT NOT NULL DEFAULT '',
	language           TEXT NOT NULL DEFAULT '',
	mwi_targets        TEXT NOT NULL DEFAULT '[]', -- JSON array of SIP URIs
	retention_days     INTEGER NOT NULL DEFAULT 0,
	created_at         INTEGER NOT NULL,
	updated_at         INTEGER NOT NULL,
	PRIMARY KEY (tenant, number)
) STRICT;

CREATE TABLE messages (
	id          TEXT PRIMARY KEY, -- UUIDv7, sorts by time
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
	FOREIGN KEY (tenant, mailbox) REFERENCES mailboxes(tenant, number)
) STRICT;

CREATE INDEX messages_by_folder ON messages(tenant, mailbox, folder);
CREATE INDEX messages_by_caller ON messages(tenant, caller_e164);
`

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// sqlStore is the Store of both SQL backends; d says which (store/sqldb.go
// translates the statements). On SQLite, writes stay on one connection so
// that goroutines queue in database/sql instead of failing with "database is
// locked", while reads use a pool that WAL lets run beside the writer. On
// PostgreSQL, w and r are the same pool.
type sqlStore struct {
	w    *sqlDB // SQLite: exactly one connection; every write goes here
	r    *sqlDB // SQLite: read-only pool
	d    dialect
	path string // for messages: the file, or the PostgreSQL host/database
	// outbox wakes local followers after a commit that wrote events.
	outbox *outboxWake
	// stopListen ends the PostgreSQL LISTEN connection (nil on SQLite).
	stopListen func()
	closed     atomic.Bool // followers stop when it is set
	wal        *walKeeper  // bounds the SQLite WAL (sqlite_wal.go); nil on PostgreSQL
	// group batches message inserts (sqlite_groupcommit.go); nil on PostgreSQL.
	group *groupCommitter
	// readStmts holds statements prepared on the read pool (hotQueryRow),
	// writeStmts those prepared on SQLite's writer connection at open (txStmt).
	readStmts, writeStmts sync.Map // query text -> *sqlStmt
}

// hotQueryRow and hotQuery run a query asked very often (the MWI counts,
// read for every NOTIFY; the registrations, read for every change; the
// mailbox listings of the API and the IVR; the tenant and the mailbox of
// every INVITE) on the
// read pool. On SQLite the statement is prepared at its first use and
// kept: compiling it at every call cost a third of the query. PostgreSQL
// runs it as any other: pgx keeps each connection's statements prepared by
// itself, and a database/sql statement on top re-prepares as calls move
// between connections (measured slower).
func (s *sqlStore) hotQueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st := s.hotStmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.r.QueryRowContext(ctx, q, args...)
}

func (s *sqlStore) hotQuery(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := s.hotStmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.r.QueryContext(ctx, q, args...)
}

// hotStmt is q prepared on SQLite's read pool; nil on PostgreSQL, or when
// it does not prepare (the caller runs it unprepared, which reports the
// error).
func (s *sqlStore) hotStmt(ctx context.Context, q string) *sqlStmt {
	if s.d == dialectPostgres {
		return nil
	}
	if st, ok := s.readStmts.Load(q); ok {
		return st.(*sqlStmt)
	}
	prepared, err := s.r.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	if st, ok := s.readStmts.LoadOrStore(q, prepared); ok {
		prepared.Close()
		return st.(*sqlStmt)
	}
	return prepared
}

// Statements a write transaction may run many times: a retention batch
// deletes ten messages and writes ten change events.
const (
	qMailboxKind  = `SELECT type, members FROM mailboxes WHERE tenant = ? AND number = ?`
	qInsertChange = `INSERT INTO change_events (event_id, at, kind, tenant, mailbox, body) VALUES (?, ?, ?, ?, ?, ?)`
	qDeleteRow    = `DELETE FROM messages WHERE id = ? AND tenant = ? AND mailbox = ? RETURNING ` + messageCols
)

// prepareWriteStmts compiles those statements on SQLite's one writer
// connection at open. Not later: a transaction holds that connection, so a
// statement prepared on the pool from inside one would wait for it forever.
func (s *sqlStore) prepareWriteStmts(ctx context.Context) error {
	for _, q := range []string{qMailboxKind, qInsertChange, qDeleteRow} {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("store: prepare %q: %w", q, err)
		}
		s.writeStmts.Store(q, st)
	}
	return nil
}

// txStmt returns q for tx as prepared by prepareWriteStmts; nil on
// PostgreSQL, whose driver keeps its own statements prepared, and for any
// other statement (the caller runs q on tx).
func (s *sqlStore) txStmt(ctx context.Context, tx *sqlTx, q string) *sqlStmt {
	st, ok := s.writeStmts.Load(q)
	if !ok {
		return nil
	}
	return &sqlStmt{Stmt: tx.Tx.StmtContext(ctx, st.(*sqlStmt).Stmt), d: s.d}
}

// txQueryRow and txExec run q on tx, prepared once where txStmt can.
func (s *sqlStore) txQueryRow(ctx context.Context, tx *sqlTx, q string, args ...any) *sql.Row {
	if st := s.txStmt(ctx, tx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

func (s *sqlStore) txExec(ctx context.Context, tx *sqlTx, q string, args ...any) (sql.Result, error) {
	if st := s.txStmt(ctx, tx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

// sqliteStore is the former name of sqlStore, kept so that code written
// against it keeps compiling.
type sqliteStore = sqlStore

var _ Store = (*sqlStore)(nil)

func openSQLite(ctx context.Context, p string) (*sqlStore, error) {
	if p == "" {
		return nil, errors.New("store: sqlite: empty path (want sqlite:///abs/path.db or sqlite://rel/path.db)")
	}
	if strings.ContainsAny(p, "?#") {
		return nil, fmt.Errorf("store: sqlite path %q: query parameters are not supported", p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite path %q: %w", p, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("store: create database directory: %w", err)
	}
	// SQLite creates the file 0644 (and its -wal and -shm files with the
	// same mode): create it first, owner-only, since it holds PIN and token
	// hashes (docs/storage.md). An empty file is an empty database.
	if f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("store: create database file: %w", err)
	} else if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store: create database file: %w", err)
	}

	// A file: URI so that any character in the path survives (SQLite
	// decodes %XX); go-sqlite3 consumes the _ parameters itself.
	// synchronous=FULL: a transaction is on disk when its commit returns
	// (one fsync of the WAL). A message row is the point from which a
	// recording is kept through a power loss (docs/storage.md,
	// "Durability"); rows committed together share the fsync (group
	// commit), so under load it costs less than one per message.
	base := "file:" + (&url.URL{Path: abs}).EscapedPath() +
		"?_busy_timeout=5000&_foreign_keys=on&_synchronous=FULL"
	// BEGIN IMMEDIATE takes the write lock up front, so a transaction never
	// fails half-way when another process holds the lock.
	wdb, err := sql.Open("sqlite3", base+"&_journal_mode=WAL&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", abs, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	w := &sqlDB{DB: wdb, d: dialectSQLite}

	s := &sqlStore{w: w, d: dialectSQLite, path: abs, outbox: newOutboxWake()}
	// Migrate before opening readers: the first connection switches the file
	// to WAL (a persistent setting) and creates the schema.
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}

	r, err := sql.Open("sqlite3", base+"&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s for reading: %w", abs, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s.r = &sqlDB{DB: r, d: dialectSQLite}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	cp, err := sql.Open("sqlite3", base)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("store: open %s for checkpoints: %w", abs, err)
	}
	cp.SetMaxOpenConns(1)
	cp.SetMaxIdleConns(1)
	if err := s.prepareWriteStmts(ctx); err != nil {
		cp.Close()
		s.Close()
		return nil, err
	}
	s.startWALKeeper(cp)
	s.startGroupCommit()
	return s, nil
}

// migrate brings the schema to len(migrations) in one transaction, so a
// crash or a concurrent Open by another process never sees a half-migrated file.
func (s *sqlStore) migrate(ctx context.Context) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migrate %s: begin: %w", s.path, err)
	}
	defer tx.Rollback()

	migrations := migrations
	if s.d == dialectPostgres {
		// Replicas that start at once queue here; the first one migrates,
		// the others then find the schema current. The lock ends with the
		// transaction, and PostgreSQL DDL is transactional.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, pgMigrateLock); err != nil {
			return fmt.Errorf("store: migrate %s: lock: %w", s.path, err)
		}
		migrations = pgMigrations
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate %s: %w", s.path, err)
	}
	var version int
	err = tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("store: migrate %s: %w", s.path, err)
		}
	case err != nil:
		return fmt.Errorf("store: migrate %s: read version: %w", s.path, err)
	}
	if version > len(migrations) {
		return fmt.Errorf("store: database %s has schema version %d, newer than this binary (%d)", s.path, version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("store: migrate %s to version %d: %w", s.path, v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, len(migrations)); err != nil {
		return fmt.Errorf("store: migrate %s: %w", s.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migrate %s: commit: %w", s.path, err)
	}
	return nil
}

func (s *sqlStore) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("store: ping %s: %w", s.path, err)
	}
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping %s (writer): %w", s.path, err)
	}
	return nil
}

func (s *sqlStore) Close() error {
	s.closed.Store(true)
	s.stopGroupCommit()
	s.stopWALKeeper()
	s.outbox.signal() // followers notice at once
	if s.stopListen != nil {
		s.stopListen()
	}
	for _, m := range []*sync.Map{&s.readStmts, &s.writeStmts} {
		m.Range(func(_, st any) bool {
			st.(*sqlStmt).Close()
			return true
		})
	}
	var errR error
	if s.r != nil && s.r != s.w {
		errR = s.r.Close()
	}
	// The writer closes last: the last connection checkpoints the WAL.
	if err := errors.Join(errR, s.w.Close()); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

// ---- tenants ----

func (s *sqlStore) CreateTenant(ctx context.Context, t *Tenant) error {
	if err := checkName("tenant", t.Name); err != nil {
		return err
	}
	for _, d := range t.Domains {
		if strings.TrimSpace(d) == "" {
			return fmt.Errorf("store: tenant %q: empty domain", t.Name)
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: create tenant %q: %w", t.Name, err)
	}
	defer tx.Rollback()

	// One host must map to one tenant, or TenantForDomain would be ambiguous.
	// SQLite serialises writers; PostgreSQL needs a lock so that two
	// concurrent creations cannot both find a domain free.
	if s.d == dialectPostgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, pgTenantLock); err != nil {
			return fmt.Errorf("store: create tenant %q: %w", t.Name, err)
		}
	}
	for _, d := range t.Domains {
		var owner string
		err := tx.QueryRowContext(ctx, `
SELECT t.name FROM tenants t, `+s.d.eachOf("t.domains", "d")+`
WHERE lower(d.value) = ? LIMIT 1`, normHost(d)).Scan(&owner)
		if err == nil {
			return fmt.Errorf("store: create tenant %q: domain %q already belongs to tenant %q: %w", t.Name, d, owner, ErrExists)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: create tenant %q: %w", t.Name, err)
		}
	}

	now := time.Now().UTC()
	_, err = tx.ExecContext(ctx, `INSERT INTO tenants (name, domains, created_at) VALUES (?, ?, ?)`,
		t.Name, encodeList(t.Domains), now.UnixNano())
	if isConflict(err) {
		return fmt.Errorf("store: create tenant %q: %w", t.Name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: create tenant %q: %w", t.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: create tenant %q: commit: %w", t.Name, err)
	}
	t.CreatedAt = now
	return nil
}

func scanTenant(sc scanner) (Tenant, error) {
	var (
		t       Tenant
		domains string
		created int64
	)
	if err := sc.Scan(&t.Name, &domains, &created); err != nil {
		return Tenant{}, err
	}
	var err error
	if t.Domains, err = decodeList(domains); err != nil {
		return Tenant{}, fmt.Errorf("tenant %q: domains: %w", t.Name, err)
	}
	t.CreatedAt = fromNanos(created)
	return t, nil
}

func (s *sqlStore) GetTenant(ctx context.Context, name string) (*Tenant, error) {
	t, err := scanTenant(s.r.QueryRowContext(ctx, `SELECT name, domains, created_at FROM tenants WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: tenant %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get tenant %q: %w", name, err)
	}
	return &t, nil
}

func (s *sqlStore) ListTenants(ctx context.Context) ([]Tenant, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, domains, created_at FROM tenants ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list tenants: %w", err)
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list tenants: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list tenants: %w", err)
	}
	return out, nil
}

func (s *sqlStore) DeleteTenant(ctx context.Context, name string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: delete tenant %q: %w", name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM mailboxes WHERE tenant = ?`, name).Scan(&n); err != nil {
		return fmt.Errorf("store: delete tenant %q: %w", name, err)
	}
	if n > 0 {
		// Cascading would drop message rows whose media nobody could then find.
		return fmt.Errorf("store: delete tenant %q: it still has %d mailboxes: %w", name, n, ErrExists)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM tenants WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("store: delete tenant %q: %w", name, err)
	}
	if err := mustAffect(res, "tenant", name); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: delete tenant %q: commit: %w", name, err)
	}
	return nil
}

// tenantForDomainSQL is TenantForDomain's query per dialect, built once:
// it runs for every INVITE, and building it there cost allocations.
var tenantForDomainSQL = func() (q [dialectPostgres + 1]string) {
	for d := range q {
		q[d] = `
SELECT t.name FROM tenants t, ` + dialect(d).eachOf("t.domains", "d") + `
WHERE lower(d.value) = ? ORDER BY t.name LIMIT 1`
	}
	return q
}()

func (s *sqlStore) TenantForDomain(ctx context.Context, host string) (string, error) {
	h := normHost(host)
	if h == "" {
		return DefaultTenant, nil
	}
	var name string
	err := s.hotQueryRow(ctx, tenantForDomainSQL[s.d], h).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return DefaultTenant, nil
	}
	if err != nil {
		return "", fmt.Errorf("store: tenant for domain %q: %w", host, err)
	}
	return name, nil
}

// normHost lower-cases a host and drops a trailing root dot ("Example.COM." = "example.com").
func normHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}

// ---- mailboxes ----

const mailboxCols = `tenant, number, name, type, members, pin_hash, email, attach_audio,
delete_after_email, max_messages, max_seconds, review, ask_password, operator, timezone,
language, mwi_targets, retention_days, created_at, updated_at`

func scanMailbox(sc scanner) (Mailbox, error) {
	var (
		m                Mailbox
		members, targets string
		created, updated int64
	)
	err := sc.Scan(&m.Tenant, &m.Number, &m.Name, &m.Type, &members, &m.PINHash, &m.Email,
		&m.AttachAudio, &m.DeleteAfterEmail, &m.MaxMessages, &m.MaxSeconds, &m.Review,
		&m.AskPassword, &m.Operator, &m.Timezone, &m.Language, &targets, &m.RetentionDays,
		&created, &updated)
	if err != nil {
		return Mailbox{}, err
	}
	if m.Members, err = decodeList(members); err != nil {
		return Mailbox{}, fmt.Errorf("mailbox %s/%s: members: %w", m.Tenant, m.Number, err)
	}
	if m.MWITargets, err = decodeList(targets); err != nil {
		return Mailbox{}, fmt.Errorf("mailbox %s/%s: mwi_targets: %w", m.Tenant, m.Number, err)
	}
	m.CreatedAt, m.UpdatedAt = fromNanos(created), fromNanos(updated)
	return m, nil
}

func checkMailbox(m *Mailbox) error {
	if err := checkName("tenant", m.Tenant); err != nil {
		return err
	}
	if err := checkName("mailbox number", m.Number); err != nil {
		return err
	}
	if m.Type == "" {
		m.Type = TypePersonal
	}
	if m.Type != TypePersonal && m.Type != TypeGroup {
		return fmt.Errorf("store: mailbox %s/%s: invalid type %q (want %q or %q)", m.Tenant, m.Number, m.Type, TypePersonal, TypeGroup)
	}
	return nil
}

func (s *sqlStore) CreateMailbox(ctx context.Context, m *Mailbox) error {
	if err := checkMailbox(m); err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: create mailbox %s/%s: %w", m.Tenant, m.Number, err)
	}
	defer tx.Rollback()
	if err := tenantExists(ctx, tx, m.Tenant); err != nil {
		return fmt.Errorf("store: create mailbox %s/%s: %w", m.Tenant, m.Number, err)
	}
	now := time.Now().UTC()
	_, err = tx.ExecContext(ctx, `INSERT INTO mailboxes (`+mailboxCols+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.Tenant, m.Number, m.Name, m.Type, encodeList(m.Members), m.PINHash, m.Email,
		m.AttachAudio, m.DeleteAfterEmail, m.MaxMessages, m.MaxSeconds, m.Review,
		m.AskPassword, m.Operator, m.Timezone, m.Language, encodeList(m.MWITargets),
		m.RetentionDays, now.UnixNano(), now.UnixNano())
	if isConflict(err) {
		return fmt.Errorf("store: create mailbox %s/%s: %w", m.Tenant, m.Number, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: create mailbox %s/%s: %w", m.Tenant, m.Number, err)
	}
	created := *m
	created.CreatedAt, created.UpdatedAt = now, now
	if err := s.writeChange(ctx, tx, Change{Kind: MailboxCreated, Tenant: m.Tenant, Mailbox: m.Number, MailboxObj: &created}); err != nil {
		return fmt.Errorf("store: create mailbox %s/%s: %w", m.Tenant, m.Number, err)
	}
	if err := s.commitChanges(tx); err != nil {
		return fmt.Errorf("store: create mailbox %s/%s: commit: %w", m.Tenant, m.Number, err)
	}
	m.CreatedAt, m.UpdatedAt = now, now
	return nil
}

func (s *sqlStore) GetMailbox(ctx context.Context, tenant, number string) (*Mailbox, error) {
	m, err := scanMailbox(s.hotQueryRow(ctx,
		`SELECT `+mailboxCols+` FROM mailboxes WHERE tenant = ? AND number = ?`, tenant, number))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: mailbox %s/%s: %w", tenant, number, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get mailbox %s/%s: %w", tenant, number, err)
	}
	return &m, nil
}

func (s *sqlStore) ListMailboxes(ctx context.Context, tenant, after string, limit int) ([]Mailbox, string, error) {
	limit = pageSize(limit)
	rows, err := s.r.QueryContext(ctx, `SELECT `+mailboxCols+` FROM mailboxes
WHERE tenant = ? AND number > ? ORDER BY number LIMIT ?`, tenant, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("store: list mailboxes of %q: %w", tenant, err)
	}
	items, err := collect(rows, scanMailbox)
	if err != nil {
		return nil, "", fmt.Errorf("store: list mailboxes of %q: %w", tenant, err)
	}
	// One extra row tells whether another page exists without a count query.
	var next string
	if len(items) > limit {
		items = items[:limit]
		next = items[limit-1].Number
	}
	return items, next, nil
}

func (s *sqlStore) UpdateMailbox(ctx context.Context, m *Mailbox) error {
	if err := checkMailbox(m); err != nil {
		return err
	}
	now := time.Now().UTC()
	var created int64
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: update mailbox %s/%s: %w", m.Tenant, m.Number, err)
	}
	defer tx.Rollback()
	err = tx.QueryRowContext(ctx, `UPDATE mailboxes SET
name = ?, type = ?, members = ?, pin_hash = ?, email = ?, attach_audio = ?,
delete_after_email = ?, max_messages = ?, max_seconds = ?, review = ?, ask_password = ?,
operator = ?, timezone = ?, language = ?, mwi_targets = ?, retention_days = ?, updated_at = ?
WHERE tenant = ? AND number = ? RETURNING created_at`,
		m.Name, m.Type, encodeList(m.Members), m.PINHash, m.Email, m.AttachAudio,
		m.DeleteAfterEmail, m.MaxMessages, m.MaxSeconds, m.Review, m.AskPassword,
		m.Operator, m.Timezone, m.Language, encodeList(m.MWITargets), m.RetentionDays,
		now.UnixNano(), m.Tenant, m.Number).Scan(&created)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: update mailbox %s/%s: %w", m.Tenant, m.Number, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: update mailbox %s/%s: %w", m.Tenant, m.Number, err)
	}
	updated := *m
	updated.CreatedAt, updated.UpdatedAt = fromNanos(created), now
	if err := s.writeChange(ctx, tx, Change{Kind: MailboxUpdated, Tenant: m.Tenant, Mailbox: m.Number, MailboxObj: &updated}); err != nil {
		return fmt.Errorf("store: update mailbox %s/%s: %w", m.Tenant, m.Number, err)
	}
	if err := s.commitChanges(tx); err != nil {
		return fmt.Errorf("store: update mailbox %s/%s: commit: %w", m.Tenant, m.Number, err)
	}
	m.CreatedAt, m.UpdatedAt = updated.CreatedAt, now
	return nil
}

func (s *sqlStore) DeleteMailbox(ctx context.Context, tenant, number string) ([]Message, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: delete mailbox %s/%s: %w", tenant, number, err)
	}
	defer tx.Rollback()
	mb, err := scanMailbox(tx.QueryRowContext(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE tenant = ? AND number = ?`, tenant, number))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: mailbox %s/%s: %w", tenant, number, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: delete mailbox %s/%s: %w", tenant, number, err)
	}
	rows, err := tx.QueryContext(ctx, `DELETE FROM messages WHERE tenant = ? AND mailbox = ? RETURNING `+messageCols,
		tenant, number)
	if err != nil {
		return nil, fmt.Errorf("store: delete mailbox %s/%s: messages: %w", tenant, number, err)
	}
	msgs, err := collect(rows, scanMessage)
	if err != nil {
		return nil, fmt.Errorf("store: delete mailbox %s/%s: messages: %w", tenant, number, err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM mailboxes WHERE tenant = ? AND number = ?`, tenant, number)
	if err != nil {
		return nil, fmt.Errorf("store: delete mailbox %s/%s: %w", tenant, number, err)
	}
	if err := mustAffect(res, "mailbox", tenant+"/"+number); err != nil {
		return nil, err
	}
	if err := s.writeChange(ctx, tx, Change{Kind: MailboxDeleted, Tenant: tenant, Mailbox: number, MailboxObj: &mb}); err != nil {
		return nil, fmt.Errorf("store: delete mailbox %s/%s: %w", tenant, number, err)
	}
	if err := s.commitChanges(tx); err != nil {
		return nil, fmt.Errorf("store: delete mailbox %s/%s: commit: %w", tenant, number, err)
	}
	sortMessages(msgs) // RETURNING order is unspecified
	return msgs, nil
}

func (s *sqlStore) GroupsOf(ctx context.Context, tenant, member string) ([]Mailbox, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+mailboxCols+` FROM mailboxes m
WHERE tenant = ? AND type = ? AND EXISTS (SELECT 1 FROM `+s.d.eachOf("m.members", "e")+` WHERE e.value = ?)
ORDER BY number`, tenant, TypeGroup, member)
	if err != nil {
		return nil, fmt.Errorf("store: groups of %s/%s: %w", tenant, member, err)
	}
	out, err := collect(rows, scanMailbox)
	if err != nil {
		return nil, fmt.Errorf("store: groups of %s/%s: %w", tenant, member, err)
	}
	return out, nil
}

// ---- helpers ----

type scanner interface{ Scan(dest ...any) error }

// collect scans every row and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	return collectInto(nil, rows, scan)
}

// collectInto is collect appending to out, for callers that know how many
// rows come (a slice of large structs grown one row at a time is copied
// and rescanned by the collector again and again).
func collectInto[T any](out []T, rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func tenantExists(ctx context.Context, tx *sqlTx, name string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM tenants WHERE name = ?`, name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("tenant %q: %w", name, ErrNotFound)
	}
	return err
}

func mustAffect(res sql.Result, kind, name string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: delete %s %s: %w", kind, name, err)
	}
	if n == 0 {
		return fmt.Errorf("store: %s %s: %w", kind, name, ErrNotFound)
	}
	return nil
}

func pageSize(limit int) int {
	if limit <= 0 {
		return defaultPageSize
	}
	return min(limit, maxPageSize)
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// encodeList stores nil as "[]" so that the column is always a JSON array.
func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // a []string always marshals
	return string(b)
}

// decodeList returns a non-nil slice, so API encoders print [] rather than null.
func decodeList(s string) ([]string, error) {
	out := []string{}
	if s == "[]" {
		return out, nil // most mailboxes: no members, no targets
	}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, err
	}
	return out, nil
}

func sortMessages(ms []Message) {
	slices.SortFunc(ms, func(a, b Message) int { return strings.Compare(a.ID, b.ID) })
}

// checkName rejects tenant names and mailbox numbers that could not be part
// of a media key ("<tenant>/<mailbox>/…"): empty, too long, leading dot, or
// characters outside letters, digits and "-_.+@".
func checkName(kind, s string) error {
	if s == "" || len(s) > 64 || s[0] == '.' {
		return fmt.Errorf("store: invalid %s %q", kind, s)
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("-_.+@", r):
		default:
			return fmt.Errorf("store: invalid %s %q: character %q not allowed", kind, s, r)
		}
	}
	return nil
}
