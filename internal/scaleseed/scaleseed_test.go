package scaleseed

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmserver/voicemail/store"
)

// TestSmoke seeds the small data set on both backends with the same code as
// the full one and checks that the rows are what the plan says and that
// the queries the scale benchmarks time are served by indexes (no full
// scan of messages), which is what keeps them fast at ten million rows.
func TestSmoke(t *testing.T) {
	for _, backend := range Backends {
		t.Run(backend, func(t *testing.T) {
			p := Smoke(time.Now())
			dsn, _ := Prepare(t, backend, p, "")
			ctx := context.Background()
			st, err := store.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			r, err := openRaw(dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer r.db.Close()

			for table, want := range map[string]int{"messages": p.Messages, "mailboxes": p.Mailboxes, "mwi_subscriptions": p.Subscriptions} {
				var n int
				if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != want {
					t.Errorf("%s: %d rows (%v), want %d", table, n, err, want)
				}
			}

			// One mailbox listed through the store: exactly the plan's rows, in id order.
			mb := Mailbox(7)
			var want []string
			for i := 0; i < p.Messages; i++ {
				if m := p.Message(i); m.Mailbox == mb {
					want = append(want, m.ID)
				}
			}
			var got []string
			for after := ""; ; {
				items, next, err := st.ListMessages(ctx, store.MessageFilter{Tenant: Tenant, Mailbox: mb, After: after, Limit: 20})
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range items {
					got = append(got, m.ID)
				}
				if next == "" {
					break
				}
				after = next
			}
			if !slices.Equal(got, want) || len(want) == 0 {
				t.Errorf("mailbox %s lists %d messages, want the plan's %d", mb, len(got), len(want))
			}

			for k := 0; k < p.HeavyCallers; k++ {
				msgs, err := st.MessagesByCaller(ctx, Tenant, HeavyCaller(k))
				if err != nil || len(msgs) != p.PerCaller {
					t.Fatalf("caller %s: %d messages (%v), want %d", HeavyCaller(k), len(msgs), err, p.PerCaller)
				}
				if msgs[0].ID != p.Message(p.HeavyIndex(k, 0)).ID {
					t.Errorf("caller %s: first message %s, want %s", HeavyCaller(k), msgs[0].ID, p.Message(p.HeavyIndex(k, 0)).ID)
				}
			}

			expired, err := st.ExpiredMessages(ctx, time.Now(), p.RetentionDays, 2*p.Messages)
			if err != nil || len(expired) != p.Expired {
				t.Errorf("expired: %d (%v), want %d", len(expired), err, p.Expired)
			}

			// Restore puts back what a sweep deleted, and nothing twice.
			for _, m := range expired[:10] {
				if _, err := st.DeleteMessage(ctx, m.Tenant, m.Mailbox, m.ID); err != nil {
					t.Fatal(err)
				}
			}
			if err := Restore(ctx, dsn, p, 0, p.Expired); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM messages`).Scan(&n); err != nil || n != p.Messages {
				t.Errorf("after restore: %d messages (%v), want %d", n, err, p.Messages)
			}

			checkPlans(t, r)
		})
	}
}

// planned are the statements the benchmarks time, as the store runs them
// (store/sql_messages.go, store/sqlite_gdpr.go), with their arguments.
var planned = []struct {
	name, q string
	args    []any
	covered bool   // answered from the index alone (SQLite's plan says so)
	table   string // the table that must not be scanned; "" = messages
}{
	{"list a mailbox", `SELECT id FROM messages WHERE tenant = ? AND mailbox = ? ORDER BY id LIMIT ?`,
		[]any{Tenant, Mailbox(7), 101}, false, ""},
	{"list a folder", `SELECT id FROM messages WHERE tenant = ? AND mailbox = ? AND folder = ? ORDER BY id LIMIT ?`,
		[]any{Tenant, Mailbox(7), "new", 101}, false, ""},
	{"count a mailbox", `SELECT count(*) FILTER (WHERE folder = 'new' AND read = 0),
count(*) FILTER (WHERE NOT (folder = 'new' AND read = 0) AND urgent <> 0) FROM messages WHERE tenant = ? AND mailbox = ?`,
		[]any{Tenant, Mailbox(7)}, true, ""},
	{"messages of a caller", `SELECT id FROM messages m WHERE (m.caller_e164 = ? OR m.caller_id = ? OR m.caller_id = ?) ORDER BY m.id`,
		[]any{HeavyCaller(1), HeavyCaller(1), HeavyCaller(1)[1:]}, false, ""},
	{"expired messages", `SELECT m.id FROM messages m
CROSS JOIN mailboxes b
LEFT JOIN tenant_retention r ON r.tenant = m.tenant
WHERE b.tenant = m.tenant AND b.number = m.mailbox AND m.received_at < ?
AND (CASE WHEN b.retention_days > 0 THEN b.retention_days WHEN r.days IS NOT NULL THEN r.days ELSE ? END) > 0
AND m.received_at < ? - (CASE WHEN b.retention_days > 0 THEN b.retention_days WHEN r.days IS NOT NULL THEN r.days ELSE ? END) * ?
ORDER BY m.id LIMIT ?`, []any{time.Now().Add(-30 * 24 * time.Hour).UnixNano(), 30, time.Now().UnixNano(), 30, int64(24 * time.Hour), 500}, false, ""},
	// Every MWI heartbeat (store/sqlite_mwi.go): an instance's count, and
	// the owners walk that precedes a claim.
	{"count owned subscriptions", `SELECT count(*) FROM mwi_subscriptions WHERE owner = ?`,
		[]any{"x"}, true, "mwi_subscriptions"},
	{"subscription owners", `WITH RECURSIVE owners(o) AS (
	SELECT min(owner) FROM mwi_subscriptions
	UNION ALL
	SELECT (SELECT min(owner) FROM mwi_subscriptions WHERE owner > owners.o) FROM owners WHERE owners.o IS NOT NULL
)
SELECT o FROM owners WHERE o IS NOT NULL AND o <> ?
AND o NOT IN (SELECT id FROM cluster_instances WHERE expires_at >= ?)`, []any{"x", time.Now().UnixNano()}, false, "mwi_subscriptions"},
}

// checkPlans fails when one of the planned statements scans the whole
// messages table.
func checkPlans(t *testing.T, r *rawDB) {
	ctx := context.Background()
	conn, err := r.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if r.pg {
		// Small tables make a sequential scan cheapest; forbid it, so that
		// a plan without a usable index shows as one.
		if _, err := conn.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range planned {
		plan := explain(t, conn, r, c.q, c.args)
		table := c.table
		if table == "" {
			table = "messages"
		}
		full := false
		if r.pg {
			full = strings.Contains(plan, "Seq Scan on "+table)
		} else {
			// "SCAN m" or "SCAN messages" without "USING … INDEX".
			for _, line := range strings.Split(plan, "\n") {
				if strings.Contains(line, "SCAN m") && !strings.Contains(line, "INDEX") {
					full = true
				}
			}
		}
		switch {
		case full:
			t.Errorf("%s scans every row of %s:\n%s", c.name, table, plan)
		case c.name == "expired messages" && !r.pg && (strings.Contains(plan, "TEMP B-TREE") || !strings.Contains(plan, "SCAN m")):
			// Each sweep batch must read the oldest messages first and
			// stop at the LIMIT, not read and sort all of them
			// (store.ExpiredMessages).
			t.Errorf("%s: want messages read in id order:\n%s", c.name, plan)
		case c.covered && !r.pg && !strings.Contains(plan, "COVERING INDEX"):
			// One table page per message again (store/scale_indexes.go).
			t.Errorf("%s reads the table, want the covering index:\n%s", c.name, plan)
		default:
			t.Logf("%s:\n%s", c.name, plan)
		}
	}
}

func explain(t *testing.T, conn *sql.Conn, r *rawDB, q string, args []any) string {
	prefix := "EXPLAIN QUERY PLAN "
	if r.pg {
		prefix = "EXPLAIN "
	}
	rows, err := conn.QueryContext(context.Background(), prefix+r.ph(q), args...)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		b.WriteString(toString(vals[len(vals)-1]) + "\n")
	}
	return b.String()
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}
