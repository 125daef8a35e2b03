package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/pgtest"
)

// Replicas that start at once on an empty database migrate it once.
func TestPostgresConcurrentMigrations(t *testing.T) {
	dsn := pgtest.Require(t, pgServer).NewDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(t.Context(), dsn)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	s := openDSN(t, dsn)
	var v int
	if err := s.(*sqlStore).r.QueryRowContext(t.Context(), `SELECT version FROM schema_version`).Scan(&v); err != nil || v != len(pgMigrations) {
		t.Errorf("schema version %d %v, want %d", v, err, len(pgMigrations))
	}
}

// Two instances on one database: each one's bus sees the changes made
// through either, in the same order.
func TestPostgresTwoInstancesOneLog(t *testing.T) {
	dsn := pgtest.Require(t, pgServer).NewDatabase(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	var recA, recB recorder
	busA, busB := NewChanges(), NewChanges()
	busA.Subscribe(recA.add)
	busB.Subscribe(recB.add)
	na, nb := Notifying(a, busA), Notifying(b, busB)
	t.Cleanup(func() { na.(*notifying).once.Do(na.(*notifying).stop); nb.(*notifying).once.Do(nb.(*notifying).stop) })

	mustTenant(t, na, "default")
	mustMailbox(t, na, Mailbox{Tenant: "default", Number: "1001"})
	mustMailbox(t, nb, Mailbox{Tenant: "default", Number: "2001"})
	// Concurrent writers through both handles.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, mb := na, "1001"
			if i%2 == 1 {
				st, mb = nb, "2001"
			}
			if err := st.CreateMessage(context.Background(), &Message{Tenant: "default", Mailbox: mb}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	gotA, gotB := recA.wait(t, 22), recB.wait(t, 22)
	if fmt.Sprint(eventIDs(gotA)) != fmt.Sprint(eventIDs(gotB)) {
		t.Errorf("instances saw different logs:\n%v\n%v", kinds(gotA), kinds(gotB))
	}
	seen := map[string]bool{}
	for _, c := range gotA {
		if seen[c.EventID] {
			t.Errorf("event %s delivered twice (at %+v)", c.EventID, c.Pos)
			for _, c := range gotA {
				t.Logf("A %+v %s", c.Pos, c.EventID)
			}
			for _, c := range gotB {
				t.Logf("B %+v %s", c.Pos, c.EventID)
			}
		}
		seen[c.EventID] = true
	}
	if len(gotA) != 22 {
		t.Errorf("got %d changes, want 22", len(gotA))
	}
}

func eventIDs(chs []Change) []string {
	out := make([]string, len(chs))
	for i, c := range chs {
		out[i] = c.EventID
	}
	return out
}

// One consumer name across two instances: each change goes to one of them.
func TestPostgresConsumeOnceAcrossInstances(t *testing.T) {
	dsn := pgtest.Require(t, pgServer).NewDatabase(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	mustTenant(t, a, "default")
	var mu sync.Mutex
	got := map[string]int{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range []Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			Consume(ctx, s, "mail", time.Second, func(_ context.Context, c Change) error {
				mu.Lock()
				got[c.EventID]++
				mu.Unlock()
				return nil
			})
		}()
	}
	for i := range 30 {
		st := a
		if i%2 == 1 {
			st = b
		}
		mustMailbox(t, st, Mailbox{Tenant: "default", Number: fmt.Sprint(1000 + i)})
	}
	eventually(t, "30 changes consumed", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 30 })
	time.Sleep(100 * time.Millisecond)
	cancel()
	wg.Wait()
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s consumed %d times", id, n)
		}
	}
}
