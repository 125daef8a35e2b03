package sip

import (
	"net/netip"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func TestLimiterTake(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	type step struct {
		wait   time.Duration
		addr   netip.Addr
		method string
		want   verdict
		retry  int
	}
	tests := []struct {
		name  string
		cfg   FloodConfig
		steps []step
	}{
		{"burst then 503 then drop", FloodConfig{Limits: map[string]RateLimit{"INVITE": {Rate: 1, Burst: 2}}, DropAfter: 2}, []step{
			{0, a, "INVITE", admit, 0},
			{0, a, "INVITE", admit, 0},
			{0, a, "INVITE", refuse, 2}, // tokens 0 -> -1: 2 s to get back to 1
			{0, a, "INVITE", refuse, 3},
			{0, a, "INVITE", drop, 0}, // debt of 2 reached
			{0, a, "INVITE", drop, 0},
			{0, b, "INVITE", admit, 0},               // another source has its own bucket
			{0, a, "OPTIONS", admit, 0},              // another method is not limited here
			{3 * time.Second, a, "INVITE", admit, 0}, // -2 + 3 = 1
			{0, a, "INVITE", refuse, 2},
		}},
		{"refill is capped at the burst", FloodConfig{Limits: map[string]RateLimit{"SUBSCRIBE": {Rate: 10, Burst: 1}}}, []step{
			{0, a, "SUBSCRIBE", admit, 0},
			{time.Hour, a, "SUBSCRIBE", admit, 0},
			{0, a, "SUBSCRIBE", refuse, 1},
			{0, a, "SUBSCRIBE", refuse, 1}, // DropAfter 0: never dropped
			{0, a, "SUBSCRIBE", refuse, 1},
		}},
		{"rate 0 is unlimited", FloodConfig{Limits: map[string]RateLimit{"INVITE": {Rate: 0, Burst: 1}}}, []step{
			{0, a, "INVITE", admit, 0},
			{0, a, "INVITE", admit, 0},
		}},
		{"fractional rate", FloodConfig{Limits: map[string]RateLimit{"REGISTER": {Rate: 0.5, Burst: 1}}, DropAfter: 10}, []step{
			{0, a, "REGISTER", admit, 0},
			{0, a, "REGISTER", refuse, 4},
			{time.Second, a, "REGISTER", refuse, 5}, // -1 + .5 - 1 = -1.5: (1 + 1.5) / .5 = 5 s
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			l := newLimiter(tt.cfg, clk.now)
			for i, s := range tt.steps {
				clk.add(s.wait)
				v, retry := l.take(s.addr, s.method)
				if v != s.want || retry != s.retry {
					t.Fatalf("step %d (%s %s): got %v retry %d, want %v retry %d", i, s.method, s.addr, v, retry, s.want, s.retry)
				}
			}
		})
	}
}

func TestLimiterBoundedMemory(t *testing.T) {
	clk := newClock()
	l := newLimiter(FloodConfig{Limits: map[string]RateLimit{"INVITE": {Rate: 10, Burst: 5}}, DropAfter: 5, MaxSources: 100}, clk.now)
	base := netip.MustParseAddr("10.0.0.0").As4()
	for i := range 1000 {
		ip := base
		ip[2], ip[3] = byte(i>>8), byte(i)
		l.take(netip.AddrFrom4(ip), "INVITE")
	}
	if n := l.size(); n > 100 {
		t.Fatalf("%d buckets held, cap 100", n)
	}
	// Idle buckets that have refilled are pruned as new sources come.
	clk.add(2 * time.Second)
	for i := range 10 {
		l.take(netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}), "INVITE")
	}
	if n := l.size(); n > 100-10 {
		t.Fatalf("%d buckets held after idle pruning, want fewer than 90", n)
	}
}

func TestLockoutExpiry(t *testing.T) {
	clk := newClock()
	a := netip.MustParseAddr("198.51.100.7")
	other := netip.MustParseAddr("198.51.100.8")
	b := NewLockout(LockoutConfig{Failures: 3, Window: 5 * time.Minute, Duration: 15 * time.Minute}, clk.now, nil)

	b.Failed(a)
	clk.add(4 * time.Minute)
	b.Failed(a)
	clk.add(2 * time.Minute) // the first failure left the window
	b.Failed(a)
	if _, blocked := b.Blocked(a); blocked {
		t.Fatal("blocked after 2 failures in the window")
	}
	clk.add(time.Minute)
	b.Failed(a)
	until, blocked := b.Blocked(a)
	if !blocked || !until.Equal(clk.t.Add(15*time.Minute)) {
		t.Fatalf("Blocked = %v %v, want true until %v", until, blocked, clk.t.Add(15*time.Minute))
	}
	if _, blocked := b.Blocked(other); blocked {
		t.Fatal("another source blocked")
	}
	if n := b.BlockedCount(); n != 1 {
		t.Fatalf("BlockedCount = %d, want 1", n)
	}
	// Failures while locked out do not extend the lock.
	clk.add(10 * time.Minute)
	b.Failed(a)
	clk.add(5*time.Minute - time.Nanosecond)
	if _, blocked := b.Blocked(a); !blocked {
		t.Fatal("unblocked before expiry")
	}
	clk.add(time.Nanosecond)
	if _, blocked := b.Blocked(a); blocked {
		t.Fatal("still blocked at expiry")
	}
	if n := b.BlockedCount(); n != 0 {
		t.Fatalf("BlockedCount = %d after expiry, want 0", n)
	}
	// IPv4-mapped IPv6 is the same source.
	mapped := netip.AddrFrom16(a.As16())
	for range 3 {
		b.Failed(mapped)
	}
	if _, blocked := b.Blocked(a); !blocked {
		t.Fatal("failures from the IPv4-mapped address did not lock out the IPv4 source")
	}
}

func TestLockoutOffAndBounded(t *testing.T) {
	clk := newClock()
	off := NewLockout(LockoutConfig{}, clk.now, nil)
	a := netip.MustParseAddr("192.0.2.9")
	for range 100 {
		off.Failed(a)
	}
	if _, blocked := off.Blocked(a); blocked {
		t.Fatal("lock-out off but source blocked")
	}
	var nilList *Lockout
	nilList.Failed(a)
	if _, blocked := nilList.Blocked(a); blocked {
		t.Fatal("nil lockout blocks")
	}
	b := NewLockout(LockoutConfig{Failures: 5, Window: time.Minute, Duration: time.Minute, MaxSources: 50}, clk.now, nil)
	for i := range 500 {
		b.Failed(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	b.mu.Lock()
	n := len(b.srcs)
	b.mu.Unlock()
	if n > 50 {
		t.Fatalf("%d sources tracked, cap 50", n)
	}
}

func TestSourceAddr(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"192.0.2.1:5060", "192.0.2.1", true},
		{"[2001:db8::1]:5060", "2001:db8::1", true},
		{"[::ffff:192.0.2.1]:5060", "192.0.2.1", true},
		{"192.0.2.1", "192.0.2.1", true},
		{"", "", false},
		{"host.example:5060", "", false},
	}
	for _, tt := range tests {
		got, ok := addrOf(tt.in)
		if ok != tt.ok || (ok && got.String() != tt.want) {
			t.Errorf("addrOf(%q) = %v %v, want %s %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
