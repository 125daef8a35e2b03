//go:build mwibench

package mwi

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmserver/voicemail/store"
)

// TestMWIFanout10k measures, for BENCHMARKS.md, how long the notifier takes
// to NOTIFY 10,000 subscriptions of one mailbox: at start-up (every stored
// subscription gets the state) and after one change. The subscribers are 16
// UDP sockets on loopback answering 200. Run with go test -tags mwibench.
func TestMWIFanout10k(t *testing.T) {
	const n, socks = 10000, 16
	env := newMWIEnv(t)
	env.stop()

	var got atomic.Int64
	var want atomic.Value
	want.Store("Voice-Message: 0/0")
	var conns []*net.UDPConn
	var wg sync.WaitGroup
	for i := 0; i < socks; i++ {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadBuffer(8 << 20)
		conns = append(conns, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 65536)
			for {
				k, from, err := c.ReadFromUDP(buf)
				if err != nil {
					return
				}
				msg := string(buf[:k])
				if strings.HasPrefix(msg, "SIP/2.0") {
					continue
				}
				_, _ = c.WriteToUDP([]byte(okFor(msg)), from)
				if strings.Contains(msg, want.Load().(string)) {
					got.Add(1)
				}
			}
		}()
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}()

	ctx := context.Background()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		c := conns[i%socks].LocalAddr().String()
		sub := &store.MWISubscription{
			ID: fmt.Sprintf("bench-%05d", i), Tenant: "default", Mailbox: "1001",
			CallID: fmt.Sprintf("bench-%d@x", i), LocalTag: "l", RemoteTag: fmt.Sprintf("r%d", i),
			LocalURI: "<sip:1001@127.0.0.1>", RemoteURI: "<sip:1001@127.0.0.1>", Contact: "sip:1001@" + c,
			Transport: "UDP", Source: c, LocalCSeq: 1, RemoteCSeq: 1, ExpiresAt: time.Now().Add(time.Hour),
		}
		if err := env.raw.SaveMWISubscription(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("stored %d subscriptions in %v", n, time.Since(t0))

	wait := func(what string, start time.Time) {
		deadline := time.Now().Add(120 * time.Second)
		for got.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d NOTIFYs after 120 s", what, got.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("%s: %d NOTIFYs answered in %v", what, n, time.Since(start))
	}
	start := time.Now()
	env.start()
	wait("start-up", start)
	time.Sleep(1100 * time.Millisecond) // out of the coalescing window
	got.Store(0)
	want.Store("Voice-Message: 1/0")
	start = time.Now()
	env.deposit("1001", false)
	wait("one change", start)
	ok := counter(t, env.n, "voicemail_mwi_notify_total", "ok")
	t.Logf("NOTIFYs ok: %v, subscriptions: %v", ok, gauge(t, env.n, "voicemail_mwi_subscriptions"))
}

// okFor answers a request 200 (Via, From, To, Call-ID, CSeq copied).
func okFor(req string) string {
	var b strings.Builder
	b.WriteString("SIP/2.0 200 OK\r\n")
	for _, line := range strings.Split(req, "\r\n")[1:] {
		if line == "" {
			break
		}
		l := strings.ToLower(line)
		if strings.HasPrefix(l, "via:") || strings.HasPrefix(l, "from:") || strings.HasPrefix(l, "to:") ||
			strings.HasPrefix(l, "call-id:") || strings.HasPrefix(l, "cseq:") {
			b.WriteString(line)
			b.WriteString("\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// TestMWIChangeLatency measures, for BENCHMARKS.md, the time from a
// committed change (CreateMessage returning; the bus is synchronous) to its
// NOTIFY reaching the subscriber, outside the coalescing window: 100
// mailboxes with one subscriber each, 3 rounds of one deposit per mailbox.
// Run with go test -tags mwibench.
func TestMWIChangeLatency(t *testing.T) {
	env := newMWIEnv(t)
	ctx := context.Background()
	const boxes = 100
	var peers []*mwiPeer
	for i := 0; i < boxes; i++ {
		mb := fmt.Sprint(3000 + i)
		if err := env.raw.CreateMailbox(ctx, &store.Mailbox{Tenant: "default", Number: mb}); err != nil {
			t.Fatal(err)
		}
		p := newMWIPeer(t, env.addr)
		p.subscribe(subOpts{callID: newCallID(), tag: "b", cseq: 1, expires: 3600, user: mb})
		p.response(5 * time.Second)
		p.notify(5 * time.Second)
		peers = append(peers, p)
	}
	time.Sleep(1100 * time.Millisecond)
	var withCommit, afterCommit []time.Duration
	for round := 0; round < 3; round++ {
		for i, p := range peers {
			t0 := time.Now()
			env.deposit(fmt.Sprint(3000+i), false)
			t1 := time.Now()
			p.notify(5 * time.Second)
			t2 := time.Now()
			withCommit = append(withCommit, t2.Sub(t0))
			afterCommit = append(afterCommit, t2.Sub(t1))
		}
		time.Sleep(1100 * time.Millisecond)
	}
	pct := func(d []time.Duration, p float64) time.Duration {
		s := append([]time.Duration(nil), d...)
		for i := 1; i < len(s); i++ {
			for j := i; j > 0 && s[j] < s[j-1]; j-- {
				s[j], s[j-1] = s[j-1], s[j]
			}
		}
		return s[min(len(s)-1, int(p*float64(len(s))))]
	}
	t.Logf("commit → NOTIFY received (%d): p50 %v p99 %v", len(afterCommit), pct(afterCommit, .5), pct(afterCommit, .99))
	t.Logf("CreateMessage call → NOTIFY received (%d): p50 %v p99 %v", len(withCommit), pct(withCommit, .5), pct(withCommit, .99))
}
