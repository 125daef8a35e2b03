package udpbatch

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

func listen(t testing.TB, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		skipOrFail(t, fmt.Sprintf("no %s socket on loopback (%v): enable IPv6 on lo", network, err))
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadBuffer(1 << 20)
	return c
}

// TestRoundTrip sends a batch from one socket to two others and reads it
// back in batches: every datagram arrives intact, with its source.
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct{ name, net, from, to string }{
		{"ipv4", "udp4", "127.0.0.1:0", "127.0.0.1:0"},
		{"dual-stack sender to ipv4", "udp", "[::]:0", "127.0.0.1:0"},
		{"ipv6", "udp6", "[::1]:0", "[::1]:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := listen(t, tc.net, tc.from)
			dstNet := "udp4"
			if tc.net == "udp6" {
				dstNet = "udp6"
			}
			dsts := []*net.UDPConn{listen(t, dstNet, tc.to), listen(t, dstNet, tc.to)}
			w, err := New(src)
			if err != nil {
				t.Fatal(err)
			}
			const n = 200
			out := make([]Message, n)
			for i := range out {
				d := dsts[i%2].LocalAddr().(*net.UDPAddr).AddrPort()
				out[i] = Message{Buf: []byte{byte(i), byte(i >> 8), 0xab, byte(i % 7)}, Addr: d}
			}
			if sent, err := w.WriteBatch(out); err != nil || sent != n {
				t.Fatalf("WriteBatch = %d, %v", sent, err)
			}
			srcPort := src.LocalAddr().(*net.UDPAddr).Port
			for k, d := range dsts {
				r, err := New(d)
				if err != nil {
					t.Fatal(err)
				}
				_ = d.SetReadDeadline(time.Now().Add(5 * time.Second))
				in := make([]Message, 16)
				for i := range in {
					in[i].Buf = make([]byte, 64)
				}
				got := 0
				for got < n/2 {
					m, err := r.ReadBatch(in)
					if err != nil {
						t.Fatalf("socket %d: ReadBatch after %d: %v", k, got, err)
					}
					for _, msg := range in[:m] {
						i := 2*got + k
						want := []byte{byte(i), byte(i >> 8), 0xab, byte(i % 7)}
						if !bytes.Equal(msg.Buf[:msg.N], want) {
							t.Fatalf("socket %d datagram %d = %x, want %x", k, got, msg.Buf[:msg.N], want)
						}
						if msg.Addr.Port() != uint16(srcPort) || msg.Addr.Addr().Is4In6() {
							t.Fatalf("source %v, want port %d, unmapped", msg.Addr, srcPort)
						}
						got++
					}
				}
			}
		})
	}
}

// TestClosedEndsRead: closing the socket ends a blocked ReadBatch.
func TestClosedEndsRead(t *testing.T) {
	c := listen(t, "udp4", "127.0.0.1:0")
	r, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.ReadBatch([]Message{{Buf: make([]byte, 8)}})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("err = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch still blocked after Close")
	}
}

// TestWriteSkipsRefused: a datagram the kernel refuses does not stop the
// others.
func TestWriteSkipsRefused(t *testing.T) {
	src := listen(t, "udp4", "127.0.0.1:0")
	dst := listen(t, "udp4", "127.0.0.1:0")
	w, _ := New(src)
	ok := dst.LocalAddr().(*net.UDPAddr).AddrPort()
	ms := []Message{
		{Buf: []byte("a"), Addr: ok},
		{Buf: []byte("b"), Addr: netip.MustParseAddrPort("[2001:db8::1]:9")}, // IPv6 on an IPv4 socket
		{Buf: []byte("c"), Addr: ok},
	}
	sent, err := w.WriteBatch(ms)
	if sent != 2 || err == nil {
		t.Fatalf("WriteBatch = %d, %v; want 2 and an error", sent, err)
	}
	buf := make([]byte, 8)
	_ = dst.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, want := range []string{"a", "c"} {
		n, _, err := dst.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
		}
	}
}

// TestNoAllocs: a steady batch costs no allocation on either side.
func TestNoAllocs(t *testing.T) {
	src := listen(t, "udp4", "127.0.0.1:0")
	dst := listen(t, "udp4", "127.0.0.1:0")
	w, _ := New(src)
	r, _ := New(dst)
	to := dst.LocalAddr().(*net.UDPAddr).AddrPort()
	out := make([]Message, 32)
	in := make([]Message, 32)
	for i := range out {
		out[i] = Message{Buf: make([]byte, 172), Addr: to}
		in[i].Buf = make([]byte, 2048)
	}
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := w.WriteBatch(out); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(out); {
			n, err := r.ReadBatch(in[:len(out)-got])
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch round trip, want 0", allocs)
	}
}

// BenchmarkWriteBatch vs BenchmarkWriteOne: 64 RTP-sized datagrams.
func BenchmarkWriteBatch(b *testing.B) { benchWrite(b, true) }
func BenchmarkWriteOne(b *testing.B)   { benchWrite(b, false) }

func benchWrite(b *testing.B, batch bool) {
	src := listen(b, "udp4", "127.0.0.1:0")
	dst := listen(b, "udp4", "127.0.0.1:0")
	go func() { // drain
		buf := make([]byte, 2048)
		for {
			if _, _, err := dst.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	w, _ := New(src)
	to := dst.LocalAddr().(*net.UDPAddr).AddrPort()
	ms := make([]Message, 64)
	for i := range ms {
		ms[i] = Message{Buf: make([]byte, 172), Addr: to}
	}
	b.ReportAllocs()
	b.SetBytes(64 * 172)
	for b.Loop() {
		if batch {
			_, _ = w.WriteBatch(ms)
			continue
		}
		for i := range ms {
			_, _ = src.WriteToUDPAddrPort(ms[i].Buf, to)
		}
	}
}

// TestDrops: a full receive buffer shows in Drops (where the system
// tells it).
func TestDrops(t *testing.T) {
	src := listen(t, "udp4", "127.0.0.1:0")
	dst := listen(t, "udp4", "127.0.0.1:0")
	_ = dst.SetReadBuffer(1024)
	r, _ := New(dst)
	if _, ok := r.Drops(); !ok {
		skipOrFail(t, "this system does not report socket drops (SO_MEMINFO, Linux)")
	}
	to := dst.LocalAddr().(*net.UDPAddr).AddrPort()
	for range 500 {
		_, _ = src.WriteToUDPAddrPort(make([]byte, 172), to)
	}
	if n, _ := r.Drops(); n == 0 {
		t.Fatal("500 datagrams into a 1 KiB buffer, no drop counted")
	}
}

// skipOrFail skips outside CI; under CI (CI set) a missing capability fails.
func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(why)
	}
	t.Skip(why)
}
