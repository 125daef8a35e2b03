package scaleseed

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vmserver/voicemail/internal/pgtest"
)

// Backends are the store backends a data set is seeded on.
var Backends = []string{"sqlite", "postgres"}

// maxAge is how long a seeded data set is reused: its youngest messages
// reach the retention one day after Now.
const maxAge = 12 * time.Hour

// Dir is where the full data sets are kept between runs: $SCALE_DIR, or
// /tmp. SQLite is in <Dir>/scale-sqlite, PostgreSQL's cluster in
// <Dir>/scale-pg.
func Dir() string {
	if d := os.Getenv("SCALE_DIR"); d != "" {
		return d
	}
	return os.TempDir()
}

// Keep is where backend's full data set is kept between runs.
func Keep(backend string) string {
	if backend == "postgres" {
		return filepath.Join(Dir(), "scale-pg")
	}
	return filepath.Join(Dir(), "scale-sqlite")
}

// Prepare returns the DSN of a database of backend ("sqlite" or
// "postgres") seeded with p's shape, and the plan it holds (its Now may be
// older than p's). keep names the folder that keeps it between runs (""
// seeds a fresh one in tb's temporary folder); a kept data set of the same
// shape younger than 12 h is reused. A PostgreSQL server is started for
// the test (internal/pgtest) and stopped at its end.
func Prepare(tb testing.TB, backend string, p Plan, keep string) (string, Plan) {
	tb.Helper()
	ctx := context.Background()
	var dsn string
	switch backend {
	case "sqlite":
		dir := keep
		if dir == "" {
			dir = tb.TempDir()
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			tb.Fatal(err)
		}
		dsn = "sqlite://" + filepath.Join(dir, "voicemail.db")
	case "postgres":
		var (
			srv *pgtest.Server
			err error
		)
		if keep == "" {
			srv, err = pgtest.Start()
		} else {
			srv, err = pgtest.StartIn(keep)
		}
		if err != nil {
			if os.Getenv("CI") == "true" {
				tb.Fatalf("PostgreSQL: %v", err)
			}
			tb.Skipf("PostgreSQL: %v", err)
		}
		tb.Cleanup(srv.Stop)
		dsn = srv.DSN("scale")
		conn, err := pgx.Connect(ctx, srv.DSN("postgres"))
		if err != nil {
			tb.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = 'scale'`).Scan(&n); err != nil {
			tb.Fatal(err)
		}
		if n == 1 {
			if got, ok, err := Seeded(ctx, dsn); err != nil {
				tb.Fatal(err)
			} else if ok && reusable(got, p) {
				tb.Logf("reusing %s, seeded %s", keep, got.Now.Format(time.RFC3339))
				return dsn, got
			}
			if _, err := conn.Exec(ctx, `DROP DATABASE scale`); err != nil {
				tb.Fatal(err)
			}
		}
		if _, err := conn.Exec(ctx, `CREATE DATABASE scale`); err != nil {
			tb.Fatal(err)
		}
	default:
		tb.Fatalf("scaleseed: unknown backend %q", backend)
	}
	if backend == "sqlite" {
		if got, ok, err := Seeded(ctx, dsn); err == nil && ok && reusable(got, p) {
			tb.Logf("reusing %s, seeded %s", dsn, got.Now.Format(time.RFC3339))
			return dsn, got
		}
		path := dsn[len("sqlite://"):]
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
				tb.Fatal(err)
			}
		}
	}
	log := slog.New(slog.NewTextHandler(testWriter{tb}, nil))
	if err := Seed(ctx, dsn, p, log); err != nil {
		tb.Fatal(err)
	}
	return dsn, p
}

// reusable: same shape, young enough.
func reusable(got, want Plan) bool {
	g, w := got, want
	g.Now, w.Now = time.Time{}, time.Time{}
	return g.Key() == w.Key() && time.Since(got.Now) < maxAge
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.tb.Log(string(b))
	return len(b), nil
}

// Summary formats latencies as n, p50, p90, p99 and max.
func Summary(d []time.Duration) string {
	if len(d) == 0 {
		return "n=0"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	r := func(x time.Duration) string { return fmt.Sprintf("%.2f ms", float64(x.Microseconds())/1000) }
	return fmt.Sprintf("n=%d p50 %s p90 %s p99 %s max %s", len(s), r(at(.5)), r(at(.9)), r(at(.99)), r(s[len(s)-1]))
}
