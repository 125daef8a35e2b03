package sip

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The third connection of a source beyond a cap of two is closed at once;
// a connection that stays silent is closed after the idle time, one that
// talks stays open; a closed connection frees its place.
func TestConnLimits(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	ln := limitListener(raw, 300*time.Millisecond, 2, refused, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
			go func() { // echo until the deadline or the peer ends it
				defer c.Close()
				b := make([]byte, 64)
				for {
					n, err := c.Read(b)
					if err != nil {
						return
					}
					_, _ = c.Write(b[:n])
				}
			}()
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	talker, silent := dial(), dial()
	<-accepted
	<-accepted
	third := dial()
	_ = third.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := third.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("third connection from one source: read %v, want it closed", err)
	}
	if testutilValue(refused) != 1 {
		t.Errorf("refused = %v, want 1", testutilValue(refused))
	}
	// The talker speaks every 100 ms for 600 ms: past the idle time, open.
	for range 6 {
		if _, err := talker.Write([]byte("\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		_ = talker.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := io.ReadFull(talker, make([]byte, 4)); err != nil {
			t.Fatalf("talking connection closed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = silent.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("silent connection still open after the idle time")
	}
	// The silent one is gone: a new connection fits again.
	time.Sleep(50 * time.Millisecond)
	dial()
	select {
	case <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("a place freed by a closed connection is not reused")
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

func testutilValue(c prometheus.Counter) float64 {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	fams, _ := reg.Gather()
	return fams[0].GetMetric()[0].GetCounter().GetValue()
}

// TestUDPListenerBuffers: a UDP listener gets a receive buffer for bursts
// of calls (16 MiB, or net.core.rmem_max without CAP_NET_ADMIN), and its
// kernel drop count is exported.
func TestUDPListenerBuffers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("socket buffers are read on Linux only")
	}
	s, err := New(Config{Listeners: []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}}, PublicIP: net.IPv4(127, 0, 0, 1)},
		Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	udp := s.udp
	s.mu.Unlock()
	if len(udp) != 1 {
		t.Fatalf("%d UDP listeners kept, want 1", len(udp))
	}
	want := sipSocketBuffer
	if b, err := os.ReadFile("/proc/sys/net/core/rmem_max"); err == nil {
		if max, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && max < want {
			want = max // granted up to this without CAP_NET_ADMIN
		}
	}
	if got, ok := udp[0].RecvBuffer(); !ok || got < want {
		t.Errorf("receive buffer %d (%v), want at least %d", got, ok, want)
	}
	if _, ok := udp[0].Drops(); !ok || s.udpDropped() != 0 {
		t.Errorf("drops not read (%v) or not 0: %d", ok, s.udpDropped())
	}
	found := false
	for _, c := range s.Collectors() {
		ch := make(chan *prometheus.Desc, 8)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			found = found || strings.Contains(d.String(), "voicemail_sip_udp_dropped_total")
		}
	}
	if !found {
		t.Error("voicemail_sip_udp_dropped_total is not collected")
	}
}
