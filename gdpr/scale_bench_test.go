//go:build scalebench

package gdpr

// The GDPR figures of BENCHMARKS.md, "Data at scale", on the data set of
// internal/scaleseed (100,000 mailboxes, 10,000,000 messages, 1,000,000
// past a 30-day retention), SQLite and PostgreSQL, kept in
// $SCALE_DIR/scale-sqlite and $SCALE_DIR/scale-pg (default /tmp):
//
//	nice -n 19 go test -tags scalebench -run 'TestScaleForget|TestScaleRetention' -v -timeout 120m ./gdpr/
//
// The sweep runs at SCALE_SWEEP_RATE messages/s (default 200, the
// server's retention.sweep_rate; 0 = unpaced) and, when SCALE_SWEEP_FOR
// is a duration, stops after that long instead of sweeping all.
//
// No audio exists (rows only): the blob deletions hit a missing file, so
// the figures are the database's part plus one unlink each.

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/scaleseed"
	"github.com/vmserver/voicemail/store"
)

type scaleEnv struct {
	p         scaleseed.Plan
	dsn       string
	raw       store.Store
	st        store.Store // what the service and the deposits write to
	svc       *Service
	published atomic.Int64
}

func newScaleEnv(t *testing.T, backend string) *scaleEnv {
	dsn, p := scaleseed.Prepare(t, backend, scaleseed.Full(time.Now()), scaleseed.Keep(backend))
	ctx := context.Background()
	raw, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	dir := t.TempDir()
	blobs, err := store.NewFSBlobs(filepath.Join(dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	e := &scaleEnv{p: p, dsn: dsn, raw: raw}
	// As cmd/voicemail wires it: writes go to the store, a follower
	// publishes the change log on the bus (no write waits for it).
	head, err := raw.ChangeHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bus := store.NewChanges()
	bus.Subscribe(func(store.Change) { e.published.Add(1) }) // MWI, SSE and mail queue and return
	t.Cleanup(store.Follow(raw, head, bus))
	e.st = raw
	e.svc, err = New(Config{Store: e.st, Blobs: blobs, DataDir: dir, RetentionDays: p.RetentionDays, SweepInterval: 10 * time.Second,
		SweepRate: sweepRate(t), Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.svc.Stop) // gives the sweep lease back for the next run
	return e
}

func sweepRate(t *testing.T) int {
	v := os.Getenv("SCALE_SWEEP_RATE")
	if v == "" {
		return 200
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("SCALE_SWEEP_RATE=%q: want messages per second, 0 = unpaced", v)
	}
	return n
}

// TestScaleForget times Forget Me for callers with 100 messages each, in
// 100 mailboxes, among 10,000,000 messages; each forget is undone
// (untimed), so the data set stays whole.
func TestScaleForget(t *testing.T) {
	for _, backend := range scaleseed.Backends {
		t.Run(backend, func(t *testing.T) {
			e := newScaleEnv(t, backend)
			ctx := context.Background()
			pr := Principal{Actor: "scale"}
			var lat []time.Duration
			for k := 0; k < 50; k++ {
				phone := scaleseed.HeavyCaller(k)
				start := time.Now()
				out, err := e.svc.Run(ctx, OpForget, benchDoc(phone), pr)
				d := time.Since(start)
				if err != nil || out.Messages != e.p.PerCaller {
					t.Fatalf("forget %s: %+v %v", phone, out, err)
				}
				lat = append(lat, d)
				if out, err := e.svc.Run(ctx, OpUndo, benchDoc(phone), pr); err != nil || out.Messages != e.p.PerCaller {
					t.Fatalf("undo %s: %+v %v", phone, out, err)
				}
			}
			t.Logf("%s forget of %d messages: %s", backend, e.p.PerCaller, scaleseed.Summary(lat))
		})
	}
}

// TestScaleRetention runs one sweep over the 1,000,000 expired messages
// while a depositor commits a message every 10 ms (store.CreateMessage,
// the commit at the end of a deposit), and compares the deposits'
// latency with 10 s of the same without the sweep. The expired messages
// are written back afterwards and the deposits deleted.
func TestScaleRetention(t *testing.T) {
	for _, backend := range scaleseed.Backends {
		t.Run(backend, func(t *testing.T) {
			e := newScaleEnv(t, backend)
			ctx := context.Background()
			// A run stopped half-way leaves part of the expired messages deleted.
			t0 := time.Now()
			if err := scaleseed.Restore(ctx, e.dsn, e.p, 0, e.p.Expired); err != nil {
				t.Fatal(err)
			}
			t.Logf("expired messages whole again in %v", time.Since(t0))
			var (
				mu  sync.Mutex
				ids []*store.Message
			)
			deposit := func(stop <-chan struct{}) []time.Duration {
				var lat []time.Duration
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return lat
					case <-tick.C:
					}
					m := &store.Message{Tenant: scaleseed.Tenant, Mailbox: scaleseed.Mailbox(i % e.p.Mailboxes),
						CallerID: "+15550001111", CallerE164: "+15550001111", DurationMS: 20_000, Size: 320_044}
					start := time.Now()
					if err := e.st.CreateMessage(ctx, m); err != nil {
						t.Error(err)
						return lat
					}
					lat = append(lat, time.Since(start))
					mu.Lock()
					ids = append(ids, m)
					mu.Unlock()
				}
			}
			defer func() {
				t0 := time.Now()
				for _, m := range ids {
					if _, err := e.raw.DeleteMessage(ctx, m.Tenant, m.Mailbox, m.ID); err != nil {
						t.Error(err)
					}
				}
				if err := scaleseed.Restore(ctx, e.dsn, e.p, 0, e.p.Expired); err != nil {
					t.Error(err)
				}
				t.Logf("restored the data set in %v", time.Since(t0))
			}()

			stop := make(chan struct{})
			time.AfterFunc(10*time.Second, func() { close(stop) })
			base := deposit(stop)
			t.Logf("%s deposits, no sweep: %s", backend, scaleseed.Summary(base))

			stop = make(chan struct{})
			var during []time.Duration
			done := make(chan struct{})
			go func() { defer close(done); during = deposit(stop) }()
			sweepCtx := ctx
			var limit time.Duration
			if v := os.Getenv("SCALE_SWEEP_FOR"); v != "" {
				var err error
				if limit, err = time.ParseDuration(v); err != nil {
					t.Fatalf("SCALE_SWEEP_FOR: %v", err)
				}
				var cancel context.CancelFunc
				sweepCtx, cancel = context.WithTimeout(ctx, limit)
				defer cancel()
			}
			start := time.Now()
			stats, err := e.svc.Sweep(sweepCtx)
			took := time.Since(start)
			close(stop)
			<-done
			if err != nil && sweepCtx.Err() == nil {
				t.Fatal(err)
			}
			if limit == 0 && stats.Expired != e.p.Expired {
				t.Errorf("swept %d, want %d", stats.Expired, e.p.Expired)
			}
			t.Logf("%s sweep at %d/s: %d expired messages deleted in %v (%.0f/s), %d changes published",
				backend, e.svc.cfg.SweepRate, stats.Expired, took.Round(time.Millisecond), float64(stats.Expired)/took.Seconds(), e.published.Load())
			t.Logf("%s deposits during the sweep: %s", backend, scaleseed.Summary(during))
		})
	}
}
