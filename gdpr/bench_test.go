package gdpr

// The figures of docs/bench-gdpr.md: 100,000 messages in 1,000 mailboxes,
// 1,000 callers with 100 messages each, spread over 100 mailboxes.
//
//	go test -run '^$' -bench GDPR -benchtime 20x ./gdpr/
//
// Not part of make test (benchmarks never run there).

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/store"
)

const (
	benchMailboxes = 1000
	benchPerBox    = 100
	benchCallers   = 1000
)

func benchCaller(i int) string { return fmt.Sprintf("+1617555%04d", i) }

type benchEnv struct {
	svc       *Service
	st        store.Store
	published atomic.Int64
}

// newBenchEnv seeds the database in one transaction (the store's own
// CreateMessage would take minutes for 100,000 rows) and writes the audio
// of the callers listed in withAudio (10 s WAVs, 160 kB each).
func newBenchEnv(b *testing.B, withAudio ...int) *benchEnv {
	b.Helper()
	dir := b.TempDir()
	ctx := context.Background()
	dbPath := filepath.Join(dir, "voicemail.db")
	raw, err := store.Open(ctx, "sqlite://"+dbPath)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { raw.Close() })
	if err := raw.CreateTenant(ctx, &store.Tenant{Name: store.DefaultTenant}); err != nil {
		b.Fatal(err)
	}
	blobs, err := store.NewFSBlobs(filepath.Join(dir, "media"))
	if err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC().UnixNano()
	for j := 0; j < benchMailboxes; j++ {
		if _, err := tx.Exec(`INSERT INTO mailboxes (tenant, number, created_at, updated_at) VALUES ('default', ?, ?, ?)`,
			fmt.Sprint(10000+j), now, now); err != nil {
			b.Fatal(err)
		}
	}
	ins, err := tx.Prepare(`INSERT INTO messages (id, tenant, mailbox, folder, caller_id, caller_e164, received_at, duration_ms, size, media_key)
VALUES (?, 'default', ?, 'new', ?, ?, ?, 10000, 160044, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	audio := map[int]bool{}
	for _, c := range withAudio {
		audio[c] = true
	}
	var wav bytes.Buffer
	{
		f, err := os.CreateTemp(dir, "wav")
		if err != nil {
			b.Fatal(err)
		}
		w, _ := media.NewWAVWriter(f, media.FormatPCM16)
		_ = w.Write(make([]int16, 80000))
		_ = w.Close()
		f.Seek(0, io.SeekStart)
		io.Copy(&wav, f)
		f.Close()
	}
	for i := 0; i < benchPerBox; i++ {
		for j := 0; j < benchMailboxes; j++ {
			caller := (i*7 + j) % benchCallers // each caller: 100 messages in 100 mailboxes
			id := store.NewMessageID()
			mb := fmt.Sprint(10000 + j)
			key := store.MediaKey("default", mb, id)
			if _, err := ins.Exec(id, mb, benchCaller(caller), benchCaller(caller), now-int64(i)*int64(time.Minute), key); err != nil {
				b.Fatal(err)
			}
			if audio[caller] {
				if err := blobs.Put(key, bytes.NewReader(wav.Bytes())); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	env := &benchEnv{}
	bus := store.NewChanges()
	bus.Subscribe(func(store.Change) { env.published.Add(1) }) // MWI, SSE and mail queue and return
	env.st = store.Notifying(raw, bus)
	env.svc, err = New(Config{Store: env.st, Blobs: blobs, DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	return env
}

func benchDoc(phone string) *Document {
	return &Document{Requests: []Request{{RequestCase: "BENCH", Type: TypeForget, Contacts: []Contact{NewPhone(phone)}}}}
}

// BenchmarkGDPRLookup100k: the indexed lookup of one caller's messages.
func BenchmarkGDPRLookup100k(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		msgs, err := env.st.MessagesByCaller(ctx, "", benchCaller(i%benchCallers))
		if err != nil || len(msgs) != benchPerBox {
			b.Fatalf("%d messages, %v", len(msgs), err)
		}
	}
}

// BenchmarkGDPRForget100k: one Forget Me request (lookup, hide 100 messages
// in 100 mailboxes in one transaction, 100 changes published, audit).
// Each iteration's undo runs with the timer stopped.
func BenchmarkGDPRForget100k(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	p := Principal{Actor: "bench"}
	var worst time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		phone := benchCaller(i % benchCallers)
		start := time.Now()
		out, err := env.svc.Run(ctx, OpForget, benchDoc(phone), p)
		d := time.Since(start)
		if err != nil || out.Messages != benchPerBox {
			b.Fatalf("forget: %+v %v", out, err)
		}
		worst = max(worst, d)
		b.StopTimer()
		if out, err := env.svc.Run(ctx, OpUndo, benchDoc(phone), p); err != nil || out.Messages != benchPerBox {
			b.Fatalf("undo: %+v %v", out, err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
	b.ReportMetric(float64(benchPerBox), "msgs/op")
}

// BenchmarkGDPRUndo100k: the undo of a forget (timer stopped for the forget).
func BenchmarkGDPRUndo100k(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	p := Principal{Actor: "bench"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		phone := benchCaller(i % benchCallers)
		b.StopTimer()
		if _, err := env.svc.Run(ctx, OpForget, benchDoc(phone), p); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if out, err := env.svc.Run(ctx, OpUndo, benchDoc(phone), p); err != nil || out.Messages != benchPerBox {
			b.Fatalf("undo: %+v %v", out, err)
		}
	}
}

// BenchmarkGDPRExport100k: one Export Me request: lookup and a zip of 100
// ten-second WAVs (16 MB) with export.json.
func BenchmarkGDPRExport100k(b *testing.B) {
	env := newBenchEnv(b, 3)
	ctx := context.Background()
	p := Principal{Actor: "bench"}
	b.ResetTimer()
	for b.Loop() {
		out, err := env.svc.Run(ctx, OpExport, benchDoc(benchCaller(3)), p)
		if err != nil || out.Archive == nil || len(out.Archive.Files) != benchPerBox {
			b.Fatalf("export: %+v %v", out, err)
		}
		b.StopTimer()
		os.Remove(out.Archive.Path)
		b.StartTimer()
	}
}
