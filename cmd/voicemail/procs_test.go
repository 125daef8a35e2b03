package main

import (
	"bytes"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

func TestMinProcs(t *testing.T) {
	for _, c := range []struct {
		current int
		env     string
		want    int
	}{
		{1, "", 2},  // one allowed CPU: the floor
		{2, "", 2},  // a quota of one CPU already gives 2 (Go ≥ 1.25)
		{8, "", 8},  // never lowered
		{1, "1", 1}, // the operator's GOMAXPROCS wins
		{4, "1", 4}, // (the runtime has applied it already)
	} {
		if got := minProcs(c.current, c.env); got != c.want {
			t.Errorf("minProcs(%d, %q) = %d, want %d", c.current, c.env, got, c.want)
		}
	}
}

func TestSetMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("AUTOMEMLIMIT", "")
	os.Unsetenv("AUTOMEMLIMIT") // t.Setenv restores it afterwards

	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	setMemoryLimit(log, memlimit.WithProvider(memlimit.Limit(1<<30)))
	if got, want := debug.SetMemoryLimit(-1), int64(9*(1<<30)/10); got != want {
		t.Errorf("container limit 1 GiB: GOMEMLIMIT %d, want %d (90 %%)", got, want)
	}
	if !strings.Contains(logs.String(), "GOMEMLIMIT") {
		t.Errorf("the limit set is not logged: %s", logs.String())
	}

	// No limit (a machine, or a container without one): Go's default.
	setMemoryLimit(log, memlimit.WithProvider(func() (uint64, error) { return 0, memlimit.ErrNoLimit }))
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("no limit: GOMEMLIMIT %d, want none", got)
	}

	// The operator's GOMEMLIMIT wins (the runtime applied it at start).
	t.Setenv("GOMEMLIMIT", "512MiB")
	debug.SetMemoryLimit(512 << 20)
	setMemoryLimit(log, memlimit.WithProvider(memlimit.Limit(1<<30)))
	if got := debug.SetMemoryLimit(-1); got != 512<<20 {
		t.Errorf("GOMEMLIMIT=512MiB in the environment: limit %d, want it kept", got)
	}
}
