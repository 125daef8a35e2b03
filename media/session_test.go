package media

import (
	"math"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// checkGoroutines fails the test if goroutines started during it are
// still running at the end (pion-style leak check).
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Fatalf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(),
					buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func newTestEngine(t *testing.T) *Engine {
	t.Helper()
	e, err := NewEngine(EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 31000, PortMax: 31999})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// peer is the far end: a UDP socket that sends and reads RTP.
type peer struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
	hdr  rtp.Header
}

func newPeer(t *testing.T, s *Session) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{t: t, conn: c, to: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.LocalPort()},
		hdr: rtp.Header{Version: 2, SSRC: 0xCAFE, SequenceNumber: 65530, Timestamp: 1000}}
}

// newCall creates a session whose SDP address is a new peer's socket, as
// the call driver does with the address of the offer.
func newCall(t *testing.T, e *Engine, cfg SessionConfig) (*Session, *peer) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cfg.Remote = c.LocalAddr().(*net.UDPAddr)
	s, err := e.NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, &peer{t: t, conn: c, to: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.LocalPort()},
		hdr: rtp.Header{Version: 2, SSRC: 0xCAFE, SequenceNumber: 65530, Timestamp: 1000}}
}

func (p *peer) addr() *net.UDPAddr { return p.conn.LocalAddr().(*net.UDPAddr) }

func (p *peer) send(pt uint8, seq uint16, ts uint32, payload []byte) {
	h := p.hdr
	h.PayloadType, h.SequenceNumber, h.Timestamp = pt, seq, ts
	b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.conn.WriteToUDP(b, p.to); err != nil {
		p.t.Fatal(err)
	}
}

// read returns the next packet or nil after the timeout.
func (p *peer) read(timeout time.Duration) (*rtp.Packet, time.Time) {
	buf := make([]byte, 2048)
	p.conn.SetReadDeadline(time.Now().Add(timeout))
	n, err := p.conn.Read(buf)
	if err != nil {
		return nil, time.Time{}
	}
	var pkt rtp.Packet
	if err := pkt.Unmarshal(buf[:n]); err != nil {
		p.t.Fatal(err)
	}
	return &pkt, time.Now()
}

// syncSink collects recorded frames; the test reads it after StopRecord.
type syncSink struct {
	mu  sync.Mutex
	pcm []int16
}

func (s *syncSink) WriteFrame(p []int16) {
	s.mu.Lock()
	s.pcm = append(s.pcm, p...)
	s.mu.Unlock()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timeout waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func nextEvent(t *testing.T, s *Session, timeout time.Duration) (Event, bool) {
	t.Helper()
	select {
	case ev := <-s.Events():
		return ev, true
	case <-time.After(timeout):
		return Event{}, false
	}
}

func TestSessionRecord(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	for _, c := range []Codec{PCMU, PCMA} {
		t.Run(c.String(), func(t *testing.T) {
			s, p := newCall(t, e, SessionConfig{Codec: c, DTMFPayload: 101})
			var sink syncSink
			s.Record(&sink)
			// 20 packets of a tone across the sequence wrap; packet 5 lost,
			// 8 and 9 swapped, 12 duplicated, then comfort noise.
			tone := Tone(600, 400*time.Millisecond, 0.4)
			enc := make([]byte, len(tone))
			c.Encode(enc, tone)
			want := make([]int16, len(tone))
			c.Decode(want, enc)
			clear(want[5*160 : 6*160])
			order := []int{0, 1, 2, 3, 4, 6, 7, 9, 8, 10, 11, 12, 12, 13, 14, 15, 16, 17, 18, 19}
			for _, i := range order {
				p.send(uint8(c), 65530+uint16(i), 1000+uint32(i*160), enc[i*160:(i+1)*160])
			}
			p.send(13, 14, 1000+20*160, []byte{70})       // comfort noise: keeps the source, records nothing
			p.send(18, 15, 1000+21*160, make([]byte, 20)) // G.729, not negotiated: dropped
			waitFor(t, "packets", func() bool { st := s.Stats(); return st.PacketsReceived+st.PacketsDropped >= 22 })
			s.StopRecord()
			sink.mu.Lock()
			got := sink.pcm
			sink.mu.Unlock()
			if len(got) != len(want) {
				t.Fatalf("recorded %d samples, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("sample %d = %d, want %d", i, got[i], want[i])
				}
			}
			st := s.Stats()
			if st.PacketsReceived != 21 || st.PacketsLost != 1 || st.PacketsDuplicate != 1 || st.PacketsDropped != 1 || st.PacketsRejected != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestSessionDigits(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	s, p := newCall(t, e, SessionConfig{Codec: PCMU, DTMFPayload: 101})
	press := func(event byte, ts uint32, seq uint16) uint16 {
		for i, end := range []bool{false, false, true, true, true} {
			p.send(101, seq, ts, ev(event, end, uint16(160*(i+1))))
			seq++
		}
		return seq
	}
	seq := press(1, 8000, 10)
	seq = press(1, 9600, seq) // the same key again: a new event
	s.InjectDigit('#')
	press(11, 11200, seq)
	s.InjectDigit('x') // ignored
	s.InjectDigit('b')
	var got []rune
	for len(got) < 5 {
		ev, ok := nextEvent(t, s, 2*time.Second)
		if !ok {
			break
		}
		if ev.Kind != EventDigit {
			t.Fatalf("event %+v", ev)
		}
		got = append(got, ev.Digit)
	}
	// INFO digits and RTP digits race; compare as multisets.
	count := map[rune]int{}
	for _, r := range got {
		count[r]++
	}
	if len(got) != 5 || count['1'] != 2 || count['#'] != 2 || count['B'] != 1 {
		t.Fatalf("digits %q", string(got))
	}
	if _, ok := nextEvent(t, s, 100*time.Millisecond); ok {
		t.Fatal("extra event")
	}
}

// syncCodesSink is a syncSink that also takes codes (a G711Sink), and
// counts the frames it took so.
type syncCodesSink struct {
	syncSink
	codes int
}

func (s *syncCodesSink) WriteG711(c Codec, b []byte) bool {
	pcm := make([]int16, len(b))
	c.Decode(pcm, b)
	s.mu.Lock()
	s.pcm = append(s.pcm, pcm...)
	s.codes++
	s.mu.Unlock()
	return true
}

// TestSessionInbandDigits: without telephone-event the digits are found
// in the audio, which therefore reaches a recording that takes codes
// decoded (the detector needs samples), and whole.
func TestSessionInbandDigits(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	s, p := newCall(t, e, SessionConfig{Codec: PCMA}) // no telephone-event
	var rec syncCodesSink
	s.Record(&rec)
	audio := concat(Silence(40*time.Millisecond), DTMFTone('4', 100*time.Millisecond), Silence(60*time.Millisecond),
		DTMFTone('2', 100*time.Millisecond), Silence(40*time.Millisecond))
	enc := make([]byte, len(audio))
	PCMA.Encode(enc, audio)
	defer func() {
		waitFor(t, "packets", func() bool { return s.Stats().PacketsReceived >= uint64(len(enc)/160) })
		s.StopRecord()
		want := make([]int16, len(enc))
		PCMA.Decode(want, enc)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if !slices.Equal(rec.pcm, want) || rec.codes != 0 {
			t.Errorf("recorded %d samples (equal %v), %d frames as codes", len(rec.pcm), slices.Equal(rec.pcm, want), rec.codes)
		}
	}()
	for i := 0; i*160 < len(enc); i++ {
		p.send(8, uint16(i), uint32(i*160), enc[i*160:(i+1)*160])
		p.send(101, uint16(i), uint32(i*160), ev(9, false, 160)) // not negotiated: dropped
	}
	var got []rune
	for len(got) < 2 {
		ev, ok := nextEvent(t, s, 2*time.Second)
		if !ok {
			break
		}
		got = append(got, ev.Digit)
	}
	if string(got) != "42" {
		t.Fatalf("digits %q", string(got))
	}
}

func TestSessionPlay(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	for _, ptime := range []time.Duration{20 * time.Millisecond, 30 * time.Millisecond} {
		t.Run(ptime.String(), func(t *testing.T) {
			s, err := e.NewSession(SessionConfig{Codec: PCMU, DTMFPayload: 101, Ptime: ptime})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			p := newPeer(t, s)
			s.SetRemote(p.addr(), PCMU, 101)
			spp := samplesFor(ptime)
			const frames = 25
			audio := Tone(440, time.Duration(frames)*ptime-ptime/2, 0.3) // a short last frame
			s.Play(audio)
			if !s.Playing() {
				t.Fatal("not playing")
			}
			var pkts []*rtp.Packet
			var first, last time.Time
			for len(pkts) < frames {
				pkt, at := p.read(time.Second)
				if pkt == nil {
					t.Fatalf("got %d packets", len(pkts))
				}
				if len(pkts) == 0 && !pkt.Marker {
					continue // keep-alive before the playback started
				}
				if len(pkts) == 0 {
					first = at
				}
				last = at
				pkts = append(pkts, pkt)
			}
			for i, pkt := range pkts {
				if pkt.PayloadType != 0 || len(pkt.Payload) != spp || pkt.SSRC != pkts[0].SSRC {
					t.Fatalf("packet %d: pt %d len %d", i, pkt.PayloadType, len(pkt.Payload))
				}
				if pkt.Marker != (i == 0) {
					t.Fatalf("packet %d: marker %v", i, pkt.Marker)
				}
				if i > 0 {
					if pkt.SequenceNumber != pkts[i-1].SequenceNumber+1 {
						t.Fatalf("packet %d: seq %d after %d", i, pkt.SequenceNumber, pkts[i-1].SequenceNumber)
					}
					if pkt.Timestamp-pkts[i-1].Timestamp != uint32(spp) {
						t.Fatalf("packet %d: ts step %d", i, pkt.Timestamp-pkts[i-1].Timestamp)
					}
				}
			}
			// Pacing: 24 intervals of ptime.
			if el, want := last.Sub(first), 24*ptime; el < want-3*clockTick || el > want+25*clockTick {
				t.Errorf("25 packets took %v, want ~%v", el, want)
			}
			// The decoded payload is the audio, the short last frame padded with silence.
			var got []int16
			dec := make([]int16, spp)
			for _, pkt := range pkts {
				PCMU.Decode(dec, pkt.Payload)
				got = append(got, dec...)
			}
			for i := range got {
				var w int16
				if i < len(audio) {
					var e [1]byte
					PCMU.Encode(e[:], audio[i:i+1])
					var d [1]int16
					PCMU.Decode(d[:], e[:])
					w = d[0]
				}
				if got[i] != w {
					t.Fatalf("sample %d = %d, want %d", i, got[i], w)
				}
			}
			ev, ok := nextEvent(t, s, time.Second)
			if !ok || ev.Kind != EventPlayDone {
				t.Fatalf("event %+v %v", ev, ok)
			}
			if s.Playing() {
				t.Fatal("still playing")
			}
			// Idle: silence frames at ptime keep the stream alive (no CN negotiated).
			prev := pkts[frames-1]
			idle := 0
			for deadline := time.Now().Add(150 * time.Millisecond); time.Now().Before(deadline); {
				pkt, _ := p.read(time.Second)
				if pkt == nil {
					t.Fatal("nothing sent while idle")
				}
				if pkt.Marker || pkt.PayloadType != 0 || len(pkt.Payload) != spp || strings.Trim(string(pkt.Payload), "\xff") != "" ||
					pkt.SequenceNumber != prev.SequenceNumber+1 || pkt.Timestamp-prev.Timestamp != uint32(spp) {
					t.Fatalf("keep-alive %d: %+v after seq %d ts %d", idle, pkt, prev.SequenceNumber, prev.Timestamp)
				}
				prev, idle = pkt, idle+1
			}
			// A second playback: new talkspurt, sequence and timestamp continue.
			s.Play(audio[:spp])
			var pkt *rtp.Packet
			for pkt == nil || !pkt.Marker {
				if pkt != nil {
					prev = pkt
				}
				if pkt, _ = p.read(time.Second); pkt == nil {
					t.Fatal("second playback not sent")
				}
			}
			if pkt.SequenceNumber != prev.SequenceNumber+1 || pkt.Timestamp-prev.Timestamp != uint32(spp) {
				t.Fatalf("second playback packet %+v after %+v", pkt, prev)
			}
			// The counter moves just after the write the peer already saw.
			waitFor(t, "sent counter", func() bool { st := s.Stats(); return st.PacketsSent-st.KeepAliveSent == frames+1 })
		})
	}
}

func TestSessionStopPlay(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	s, err := e.NewSession(SessionConfig{Codec: PCMU})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Play(Silence(time.Second))
	time.Sleep(50 * time.Millisecond)
	s.StopPlay()
	if s.Playing() {
		t.Fatal("still playing")
	}
	if ev, ok := nextEvent(t, s, 200*time.Millisecond); ok {
		t.Fatalf("event after StopPlay: %+v", ev)
	}
	// Replacing a playback reports one PlayDone, for the new one; an empty
	// playback completes too.
	s.Play(Silence(time.Second))
	s.Play(nil)
	if ev, ok := nextEvent(t, s, time.Second); !ok || ev.Kind != EventPlayDone {
		t.Fatalf("event %+v %v", ev, ok)
	}
	if ev, ok := nextEvent(t, s, 200*time.Millisecond); ok {
		t.Fatalf("extra event %+v", ev)
	}
}

func TestSessionLatching(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	// The SDP address is a black hole (hold); the player must wait until a
	// source is learnt (4 consecutive packets) and answer it.
	s, err := e.NewSession(SessionConfig{Codec: PCMU, Remote: &net.UDPAddr{IP: net.IPv4zero, Port: 9}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := newPeer(t, s)
	other := newPeer(t, s)
	s.Play(Silence(10 * time.Second))
	for i := uint16(1); i <= 3; i++ {
		p.send(0, i, uint32(i)*160, make([]byte, 160))
	}
	if pkt, _ := p.read(100 * time.Millisecond); pkt != nil {
		t.Fatal("sent before the source was learnt")
	}
	p.send(0, 4, 4*160, make([]byte, 160))
	if pkt, _ := p.read(time.Second); pkt == nil {
		t.Fatal("nothing sent after learning")
	}
	// Another source is ignored while the learnt one is alive.
	for i := uint16(0); i < 6; i++ {
		other.send(0, 500+i, 100, make([]byte, 160))
	}
	p.send(0, 5, 5*160, make([]byte, 160))
	// The first 3 packets were replayed when the source was learnt.
	waitFor(t, "packets", func() bool { st := s.Stats(); return st.PacketsReceived+st.PacketsRejected >= 11 })
	if st := s.Stats(); st.PacketsReceived != 5 || st.PacketsRejected != 6 || st.PacketsDropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	if pkt, _ := other.read(100 * time.Millisecond); pkt != nil {
		t.Fatal("sent to the foreign source")
	}
	// A re-INVITE points elsewhere: follow it at once.
	s.SetRemote(other.addr(), PCMU, 0)
	if pkt, _ := other.read(time.Second); pkt == nil {
		t.Fatal("nothing sent to the new remote")
	}
	for { // drain what p got before the switch
		if pkt, _ := p.read(50 * time.Millisecond); pkt == nil {
			break
		}
	}
	p.send(0, 6, 6*160, make([]byte, 160))
	if pkt, _ := p.read(200 * time.Millisecond); pkt != nil {
		t.Fatal("the old source still answered after the re-INVITE")
	}
}

func TestEnginePorts(t *testing.T) {
	checkGoroutines(t)
	// Occupy the first port of the range; the pool must skip it.
	busy, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 32000})
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("port 32000 in use:", err)
		}
		t.Skip("port 32000 in use:", err)
	}
	defer busy.Close()
	e, err := NewEngine(EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 31999, PortMax: 32007})
	if err != nil {
		t.Fatal(err)
	}
	if e.FreePorts() != 4 { // 32000, 32002, 32004, 32006 (and the RTCP port after each)
		t.Fatalf("pool %d", e.FreePorts())
	}
	var ss []*Session
	for i := 0; i < 3; i++ {
		s, err := e.NewSession(SessionConfig{Codec: PCMU})
		if err != nil {
			t.Fatal(err)
		}
		if s.LocalPort()%2 != 0 || s.LocalPort() == 32000 {
			t.Fatalf("port %d", s.LocalPort())
		}
		ss = append(ss, s)
	}
	if _, err := e.NewSession(SessionConfig{Codec: PCMU}); err == nil {
		t.Fatal("pool not exhausted")
	}
	if err := ss[0].Close(); err != nil {
		t.Fatal(err)
	}
	ss[0].Close() // idempotent
	s, err := e.NewSession(SessionConfig{Codec: PCMU})
	if err != nil || s.LocalPort() != ss[0].LocalPort() {
		t.Fatalf("port not returned: %v", err)
	}
	if _, err := e.NewSession(SessionConfig{Codec: 18}); err == nil {
		t.Fatal("G.729 accepted")
	}
	if err := e.Close(); err != nil { // closes the remaining sessions
		t.Fatal(err)
	}
	if _, err := e.NewSession(SessionConfig{Codec: PCMU}); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
	for _, bad := range [][2]int{{5000, 4000}, {0, 70000}, {3, 3}} {
		if _, err := NewEngine(EngineConfig{PortMin: bad[0], PortMax: bad[1]}); err == nil {
			t.Errorf("range %v accepted", bad)
		}
	}
}

func TestEventsNeverBlock(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	s, err := e.NewSession(SessionConfig{Codec: PCMU})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 3*eventQueue; i++ {
		s.InjectDigit(rune('0' + i%10))
	}
	// The oldest were dropped: the queue holds the last eventQueue digits.
	ev := <-s.Events()
	if want := rune('0' + (2*eventQueue)%10); ev.Digit != want {
		t.Fatalf("oldest kept %q, want %q", ev.Digit, want)
	}
}

func TestSessionPerPacketNoAlloc(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	s, err := e.NewSession(SessionConfig{Codec: PCMU, DTMFPayload: 0}) // in-band detection on
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := newPeer(t, s)
	s.SetRemote(p.addr(), PCMU, 0)
	s.Record(discard{})
	s.Play(Silence(time.Hour))
	// Ticks far ahead of the real clock, so only these ticks send.
	idx := uint64(1) << 40
	s.tick(idx)
	s.txMu.Lock()
	s.rtcpNext = math.MaxUint64 // RTCP (every ~5 s) is not the per-packet path
	s.txMu.Unlock()
	if n := testing.AllocsPerRun(200, func() { idx += 2; s.tick(idx) }); n != 0 {
		t.Errorf("send: allocs = %v", n)
	}
	s.StopPlay() // keep-alive: silence frames, then comfort noise
	if n := testing.AllocsPerRun(200, func() { idx += 2; s.tick(idx) }); n != 0 {
		t.Errorf("keep-alive (silence): allocs = %v", n)
	}
	s.txMu.Lock()
	s.txCN = 13
	s.txMu.Unlock()
	if n := testing.AllocsPerRun(200, func() { idx += 2; s.tick(idx) }); n != 0 {
		t.Errorf("keep-alive (comfort noise): allocs = %v", n)
	}
	pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: make([]byte, 160)}).Marshal()
	from := p.addr().AddrPort()
	var seq uint16
	now := time.Now()
	if n := testing.AllocsPerRun(200, func() {
		seq++
		pkt[2], pkt[3] = byte(seq>>8), byte(seq)
		s.handlePacket(pkt, from, now)
	}); n != 0 {
		t.Errorf("receive: allocs = %v", n)
	}
}
