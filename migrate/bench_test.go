package migrate_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/pgtest"
	"github.com/vmserver/voicemail/internal/s3test"
	"github.com/vmserver/voicemail/migrate"
	"github.com/vmserver/voicemail/store"
	"github.com/vmserver/voicemail/store/blobtest"
	"github.com/vmserver/voicemail/store/s3blob"
)

// BenchmarkMigrateSQLiteToPostgresS3 measures `voicemail migrate` from a
// single node (SQLite + folder) to a cluster (PostgreSQL + versitygw) for
// MIGRATE_BENCH_N messages (default 10,000; BENCHMARKS.md uses 100,000)
// of 1 s of audio each. Run it once:
//
//	MIGRATE_BENCH_N=100000 go test -run '^$' -bench MigrateSQLite -benchtime 1x ./migrate/
//
// It reports messages/s and MB/s of the copy (the seeding is not timed).
func BenchmarkMigrateSQLiteToPostgresS3(b *testing.B) {
	n := 10000
	if v := os.Getenv("MIGRATE_BENCH_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("MIGRATE_BENCH_N=%q: want a positive number", v)
		}
	}
	workers := 8
	if v := os.Getenv("MIGRATE_BENCH_WORKERS"); v != "" {
		workers, _ = strconv.Atoi(v)
	}
	pg, err := pgtest.Start()
	if err != nil {
		b.Fatalf("PostgreSQL: %v (%s)", err, pgtest.InstallHint)
	}
	defer pg.Stop()
	ctx := b.Context()

	// The source: messages spread over 100 mailboxes, their audio written
	// straight into the folder (seeding speed is not what is measured).
	dir := b.TempDir()
	src, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "src.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	srcMedia, err := store.NewFSBlobs(filepath.Join(dir, "media"))
	if err != nil {
		b.Fatal(err)
	}
	if err := src.CreateTenant(ctx, &store.Tenant{Name: store.DefaultTenant}); err != nil {
		b.Fatal(err)
	}
	const boxes = 100
	for i := range boxes {
		if err := src.CreateMailbox(ctx, &store.Mailbox{Tenant: store.DefaultTenant, Number: strconv.Itoa(2000 + i)}); err != nil {
			b.Fatal(err)
		}
	}
	audio := blobtest.Random(8044, 1) // 1 s of G.711 as a WAV
	seedStart := time.Now()
	for i := range n {
		m := store.Message{ID: store.NewMessageID(), Tenant: store.DefaultTenant, Mailbox: strconv.Itoa(2000 + i%boxes),
			CallerID: fmt.Sprintf("+3361%07d", i), DurationMS: 1000, Size: int64(len(audio)),
			ReceivedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)}
		m.MediaKey = store.MediaKey(m.Tenant, m.Mailbox, m.ID)
		p := srcMedia.Path(m.MediaKey)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, audio, 0o640); err != nil {
			b.Fatal(err)
		}
		if err := src.CreateMessage(ctx, &m); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("seeded %d messages in %s", n, time.Since(seedStart).Round(time.Millisecond))

	s3 := s3test.Start(b)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dst, err := store.Open(ctx, pg.NewDatabase(b))
		if err != nil {
			b.Fatal(err)
		}
		dstMedia, err := s3blob.Open(s3.URL(fmt.Sprintf("run%d", i)), s3.AccessKey, s3.SecretKey, b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		o := migrate.Options{From: src, FromMedia: srcMedia, To: dst, ToMedia: dstMedia, Workers: workers}
		b.StartTimer()
		start := time.Now()
		rep, err := migrate.Run(ctx, o)
		el := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if rep.Messages.Copied != n {
			b.Fatalf("copied %d messages, want %d", rep.Messages.Copied, n)
		}
		b.ReportMetric(float64(n)/el.Seconds(), "msgs/s")
		b.ReportMetric(float64(rep.Bytes)/1e6/el.Seconds(), "MB/s")
		dst.Close()
	}
}
