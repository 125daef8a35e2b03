//go:build scalebench

package mwi

// The MWI figure of BENCHMARKS.md, "Data at scale": an instance starting
// over 100,000 stored subscriptions (one per mailbox, 10,000,000 messages;
// internal/scaleseed) re-NOTIFYs each with its mailbox's counts. The
// phones are 16 UDP sockets on loopback that answer 200 OK. SQLite and
// PostgreSQL, kept in $SCALE_DIR/scale-sqlite and $SCALE_DIR/scale-pg
// (default /tmp):
//
//	nice -n 19 go test -tags scalebench -run TestScaleMWIStartup -v -timeout 60m ./mwi/
//
// SCALE_CPUPROFILE=<file> writes a CPU profile of the start-up
// (<file>.<backend>).

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmserver/voicemail/call"
	"github.com/vmserver/voicemail/internal/scaleseed"
	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/prompts"
	vsip "github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/store"
)

// scaleSink is the phones: it answers every NOTIFY 200 and keeps the last
// body per Call-ID.
type scaleSink struct {
	mu     sync.Mutex
	bodies map[string]string
	total  int
	conns  []*net.UDPConn
	wg     sync.WaitGroup
}

func newScaleSink(t *testing.T, addrs []string) *scaleSink {
	s := &scaleSink{bodies: map[string]string{}}
	for _, a := range addrs {
		ua, err := net.ResolveUDPAddr("udp", a)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.ListenUDP("udp", ua)
		if err != nil {
			t.Fatalf("NOTIFY sink %s: %v", a, err)
		}
		_ = c.SetReadBuffer(8 << 20)
		s.conns = append(s.conns, c)
		s.wg.Add(1)
		go s.serve(c)
	}
	t.Cleanup(s.close)
	return s
}

func (s *scaleSink) serve(c *net.UDPConn) {
	defer s.wg.Done()
	buf := make([]byte, 65536)
	for {
		k, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		msg := string(buf[:k])
		if !strings.HasPrefix(msg, "NOTIFY ") {
			continue
		}
		var callID string
		var ok strings.Builder
		ok.WriteString("SIP/2.0 200 OK\r\n")
		head, body, _ := strings.Cut(msg, "\r\n\r\n")
		for _, line := range strings.Split(head, "\r\n")[1:] {
			l := strings.ToLower(line)
			for _, h := range []string{"via:", "from:", "to:", "call-id:", "cseq:", "v:", "f:", "t:", "i:"} {
				if strings.HasPrefix(l, h) {
					ok.WriteString(line + "\r\n")
					if h == "call-id:" || h == "i:" {
						callID = strings.TrimSpace(line[len(h):])
					}
				}
			}
		}
		ok.WriteString("Content-Length: 0\r\n\r\n")
		_, _ = c.WriteToUDP([]byte(ok.String()), from)
		s.mu.Lock()
		s.bodies[callID] = body
		s.total++
		s.mu.Unlock()
	}
}

func (s *scaleSink) seen() (distinct, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies), s.total
}

func (s *scaleSink) close() {
	for _, c := range s.conns {
		c.Close()
	}
	s.wg.Wait()
}

// TestScaleMWIStartup starts the notifier as the instance that owns the
// 100,000 seeded subscriptions and times Start until every subscription's
// NOTIFY was answered; 500 random ones are checked against the counts.
func TestScaleMWIStartup(t *testing.T) {
	for _, backend := range scaleseed.Backends {
		t.Run(backend, func(t *testing.T) {
			dsn, p := scaleseed.Prepare(t, backend, scaleseed.Full(time.Now()), scaleseed.Keep(backend))
			ctx := context.Background()
			// The previous runs' CSeq updates, vacuumed as a PostgreSQL
			// running all along would have (untimed).
			if err := scaleseed.Tidy(ctx, dsn); err != nil {
				t.Fatal(err)
			}
			raw, err := store.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			sink := newScaleSink(t, p.Sinks)

			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			bus := store.NewChanges()
			st := store.Notifying(raw, bus)
			dir := t.TempDir()
			blobs, err := store.NewFSBlobs(filepath.Join(dir, "media"))
			if err != nil {
				t.Fatal(err)
			}
			eng, err := media.NewEngine(media.EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 40000, PortMax: 40100, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			ps, err := prompts.Load("")
			if err != nil {
				t.Fatal(err)
			}
			calls := call.New(call.Config{Recording: call.Recording{MaxSeconds: 60, MinSeconds: 1, SilenceSeconds: 10}},
				call.Deps{Store: st, Blobs: blobs, Prompts: ps, Logger: log})
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := pc.LocalAddr().String()
			pc.Close()
			srv, err := vsip.New(vsip.Config{
				Listeners: []vsip.Listener{{Transport: "udp", Addr: addr}},
				PublicIP:  net.IPv4(127, 0, 0, 1), AccessNumbers: []string{"5555"}, MaxCalls: 10,
			}, vsip.Deps{Store: st, Engine: eng, Calls: calls, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			lctx, cancel := context.WithCancel(ctx)
			defer cancel()
			if err := srv.Listen(lctx); err != nil {
				t.Fatal(err)
			}
			n := New(Deps{Server: srv, Store: st, Changes: bus, Logger: log, Instance: p.SubOwner})

			if f := os.Getenv("SCALE_CPUPROFILE"); f != "" {
				out, err := os.Create(f + "." + backend)
				if err != nil {
					t.Fatal(err)
				}
				if err := pprof.StartCPUProfile(out); err != nil {
					t.Fatal(err)
				}
				defer func() { pprof.StopCPUProfile(); out.Close() }()
			}
			start := time.Now()
			if err := n.Start(ctx); err != nil {
				t.Fatal(err)
			}
			loaded := time.Since(start)
			deadline := time.Now().Add(5 * time.Minute)
			for {
				d, _ := sink.seen()
				if d >= p.Subscriptions {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d subscriptions NOTIFYed after 5 min", d, p.Subscriptions)
				}
				time.Sleep(time.Millisecond)
			}
			took := time.Since(start)
			n.Stop()
			d, total := sink.seen()
			t.Logf("%s start-up: %d subscriptions NOTIFYed (%d NOTIFYs) in %v (Start returned after %v), %.0f NOTIFY/s",
				backend, d, total, took.Round(time.Millisecond), loaded.Round(time.Millisecond), float64(d)/took.Seconds())

			rng := rand.New(rand.NewPCG(3, 4))
			for i := 0; i < 500; i++ {
				k := rng.IntN(p.Subscriptions)
				sub := p.Subscription(k)
				c, err := raw.CountMessages(ctx, scaleseed.Tenant, sub.Mailbox)
				if err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("Voice-Message: %d/%d (%d/%d)", c.New, c.Old, c.UrgentNew, c.UrgentOld)
				sink.mu.Lock()
				body := sink.bodies[sub.CallID]
				sink.mu.Unlock()
				if !strings.Contains(body, want) {
					t.Fatalf("subscription %s: NOTIFY body %q, want %q", sub.ID, body, want)
				}
			}
		})
	}
}
