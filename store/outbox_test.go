package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// allChanges reads the whole log synchronously.
func allChanges(t *testing.T, s Store) []Change {
	t.Helper()
	var out []Change
	var c Cursor
	for {
		chs, next, _, err := s.ChangesAfter(t.Context(), c, 0)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, chs...)
		if len(chs) == 0 {
			return out
		}
		c = next
	}
}

func kinds(chs []Change) []string {
	out := make([]string, len(chs))
	for i, c := range chs {
		out[i] = string(c.Kind) + ":" + c.Mailbox
	}
	return out
}

// The event is in the log when the change returns (same transaction), and
// a change that fails leaves none.
func TestOutboxSameTransaction(t *testing.T) { forEachBackend(t, testOutboxSameTransaction) }

func testOutboxSameTransaction(t *testing.T, b backend) {
	ctx := t.Context()
	s := b.open(t)
	mustTenant(t, s, "default")
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1001"})
	m := mustMessage(t, s, Message{Tenant: "default", Mailbox: "1001"})
	if got := kinds(allChanges(t, s)); fmt.Sprint(got) != "[mailbox_created:1001 message_created:1001]" {
		t.Fatalf("log after two changes: %v", got)
	}
	// Failed changes: duplicate id, missing mailbox, missing message.
	if err := s.CreateMessage(ctx, &Message{ID: m.ID, Tenant: "default", Mailbox: "1001"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := s.CreateMessage(ctx, &Message{Tenant: "default", Mailbox: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing mailbox: %v", err)
	}
	if _, err := s.DeleteMessage(ctx, "default", "1001", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing message: %v", err)
	}
	if err := s.UpdateMailbox(ctx, &Mailbox{Tenant: "default", Number: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing mailbox update: %v", err)
	}
	if n := len(allChanges(t, s)); n != 2 {
		t.Fatalf("failed changes wrote events: %d in the log", n)
	}

	// When the event cannot be written, the change does not happen either.
	sq := s.(*sqlStore)
	boom := `CREATE TRIGGER boom BEFORE INSERT ON change_events BEGIN SELECT RAISE(ABORT, 'boom'); END`
	if sq.d == dialectPostgres {
		if _, err := sq.w.ExecContext(ctx, `CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$`); err != nil {
			t.Fatal(err)
		}
		boom = `CREATE TRIGGER boom BEFORE INSERT ON change_events FOR EACH ROW EXECUTE FUNCTION boom()`
	}
	if _, err := sq.w.ExecContext(ctx, boom); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMessage(ctx, &Message{Tenant: "default", Mailbox: "1001"}); err == nil {
		t.Fatal("message created without its event")
	}
	if _, err := s.DeleteMessage(ctx, "default", "1001", m.ID); err == nil {
		t.Fatal("message deleted without its event")
	}
	if list, _, _ := s.ListMessages(ctx, MessageFilter{Tenant: "default"}); len(list) != 1 || list[0].ID != m.ID {
		t.Errorf("messages after failed changes: %v", ids(list))
	}
}

// A consumer that starts after the changes catches up from its cursor, and
// after a restart resumes where it stopped.
func TestConsumeCatchesUp(t *testing.T) { forEachBackend(t, testConsumeCatchesUp) }

func testConsumeCatchesUp(t *testing.T, b backend) {
	s := b.open(t)
	mustTenant(t, s, "default")
	for _, n := range []string{"1001", "1002", "1003"} {
		mustMailbox(t, s, Mailbox{Tenant: "default", Number: n})
	}
	const lease = 300 * time.Millisecond
	run := func(rec *recorder) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			Consume(ctx, s, "webhooks", lease, func(_ context.Context, c Change) error { rec.add(c); return nil })
		}()
		return func() { cancel(); <-done }
	}
	var first recorder
	stop := run(&first)
	if got := kinds(first.wait(t, 3)); fmt.Sprint(got) != "[mailbox_created:1001 mailbox_created:1002 mailbox_created:1003]" {
		t.Fatalf("catch-up: %v", got)
	}
	stop()
	// Changes while no consumer runs are delivered at the next start, and
	// only those: the cursor was saved.
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1004"})
	var second recorder
	time.Sleep(lease) // the stopped consumer's lease runs out
	stop = run(&second)
	defer stop()
	got := second.wait(t, 1)
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1005"})
	got = second.wait(t, 2)
	if fmt.Sprint(kinds(got)) != "[mailbox_created:1004 mailbox_created:1005]" {
		t.Errorf("after restart: %v", kinds(got))
	}
	if got[0].EventID == "" || got[0].EventID == got[1].EventID {
		t.Errorf("event ids: %q %q", got[0].EventID, got[1].EventID)
	}
}

// A subscriber that blocks does not slow writes or other subscribers; one
// that subscribes and cancels from its callback does not deadlock; each
// gets the changes in order.
func TestChangesAsync(t *testing.T) {
	bus := NewChanges()
	release := make(chan struct{})
	var slow recorder
	bus.Subscribe(func(c Change) { <-release; slow.add(c) })
	var fast recorder
	bus.Subscribe(fast.add)
	var inner recorder
	var once sync.Once
	var cancelSelf func()
	var mu sync.Mutex
	mu.Lock()
	cancelSelf = bus.Subscribe(func(c Change) {
		once.Do(func() { bus.Subscribe(inner.add) })
		mu.Lock()
		defer mu.Unlock()
		cancelSelf()
	})
	mu.Unlock()
	done := make(chan struct{})
	go func() {
		for i := range 1000 {
			bus.Publish(Change{Kind: MessageCreated, Mailbox: fmt.Sprint(i)})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked behind a slow subscriber")
	}
	got := fast.wait(t, 1000)
	for i, c := range got {
		if c.Mailbox != fmt.Sprint(i) {
			t.Fatalf("fast subscriber: change %d is %q", i, c.Mailbox)
		}
	}
	close(release)
	got = slow.wait(t, 1000)
	for i, c := range got {
		if c.Mailbox != fmt.Sprint(i) {
			t.Fatalf("slow subscriber: change %d is %q", i, c.Mailbox)
		}
	}
	bus.Publish(Change{Kind: MessageCreated, Mailbox: "late"})
	if got := inner.wait(t, 1); got[len(got)-1].Mailbox != "late" && len(got) < 1 {
		t.Errorf("subscriber added from a callback: %+v", got)
	}
	if err := bus.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// Changes made between the start-up cursor and Follow (recovery, demo data
// before every subscriber is there) are published; stop publishes the
// changes committed before it.
func TestFollowFromStartupCursor(t *testing.T) { forEachBackend(t, testFollowFromStartupCursor) }

func testFollowFromStartupCursor(t *testing.T, b backend) {
	s := b.open(t)
	mustTenant(t, s, "default")
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1000"}) // before the cursor
	head, err := s.ChangeHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1001"}) // start-up, no subscriber yet
	bus := NewChanges()
	var rec recorder
	bus.Subscribe(rec.add)
	stop := Follow(s, head, bus)
	rec.wait(t, 1)
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1002"})
	stop()
	if err := bus.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := kinds(rec.changes()); fmt.Sprint(got) != "[mailbox_created:1001 mailbox_created:1002]" {
		t.Errorf("published %v", got)
	}

	if n, err := s.PruneChanges(t.Context(), time.Now().Add(time.Hour)); err != nil || n != 3 {
		t.Errorf("PruneChanges = %d, %v; want 3", n, err)
	}
	if got := allChanges(t, s); len(got) != 0 {
		t.Errorf("log after pruning: %v", kinds(got))
	}
}

// TestChangesAfterTxidOrder: on PostgreSQL a follower reads the log in
// (txid, id) order as numbers. Sorted as text ("100" before "99"), pages
// came out of order when the transaction ids changed length, and the
// cursor, set from a page's last row, skipped the rows sorted after it; the
// sort could also not use change_events_order, so every read sorted the
// whole log (BENCHMARKS.md, "Retention sweep").
func TestChangesAfterTxidOrder(t *testing.T) {
	ctx := t.Context()
	s := backends[1].open(t).(*sqlStore)
	mustTenant(t, s, "default")
	numbers := []string{"1001", "1002", "1003", "1004", "1005"}
	for _, n := range numbers {
		mustMailbox(t, s, Mailbox{Tenant: "default", Number: n})
	}
	// Transaction ids of one, two and three digits, all older than any
	// running transaction (initdb alone uses hundreds).
	txids := []string{"9", "10", "11", "99", "100"}
	for i, n := range numbers {
		if _, err := s.w.ExecContext(ctx, `UPDATE change_events SET txid = ?::xid8 WHERE mailbox = ?`, txids[i], n); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var c Cursor
	for range 10 {
		chs, next, _, err := s.ChangesAfter(ctx, c, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(chs) == 0 {
			break
		}
		for _, ch := range chs {
			got = append(got, ch.Mailbox)
		}
		c = next
	}
	if fmt.Sprint(got) != fmt.Sprint(numbers) {
		t.Errorf("read in pages of 2: %v, want %v", got, numbers)
	}
	head, err := s.ChangeHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if head.TxID != 100 {
		t.Errorf("head at txid %d, want 100", head.TxID)
	}

	// With a log of a size a retention sweep leaves, the reads use the
	// index and neither sort nor scan it: the generic plans, which pgx's
	// prepared statements end up with, are what a follower runs.
	if _, err := s.w.ExecContext(ctx, `INSERT INTO change_events (txid, event_id, at, kind, tenant, mailbox, body)
SELECT (1000 + i / 10)::text::xid8, 'filler-' || i, i, 'message_deleted', 'default', '1001', '{}'
FROM generate_series(1, 50000) AS i`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `ANALYZE change_events`); err != nil {
		t.Fatal(err)
	}
	conn, err := s.r.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		name, sql string
		args      []any
	}{
		{"read", changesAfterPG, []any{"0", 0, 100}},
		{"pending", changesPendingPG, []any{"0", 0}},
		{"head", changeHeadPG, nil},
	} {
		rows, err := conn.QueryContext(ctx, "EXPLAIN "+dialectPostgres.rebind(q.sql), q.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(line + "\n")
		}
		rows.Close()
		if p := plan.String(); strings.Contains(p, "Sort") || strings.Contains(p, "Seq Scan") || !strings.Contains(p, "change_events_order") {
			t.Errorf("%s: want change_events_order, no sort, no scan:\n%s", q.name, p)
		}
	}
}
