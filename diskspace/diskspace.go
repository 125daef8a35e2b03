// Package diskspace watches the free space of the file systems the server
// writes to (the media folder and the database folder) and says when it is
// below the configured minimum (media.min_free), so that new work that
// needs space is refused cleanly instead of failing half-way.
//
// What the call driver (SIP side) must do — see docs/api-limits.md too:
//
//  1. Before answering a deposit call (leave-a-message, INVITE to a
//     mailbox), call Monitor.Low(). When it reports true, do not record:
//     answer 503 Service Unavailable with "Retry-After: 300" and the
//     reason in a Warning or Reason header (or, when so configured, answer,
//     play a short "mailbox system unavailable" prompt and hang up).
//     Access-IVR calls (listening, deleting) stay allowed: deleting frees
//     space.
//  2. While recording, when a write of the recording returns an error for
//     which IsNoSpace(err) is true: stop recording, keep what was written
//     (close/fix the WAV header at the samples written so far, and create
//     the message row if it is longer than recording.min_seconds), play a
//     short apology, hang up, and call Monitor.Check() so that /readyz and
//     new calls see the state at once instead of at the next poll.
//  3. Never delete a recording because of ENOSPC.
//
// Low() is cheap (a mutex and two fields) and safe from any goroutine.
package diskspace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Threshold is a minimum of free space: bytes, or a percentage of the file
// system. Zero is off.
type Threshold struct {
	Bytes   uint64
	Percent float64
}

// DefaultMinFree is the default of media.min_free.
const DefaultMinFree = "1GiB"

var units = []struct {
	suffix string
	mult   uint64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
}

// ParseThreshold reads "1GiB", "500MB", "2G", "1048576", "1%", "0.5%" or "0".
func ParseThreshold(s string) (Threshold, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v < 0 || v >= 100 {
			return Threshold{}, fmt.Errorf("want a percentage from 0 to below 100, got %q", s)
		}
		return Threshold{Percent: v}, nil
	}
	num, mult := s, uint64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || v*float64(mult) > 1<<62 {
		return Threshold{}, fmt.Errorf("want a size like 1GiB, 500MB or 1%%, got %q", s)
	}
	return Threshold{Bytes: uint64(v * float64(mult))}, nil
}

func (t Threshold) String() string {
	if t.Percent > 0 {
		return strconv.FormatFloat(t.Percent, 'f', -1, 64) + "%"
	}
	return strconv.FormatUint(t.Bytes, 10) + " bytes"
}

// below reports whether free of total bytes is under the threshold.
func (t Threshold) below(free, total uint64) bool {
	if t.Percent > 0 {
		return total > 0 && float64(free)*100 < t.Percent*float64(total)
	}
	return free < t.Bytes
}

// IsNoSpace reports whether err is a "no space left" (or quota) error.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Usage is what statfs says of one file system.
type Usage struct{ Free, Total uint64 }

// Config of a Monitor.
type Config struct {
	// Paths to watch by name ("media", "database"); a path that does not
	// exist yet is measured at its nearest existing parent. Two names on
	// the same file system are both reported.
	Paths    map[string]string
	Min      Threshold
	Interval time.Duration // between checks; 0 = 5 s
	Logger   *slog.Logger
	// Statfs measures a path; nil = statfs(2). Tests may replace it where
	// they cannot mount a small file system.
	Statfs func(path string) (Usage, error)
}

// Monitor keeps the last verdict of the free-space checks.
type Monitor struct {
	cfg   Config
	names []string

	mu     sync.Mutex
	low    bool
	reason string
	lowFS  map[string]bool // per name, for logging transitions only

	checking sync.Mutex // one Check at a time

	free    *prometheus.GaugeVec
	lowG    *prometheus.GaugeVec
	changes *prometheus.CounterVec
}

// New builds a monitor and runs a first check.
func New(cfg Config) *Monitor {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Statfs == nil {
		cfg.Statfs = func(p string) (Usage, error) { return Statfs(existing(p)) }
	}
	m := &Monitor{cfg: cfg, lowFS: map[string]bool{},
		free: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "voicemail_disk_free_bytes",
			Help: "Free space available to the server on the watched file systems."}, []string{"fs"}),
		lowG: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "voicemail_disk_low",
			Help: "1 while the file system has less free space than media.min_free (new deposits and API writes are refused)."}, []string{"fs"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voicemail_disk_low_transitions_total",
			Help: "Times a file system went below (state=low) or back above (state=ok) media.min_free."}, []string{"fs", "state"}),
	}
	if cfg.Min != (Threshold{}) { // 0 = off: nothing is measured
		for name := range cfg.Paths {
			m.names = append(m.names, name)
		}
	}
	sort.Strings(m.names)
	m.Check()
	return m
}

// Collectors are the monitor's metrics.
func (m *Monitor) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.free, m.lowG, m.changes}
}

// Low reports whether any watched file system is below the minimum, and
// why (e.g. "media: 12 MiB free, below 1073741824 bytes"). A nil monitor
// is never low.
func (m *Monitor) Low() (bool, string) {
	if m == nil {
		return false, ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.low, m.reason
}

// Check measures now, updates Low, the metrics and logs a line on every
// change of state (not on every check). A file system that cannot be
// measured counts as low.
func (m *Monitor) Check() (bool, string) {
	if m == nil {
		return false, ""
	}
	m.checking.Lock()
	defer m.checking.Unlock()
	var reasons []string
	for _, name := range m.names {
		u, err := m.cfg.Statfs(m.cfg.Paths[name])
		isLow := false
		switch {
		case err != nil:
			isLow = true
			reasons = append(reasons, fmt.Sprintf("%s: cannot measure free space: %v", name, err))
		case m.cfg.Min.below(u.Free, u.Total):
			isLow = true
			reasons = append(reasons, fmt.Sprintf("%s: %s free of %s, below media.min_free %s", name, human(u.Free), human(u.Total), m.cfg.Min))
		}
		if err == nil {
			m.free.WithLabelValues(name).Set(float64(u.Free))
		}
		if prev, seen := m.lowFS[name]; prev != isLow {
			state := "ok"
			if isLow {
				state = "low"
			}
			m.changes.WithLabelValues(name, state).Inc()
			if isLow {
				m.cfg.Logger.Error("disk space low: refusing new deposits and API writes", "fs", name, "path", m.cfg.Paths[name],
					"free", u.Free, "total", u.Total, "min_free", m.cfg.Min.String(), "err", err)
			} else if seen {
				m.cfg.Logger.Info("disk space back above the minimum", "fs", name, "path", m.cfg.Paths[name], "free", u.Free)
			}
		}
		m.lowFS[name] = isLow
		if isLow {
			m.lowG.WithLabelValues(name).Set(1)
		} else {
			m.lowG.WithLabelValues(name).Set(0)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.low, m.reason = len(reasons) > 0, strings.Join(reasons, "; ")
	return m.low, m.reason
}

// Run checks every Interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Check()
		}
	}
}

// existing returns path or its nearest existing parent.
func existing(path string) string {
	p := filepath.Clean(path)
	for {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(p)
		if parent == p {
			return p
		}
		p = parent
	}
}

func human(b uint64) string {
	switch {
	case b >= 1<<30:
		return strconv.FormatFloat(float64(b)/(1<<30), 'f', 1, 64) + " GiB"
	case b >= 1<<20:
		return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB"
	}
	return strconv.FormatUint(b>>10, 10) + " KiB"
}
