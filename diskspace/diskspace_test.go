package diskspace

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestParseThreshold(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Threshold
		ok   bool
	}{
		{"1GiB", Threshold{Bytes: 1 << 30}, true},
		{"1 GiB", Threshold{Bytes: 1 << 30}, true},
		{"500MB", Threshold{Bytes: 500e6}, true},
		{"2G", Threshold{Bytes: 2 << 30}, true},
		{"1048576", Threshold{Bytes: 1 << 20}, true},
		{"0", Threshold{}, true},
		{"1%", Threshold{Percent: 1}, true},
		{"0.5 %", Threshold{Percent: 0.5}, true},
		{"100%", Threshold{}, false},
		{"-1GiB", Threshold{}, false},
		{"lots", Threshold{}, false},
		{"", Threshold{}, false},
		{"99999999999TiB", Threshold{}, false},
	} {
		got, err := ParseThreshold(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseThreshold(%q) = %+v, %v", c.in, got, err)
		}
	}
}

// TestTransitions: Low follows the measurements; one log line and one
// counter step per change of state, not per check.
func TestTransitions(t *testing.T) {
	var mu sync.Mutex
	free := map[string]uint64{"/m": 10 << 30, "/d": 10 << 30}
	var fail error
	var logBuf bytes.Buffer
	m := New(Config{Paths: map[string]string{"media": "/m", "database": "/d"}, Min: Threshold{Bytes: 1 << 30},
		Logger: slog.New(slog.NewTextHandler(&logBuf, nil)),
		Statfs: func(p string) (Usage, error) {
			mu.Lock()
			defer mu.Unlock()
			return Usage{Free: free[p], Total: 100 << 30}, fail
		}})
	set := func(p string, v uint64) { mu.Lock(); free[p] = v; mu.Unlock() }
	if low, _ := m.Low(); low {
		t.Fatal("low with 10 GiB free")
	}
	set("/m", 100<<20)
	for range 3 {
		m.Check()
	}
	low, reason := m.Low()
	if !low || !strings.Contains(reason, "media: 100.0 MiB free") || strings.Contains(reason, "database") {
		t.Fatalf("low=%v reason %q", low, reason)
	}
	if n := strings.Count(logBuf.String(), "disk space low"); n != 1 {
		t.Errorf("%d low lines:\n%s", n, logBuf.String())
	}
	if v := testutil.ToFloat64(m.lowG.WithLabelValues("media")); v != 1 {
		t.Errorf("voicemail_disk_low{fs=media} = %v", v)
	}
	if v := testutil.ToFloat64(m.free.WithLabelValues("media")); v != 100<<20 {
		t.Errorf("voicemail_disk_free_bytes{fs=media} = %v", v)
	}
	set("/m", 2<<30)
	m.Check()
	m.Check()
	if low, _ := m.Low(); low {
		t.Fatal("still low after space came back")
	}
	if n := strings.Count(logBuf.String(), "disk space back"); n != 1 {
		t.Errorf("%d recovery lines", n)
	}
	if v := testutil.ToFloat64(m.changes.WithLabelValues("media", "low")); v != 1 {
		t.Errorf("low transitions %v", v)
	}
	// Percent thresholds, and an unmeasurable file system counts as low.
	m2 := New(Config{Paths: map[string]string{"database": "/d"}, Min: Threshold{Percent: 5},
		Statfs: func(string) (Usage, error) { return Usage{Free: 4, Total: 100}, nil }})
	if low, _ := m2.Low(); !low {
		t.Error("4% free is below 5%")
	}
	mu.Lock()
	fail = fmt.Errorf("statfs: %w", syscall.EIO)
	mu.Unlock()
	if low, reason := m.Check(); !low || !strings.Contains(reason, "cannot measure") {
		t.Errorf("unmeasurable: %v %q", low, reason)
	}
	// Off: nothing measured, never low.
	m3 := New(Config{Paths: map[string]string{"media": "/m"}, Statfs: func(string) (Usage, error) { return Usage{}, errors.New("x") }})
	if low, _ := m3.Check(); low {
		t.Error("min_free 0 must be off")
	}
	var nilM *Monitor
	if low, _ := nilM.Low(); low {
		t.Error("nil monitor low")
	}
}

func TestIsNoSpace(t *testing.T) {
	if !IsNoSpace(fmt.Errorf("write: %w", syscall.ENOSPC)) || IsNoSpace(syscall.EIO) || IsNoSpace(nil) {
		t.Error("IsNoSpace")
	}
}
