package sip

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Blocklist is told about failed authentications (a wrong PIN in the
// access IVR, a digest response that does not match) by source IP, and
// says whether a source is locked out: its INVITE, SUBSCRIBE and REGISTER
// are then answered 403 (docs/sip.md).
type Blocklist interface {
	// Failed records one authentication failure from addr.
	Failed(addr netip.Addr)
	// Blocked reports whether addr is locked out, and until when.
	Blocked(addr netip.Addr) (until time.Time, blocked bool)
}

// LockoutConfig: Failures failed authentications within Window lock the
// source out for Duration. Failures 0 turns the lock-out off.
type LockoutConfig struct {
	Failures int
	Window   time.Duration
	Duration time.Duration
	// MaxSources caps the sources tracked (the oldest failures are
	// forgotten first); 0 = 100000.
	MaxSources int
}

// Lockout is the in-memory Blocklist of one instance: with several
// instances behind a proxy each counts the failures it sees itself.
type Lockout struct {
	cfg LockoutConfig
	now func() time.Time
	log *slog.Logger

	mu   sync.Mutex
	srcs map[netip.Addr]*failures

	lockouts prometheus.Counter
	blocked  prometheus.GaugeFunc
}

type failures struct {
	at    []time.Time // within the window, oldest first, at most cfg.Failures
	until time.Time   // locked out while now is before it
}

// NewLockout returns a Lockout on the clock now, logging to log.
func NewLockout(cfg LockoutConfig, now func() time.Time, log *slog.Logger) *Lockout {
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 100000
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Lockout{cfg: cfg, now: now, log: log, srcs: map[netip.Addr]*failures{},
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicemail_sip_lockouts_total",
			Help: "Sources locked out after sip.lockout.failures failed authentications (PIN or digest) within sip.lockout.window.",
		})}
	b.blocked = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "voicemail_sip_blocked_sources",
		Help: "Source IPs locked out now after repeated authentication failures (this instance).",
	}, func() float64 { return float64(b.BlockedCount()) })
	return b
}

func (b *Lockout) collectors() []prometheus.Collector {
	return []prometheus.Collector{b.lockouts, b.blocked}
}

// Failed records a failure; the one that reaches cfg.Failures within the
// window locks the source out, which is logged once with its expiry.
func (b *Lockout) Failed(addr netip.Addr) {
	if b == nil || b.cfg.Failures <= 0 || !addr.IsValid() {
		return
	}
	addr = addr.Unmap()
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.srcs[addr]
	if f == nil {
		b.prune(now)
		f = &failures{}
		b.srcs[addr] = f
	}
	if now.Before(f.until) {
		return // already locked out: the lock is not extended
	}
	keep := f.at[:0]
	for _, t := range f.at {
		if now.Sub(t) < b.cfg.Window {
			keep = append(keep, t)
		}
	}
	f.at = append(keep, now)
	if len(f.at) < b.cfg.Failures {
		return
	}
	f.at = f.at[:0]
	f.until = now.Add(b.cfg.Duration)
	b.lockouts.Inc()
	b.log.Warn("source locked out after repeated authentication failures",
		"source", addr.String(), "failures", b.cfg.Failures, "window", b.cfg.Window.String(), "until", f.until.UTC())
}

// Blocked reports whether addr is locked out now.
func (b *Lockout) Blocked(addr netip.Addr) (time.Time, bool) {
	if b == nil || b.cfg.Failures <= 0 {
		return time.Time{}, false
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.srcs[addr.Unmap()]
	if f == nil || !now.Before(f.until) {
		return time.Time{}, false
	}
	return f.until, true
}

// BlockedCount is the number of sources locked out now.
func (b *Lockout) BlockedCount() int {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, f := range b.srcs {
		if now.Before(f.until) {
			n++
		}
	}
	return n
}

// prune forgets sources with nothing left to remember, and when the map is
// full the one whose last failure is oldest, so memory stays bounded.
// Called with mu held before a new source is added.
func (b *Lockout) prune(now time.Time) {
	if len(b.srcs) < b.cfg.MaxSources {
		return
	}
	var oldest netip.Addr
	var oldestAt time.Time
	for a, f := range b.srcs {
		last := f.until
		if n := len(f.at); n > 0 && f.at[n-1].After(last) {
			last = f.at[n-1]
		}
		if !now.Before(f.until) && (len(f.at) == 0 || now.Sub(last) >= b.cfg.Window) {
			delete(b.srcs, a)
			continue
		}
		if oldestAt.IsZero() || last.Before(oldestAt) {
			oldest, oldestAt = a, last
		}
	}
	if len(b.srcs) >= b.cfg.MaxSources {
		delete(b.srcs, oldest)
	}
}

// Blocklist is the server's lock-out, for authentication code in this
// package (digest) and elsewhere. Trusted proxies are never locked out:
// they carry the failures of many phones, and locking one out would
// lock out all of them (the per-mailbox lock still applies).
func (s *Server) Blocklist() Blocklist {
	if s.flood == nil {
		return (*Lockout)(nil)
	}
	return trustedExempt{s.flood}
}

type trustedExempt struct{ f *flood }

func (b trustedExempt) trusted(addr netip.Addr) bool {
	return b.f.trusted != nil && b.f.trusted(addr.Unmap())
}

func (b trustedExempt) Failed(addr netip.Addr) {
	if !b.trusted(addr) {
		b.f.block.Failed(addr)
	}
}

func (b trustedExempt) Blocked(addr netip.Addr) (time.Time, bool) {
	if b.trusted(addr) {
		return time.Time{}, false
	}
	return b.f.block.Blocked(addr)
}

// AuthFailed records a failed authentication (a wrong PIN) from the
// caller's network source: repeated failures lock the source out.
func (d *Dialog) AuthFailed() {
	if addr, ok := addrOf(d.invite.Source()); ok {
		d.s.Blocklist().Failed(addr)
	}
}
