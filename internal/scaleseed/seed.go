package scaleseed

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/vmserver/voicemail/store" // also registers the sqlite3 and pgx drivers
)

// markerTable holds the plan a database was seeded with; it is written
// last, so a seed that did not finish is never reused.
const markerTable = "scaleseed_plan"

// rawDB is a plain connection to the database behind a store DSN, for bulk
// statements the store has no methods for.
type rawDB struct {
	db *sql.DB
	pg bool
}

func openRaw(dsn string) (*rawDB, error) {
	scheme, rest, _ := strings.Cut(dsn, "://")
	switch scheme {
	case "sqlite", "sqlite3":
		db, err := sql.Open("sqlite3", "file:"+rest+"?_busy_timeout=10000&_txlock=immediate")
		if err != nil {
			return nil, fmt.Errorf("scaleseed: open %s: %w", rest, err)
		}
		db.SetMaxOpenConns(1) // pragmas are per connection
		return &rawDB{db: db}, nil
	case "postgres", "postgresql":
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("scaleseed: open postgres: %w", err)
		}
		db.SetMaxOpenConns(1)
		return &rawDB{db: db, pg: true}, nil
	}
	return nil, fmt.Errorf("scaleseed: unsupported database %q", scheme)
}

// Seeded returns the plan dsn was seeded with (ok false when none).
func Seeded(ctx context.Context, dsn string) (p Plan, ok bool, err error) {
	r, err := openRaw(dsn)
	if err != nil {
		return Plan{}, false, err
	}
	defer r.db.Close()
	var s string
	err = r.db.QueryRowContext(ctx, `SELECT plan FROM `+markerTable).Scan(&s)
	if err != nil {
		// No table (never seeded or seeding interrupted) or no row.
		return Plan{}, false, nil
	}
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return Plan{}, false, fmt.Errorf("scaleseed: stored plan: %w", err)
	}
	return p, true, nil
}

// Seed writes plan p into the empty database dsn: the schema (store.Open),
// the tenant, the mailboxes, the messages and the subscriptions. The
// secondary indexes of messages are dropped for the load and built again
// after it (one sort each instead of ten million random inserts).
func Seed(ctx context.Context, dsn string, p Plan, log *slog.Logger) error {
	if err := p.check(); err != nil {
		return err
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	err = st.CreateTenant(ctx, &store.Tenant{Name: Tenant})
	st.Close()
	if err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("scaleseed: tenant: %w", err)
	}
	r, err := openRaw(dsn)
	if err != nil {
		return err
	}
	defer r.db.Close()
	if !r.pg {
		// Loading, not serving: a crash means seeding again.
		for _, q := range []string{`PRAGMA synchronous = OFF`, `PRAGMA cache_size = -262144`} {
			if _, err := r.db.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("scaleseed: %s: %w", q, err)
			}
		}
	}
	start := time.Now()
	now := p.Now.UTC().UnixNano()
	if err := r.insert(ctx, "mailboxes", "tenant, number, name, created_at, updated_at", "", p.Mailboxes,
		func(j int) []any { return []any{Tenant, Mailbox(j), "Scale " + strconv.Itoa(j), now, now} }); err != nil {
		return err
	}
	log.Info("scaleseed: mailboxes", "n", p.Mailboxes, "took", time.Since(start))

	indexes, err := r.dropIndexes(ctx, "messages")
	if err != nil {
		return err
	}
	t := time.Now()
	if err := r.insertMessages(ctx, p, 0, p.Messages, ""); err != nil {
		return err
	}
	log.Info("scaleseed: messages", "n", p.Messages, "took", time.Since(t))
	t = time.Now()
	for _, ix := range indexes {
		if _, err := r.db.ExecContext(ctx, ix); err != nil {
			return fmt.Errorf("scaleseed: %s: %w", ix, err)
		}
	}
	log.Info("scaleseed: indexes", "n", len(indexes), "took", time.Since(t))

	t = time.Now()
	exp := p.Now.Add(30 * 24 * time.Hour).UTC().UnixNano()
	if err := r.insert(ctx, "mwi_subscriptions", `id, tenant, mailbox, call_id, local_tag, remote_tag, local_uri, remote_uri,
contact, transport, source, local_cseq, remote_cseq, expires_at, created_at, owner`, "", p.Subscriptions, func(k int) []any {
		s := p.Subscription(k)
		uri := "<sip:" + s.Mailbox + "@127.0.0.1>"
		return []any{s.ID, Tenant, s.Mailbox, s.CallID, "scale", "phone", uri, uri,
			s.Contact, "UDP", s.Source, 1, 1, exp, now, p.SubOwner}
	}); err != nil {
		return err
	}
	log.Info("scaleseed: subscriptions", "n", p.Subscriptions, "took", time.Since(t))

	// Fresh statistics: the planner sees ten million rows, not an empty
	// table. On PostgreSQL also the visibility map, as autovacuum leaves it
	// in a database that has been running: without it the MWI counts read
	// the table instead of the index alone (store/scale_indexes.go).
	if err := r.tidy(ctx, ""); err != nil {
		return err
	}
	plan, _ := json.Marshal(p)
	if _, err := r.db.ExecContext(ctx, `CREATE TABLE `+markerTable+` (plan TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("scaleseed: marker: %w", err)
	}
	if _, err := r.db.ExecContext(ctx, r.ph(`INSERT INTO `+markerTable+` (plan) VALUES (?)`), string(plan)); err != nil {
		return fmt.Errorf("scaleseed: marker: %w", err)
	}
	if !r.pg {
		if _, err := r.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			return fmt.Errorf("scaleseed: checkpoint: %w", err)
		}
	}
	log.Info("scaleseed: done", "took", time.Since(start))
	return nil
}

// Restore writes messages [from, to) of p again, keeping those still
// there: a benchmark that deleted them (the retention sweep) restores its
// data set with it.
func Restore(ctx context.Context, dsn string, p Plan, from, to int) error {
	r, err := openRaw(dsn)
	if err != nil {
		return err
	}
	defer r.db.Close()
	conflict := " ON CONFLICT (id) DO NOTHING"
	if err := r.insertMessages(ctx, p, from, to, conflict); err != nil {
		return err
	}
	// The data set stands for a database autovacuum has passed over
	// (see Seed); on SQLite there is nothing to refresh.
	if r.pg {
		return r.tidy(ctx, "messages")
	}
	return nil
}

func (r *rawDB) insertMessages(ctx context.Context, p Plan, from, to int, conflict string) error {
	return r.insert(ctx, "messages", `id, tenant, mailbox, folder, caller_id, caller_e164, caller_name,
received_at, duration_ms, urgent, read, size, media_key`, conflict, to-from, func(k int) []any {
		m := p.Message(from + k)
		return []any{m.ID, Tenant, m.Mailbox, m.Folder, m.Caller, m.Caller, "",
			m.Received, m.DurationMS, m.Urgent, m.Read, m.Size, m.MediaKey}
	})
}

// insert writes n rows of table in multi-row INSERTs, 200,000 rows per
// transaction.
func (r *rawDB) insert(ctx context.Context, table, cols, conflict string, n int, row func(int) []any) error {
	const perStmt, perTx = 250, 200_000
	ncol := strings.Count(cols, ",") + 1
	stmtFor := func(rows int) string {
		var b strings.Builder
		b.WriteString("INSERT INTO " + table + " (" + cols + ") VALUES ")
		arg := 1
		for i := 0; i < rows; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			for c := 0; c < ncol; c++ {
				if c > 0 {
					b.WriteByte(',')
				}
				if r.pg {
					b.WriteString("$" + strconv.Itoa(arg))
				} else {
					b.WriteByte('?')
				}
				arg++
			}
			b.WriteByte(')')
		}
		b.WriteString(conflict)
		return b.String()
	}
	full := stmtFor(perStmt)
	args := make([]any, 0, perStmt*ncol)
	for base := 0; base < n; base += perTx {
		end := min(n, base+perTx)
		tx, err := r.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("scaleseed: %s: %w", table, err)
		}
		stmt, err := tx.PrepareContext(ctx, full)
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("scaleseed: %s: %w", table, err)
		}
		for i := base; i < end; i += perStmt {
			k := min(perStmt, end-i)
			args = args[:0]
			for j := i; j < i+k; j++ {
				args = append(args, row(j)...)
			}
			if k == perStmt {
				_, err = stmt.ExecContext(ctx, args...)
			} else {
				_, err = tx.ExecContext(ctx, stmtFor(k), args...)
			}
			if err != nil {
				tx.Rollback()
				return fmt.Errorf("scaleseed: insert into %s: %w", table, err)
			}
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("scaleseed: %s: commit: %w", table, err)
		}
	}
	return nil
}

// dropIndexes drops the secondary indexes of table and returns the
// statements that build them again.
func (r *rawDB) dropIndexes(ctx context.Context, table string) ([]string, error) {
	q := `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name`
	if r.pg {
		q = `SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.tablename = $1 AND i.schemaname = current_schema()
AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname) ORDER BY i.indexname`
	}
	rows, err := r.db.QueryContext(ctx, q, table)
	if err != nil {
		return nil, fmt.Errorf("scaleseed: indexes of %s: %w", table, err)
	}
	var names, defs []string
	for rows.Next() {
		var n, d string
		if err := rows.Scan(&n, &d); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scaleseed: indexes of %s: %w", table, err)
		}
		names, defs = append(names, n), append(defs, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scaleseed: indexes of %s: %w", table, err)
	}
	for _, n := range names {
		if _, err := r.db.ExecContext(ctx, `DROP INDEX `+n); err != nil {
			return nil, fmt.Errorf("scaleseed: drop index %s: %w", n, err)
		}
	}
	return defs, nil
}

// ph turns ? placeholders into $n on PostgreSQL.
func (r *rawDB) ph(q string) string {
	if !r.pg {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Tidy refreshes the statistics of every table of the data set at dsn and,
// on PostgreSQL, vacuums them: a benchmark that rewrote many rows (the
// MWI start-up rewrites every subscription's CSeq) leaves dead rows that a
// server running all along would have had autovacuum remove, but the
// benchmarks' PostgreSQL only runs during a test.
func Tidy(ctx context.Context, dsn string) error {
	r, err := openRaw(dsn)
	if err != nil {
		return err
	}
	defer r.db.Close()
	return r.tidy(ctx, "")
}

// tidy refreshes the statistics (and on PostgreSQL the visibility map) of
// table, or of every table when it is "".
func (r *rawDB) tidy(ctx context.Context, table string) error {
	q := "ANALYZE"
	if r.pg {
		q = "VACUUM (ANALYZE)"
	}
	if table != "" {
		q += " " + table
	}
	if _, err := r.db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("scaleseed: %s: %w", q, err)
	}
	return nil
}
