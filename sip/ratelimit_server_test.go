package sip_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	vsip "github.com/vmserver/voicemail/sip"
)

// TestFloodControlInDialog: past the INVITE budget a new call gets 503 with
// Retry-After, while the admitted call's re-INVITE, INFO and BYE (in the
// dialog) are never limited; a locked-out source gets 403 to INVITE but
// still its OPTIONS answered.
func TestFloodControlInDialog(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *vsip.Config) {
		c.Flood = vsip.FloodConfig{
			Limits:  map[string]vsip.RateLimit{"INVITE": {Rate: 0.01, Burst: 1}},
			Lockout: vsip.LockoutConfig{Failures: 2, Window: time.Minute, Duration: time.Minute},
		}
	})
	p := newPhone(t, ts.addr)
	p.send("INVITE", 1, p.sdp("sendrecv"))
	p.expect("SIP/2.0 200", 5*time.Second)
	p.send("ACK", 1, "")

	q := newPhone(t, ts.addr) // same address, another call
	q.send("INVITE", 1, q.sdp("sendrecv"))
	res := q.expect("SIP/2.0 503", 5*time.Second)
	if ra := header(res, "Retry-After", " "); ra == "" || ra == "0" {
		t.Errorf("503 with Retry-After %q:\n%s", ra, res)
	}

	p.send("INVITE", 2, p.sdp("sendonly")) // re-INVITE: in the dialog
	p.expect("SIP/2.0 200", 5*time.Second)
	p.send("ACK", 2, "")
	p.sendBody("INFO", 3, "application/dtmf-relay", "Signal=5\r\nDuration=160\r\n")
	p.expect("SIP/2.0 200", 5*time.Second)

	bl := ts.srv.Blocklist()
	lo := netip.MustParseAddr("127.0.0.1")
	bl.Failed(lo)
	bl.Failed(lo)
	if _, blocked := bl.Blocked(lo); !blocked {
		t.Fatal("two failures did not lock 127.0.0.1 out")
	}
	o := newPhone(t, ts.addr)
	o.send("OPTIONS", 1, "")
	o.expect("SIP/2.0 200", 5*time.Second)
	r := newPhone(t, ts.addr)
	r.send("INVITE", 1, r.sdp("sendrecv"))
	if m := r.expect("SIP/2.0 4", 5*time.Second); !strings.HasPrefix(m, "SIP/2.0 403") {
		t.Fatalf("locked-out INVITE answered %q, want 403", strings.SplitN(m, "\r\n", 2)[0])
	}
	p.send("BYE", 4, "") // in the dialog: still served
	p.expect("SIP/2.0 200", 5*time.Second)
}

// TestFloodControlTrustedSource: a trusted proxy is not one source: its
// requests are never rate limited.
func TestFloodControlTrustedSource(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *vsip.Config) {
		c.Flood = vsip.FloodConfig{Limits: map[string]vsip.RateLimit{"OPTIONS": {Rate: 0.01, Burst: 1}}}
		c.Flood.Lockout = vsip.LockoutConfig{Failures: 2, Window: time.Minute, Duration: time.Minute}
		c.TrustedSource = func(a netip.Addr) bool { return a.IsLoopback() }
	})
	for range 5 {
		p := newPhone(t, ts.addr)
		p.send("OPTIONS", 1, "")
		p.expect("SIP/2.0 200", 5*time.Second)
	}
	// Nor locked out: it carries the failures of many phones.
	bl, lo := ts.srv.Blocklist(), netip.MustParseAddr("127.0.0.1")
	for range 100 {
		bl.Failed(lo)
	}
	if _, blocked := bl.Blocked(lo); blocked {
		t.Fatal("a trusted proxy was locked out")
	}
}
