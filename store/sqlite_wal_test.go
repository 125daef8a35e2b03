package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// walBoundDuring is the documented bound of the WAL while one GDPR forget
// of 100,000 messages runs (docs/api-limits.md): the transaction's own
// changed pages, nothing left over from earlier ones.
const walBoundDuring = 128 << 20

// TestWALBoundedDuringBigForget seeds 100,000 messages of one caller, then
// forgets them in one request while watching the WAL file: it stays under
// walBoundDuring during the transaction and is truncated to at most
// walSizeLimit right after it.
func TestWALBoundedDuringBigForget(t *testing.T) {
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("seeds 100,000 messages")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vm.db")
	s, err := openSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateTenant(ctx, &Tenant{Name: "default"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMailbox(ctx, &Mailbox{Tenant: "default", Number: "1001", Type: TypePersonal}); err != nil {
		t.Fatal(err)
	}
	const n = 100_000
	// Bulk seed: one transaction, one prepared statement.
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO messages (`+messageCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).UnixNano()
	for i := range n {
		id := fmt.Sprintf("0190%028d", i)
		if _, err := st.ExecContext(ctx, id, "default", "1001", FolderNew, "+15550001", "+15550001", "Caller Name",
			base+int64(i), 5000, 0, 0, 80000, "default/1001/"+id+".wav"); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if w := s.walSize(); w != 0 {
		t.Fatalf("WAL %d bytes after a TRUNCATE checkpoint", w)
	}

	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if w := s.walSize(); w > peak.Load() {
				peak.Store(w)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	msgs, err := s.ForgetCaller(ctx, Forget{Tenant: "default", E164: "+15550001", ID: "forget-1", PhoneHash: "h"})
	if err != nil || len(msgs) != n {
		t.Fatalf("forget: %d messages, %v", len(msgs), err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.walSize() > walSizeLimit {
		if time.Now().After(deadline) {
			t.Fatalf("WAL still %d bytes 10 s after the forget", s.walSize())
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	db, _ := os.Stat(path)
	t.Logf("database %d MiB, WAL peak %d MiB during the forget, %d bytes after", db.Size()>>20, peak.Load()>>20, s.walSize())
	if peak.Load() > walBoundDuring {
		t.Errorf("WAL peaked at %d MiB, bound %d MiB", peak.Load()>>20, walBoundDuring>>20)
	}
	// The purge of the same 100,000 (the sweeper's job) is bounded too.
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	if err := s.PurgeForgotten(ctx, ids); err != nil {
		t.Fatal(err)
	}
	s.checkpointSoon()
	deadline = time.Now().Add(10 * time.Second)
	for s.walSize() > walSizeLimit {
		if time.Now().After(deadline) {
			t.Fatalf("WAL still %d bytes 10 s after the purge", s.walSize())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
