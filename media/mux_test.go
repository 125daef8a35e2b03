package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func newMuxEngine(t *testing.T) *Engine {
	t.Helper()
	e, err := NewEngine(EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 32000, PortMax: 32999, Mux: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// TestMuxManyCalls: 40 calls on the shared port at once, each caller on
// its own socket sending its own audio: every recording is exactly its
// caller's audio, and every caller receives its own call's playback
// (its SSRC, its tone) and nothing of another call.
func TestMuxManyCalls(t *testing.T) {
	checkGoroutines(t)
	e := newMuxEngine(t)
	const calls, frames = 40, 50
	type leg struct {
		s    *Session
		p    *peer
		sink *syncSink
		want []int16
	}
	legs := make([]leg, calls)
	for i := range legs {
		s, p := newCall(t, e, SessionConfig{Codec: PCMU, DTMFPayload: 101})
		if s.LocalPort() != e.mux.port {
			t.Fatalf("session port %d, shared port %d", s.LocalPort(), e.mux.port)
		}
		p.hdr.SSRC = uint32(0x1000 + i)
		tone := Tone(300+float64(i)*37, frames*20*time.Millisecond, 0.3)
		enc := make([]byte, len(tone))
		PCMU.Encode(enc, tone)
		want := make([]int16, len(tone))
		PCMU.Decode(want, enc)
		legs[i] = leg{s: s, p: p, sink: &syncSink{}, want: want}
		s.Record(legs[i].sink)
		s.Play(Tone(1000+float64(i)*10, time.Second, 0.2))
	}
	var wg sync.WaitGroup
	for i := range legs {
		wg.Add(1)
		go func(l leg) {
			defer wg.Done()
			enc := make([]byte, len(l.want))
			PCMU.Encode(enc, l.want)
			for f := range frames {
				l.p.send(uint8(PCMU), uint16(f), uint32(f*160), enc[f*160:(f+1)*160])
				time.Sleep(time.Millisecond)
			}
		}(legs[i])
	}
	wg.Wait()
	for i, l := range legs {
		waitFor(t, "packets", func() bool { return l.s.Stats().PacketsReceived >= frames })
		l.s.StopRecord()
		l.sink.mu.Lock()
		got := l.sink.pcm
		l.sink.mu.Unlock()
		if len(got) != len(l.want) {
			t.Fatalf("call %d: recorded %d samples, want %d", i, len(got), len(l.want))
		}
		for k := range got {
			if got[k] != l.want[k] {
				t.Fatalf("call %d: sample %d = %d, want %d (another call's audio?)", i, k, got[k], l.want[k])
			}
		}
		// The caller gets its call's RTP from the shared port, one SSRC.
		pkt, _ := l.p.read(2 * time.Second)
		if pkt == nil || pkt.SSRC != l.s.ssrc {
			t.Fatalf("call %d: no playback packet with its SSRC %08x (got %+v)", i, l.s.ssrc, pkt)
		}
	}
	if n := e.mux.unmatched.Load(); n != 0 {
		t.Fatalf("%d datagrams unmatched", n)
	}
}

// TestMuxSharedAddress: two calls from one socket (a media relay, the
// load generator) are told apart by their SSRC from the SDP.
func TestMuxSharedAddress(t *testing.T) {
	checkGoroutines(t)
	e := newMuxEngine(t)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var sinks [2]syncSink
	var sess [2]*Session
	for i := range sess {
		s, err := e.NewSession(SessionConfig{Codec: PCMU, Remote: c.LocalAddr().(*net.UDPAddr), RemoteSSRC: uint32(100 + i)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.Record(&sinks[i])
		sess[i] = s
	}
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: e.mux.port}
	for f := range 10 {
		for i := range sess {
			b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: uint32(100 + i), SequenceNumber: uint16(f), Timestamp: uint32(f * 160)},
				Payload: bytesOf(byte(0x10+i), 160)}).Marshal()
			_, _ = c.WriteToUDP(b, to)
		}
	}
	// And a third SSRC nobody announced: dropped, not guessed into a call.
	b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 999, SequenceNumber: 1}, Payload: bytesOf(0x55, 160)}).Marshal()
	_, _ = c.WriteToUDP(b, to)
	waitFor(t, "packets", func() bool {
		return sess[0].Stats().PacketsReceived >= 10 && sess[1].Stats().PacketsReceived >= 10 && e.mux.unmatched.Load() >= 1
	})
	for i, s := range sess {
		s.StopRecord()
		want := make([]int16, 1)
		PCMU.Decode(want, []byte{byte(0x10 + i)})
		for k, v := range sinks[i].pcm {
			if v != want[0] {
				t.Fatalf("call %d sample %d = %d, want %d", i, k, v, want[0])
			}
		}
		if len(sinks[i].pcm) != 1600 {
			t.Fatalf("call %d: %d samples, want 1600", i, len(sinks[i].pcm))
		}
	}
}

func bytesOf(v byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = v
	}
	return b
}

// TestMuxStrangerAndClose: a packet from an unknown address with an
// unknown SSRC reaches nobody; a closed call's packets neither; RTCP on
// the shared RTCP port reaches its call.
func TestMuxStrangerAndClose(t *testing.T) {
	checkGoroutines(t)
	e := newMuxEngine(t)
	s, p := newCall(t, e, SessionConfig{Codec: PCMU})
	var sink syncSink
	s.Record(&sink)
	stranger := newPeer(t, s)
	stranger.hdr.SSRC = 0xBAD
	stranger.send(0, 1, 0, bytesOf(0x20, 160))
	p.send(0, 1, 0, bytesOf(0x30, 160))
	waitFor(t, "packets", func() bool { return s.Stats().PacketsReceived == 1 && e.mux.unmatched.Load() == 1 })

	// RTCP receiver report from the caller's RTP port + 1.
	rc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p.addr().Port + 1})
	if err == nil {
		defer rc.Close()
		rr := make([]byte, 8)
		rr[0], rr[1] = 0x80, 201 // RR, no report blocks
		binary.BigEndian.PutUint16(rr[2:], 1)
		binary.BigEndian.PutUint32(rr[4:], p.hdr.SSRC)
		_, _ = rc.WriteToUDP(rr, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: e.mux.port + 1})
		waitFor(t, "rtcp", func() bool { return s.Stats().RTCPReceived == 1 })
	}

	s.Close()
	p.send(0, 2, 160, bytesOf(0x30, 160))
	waitFor(t, "unmatched", func() bool { return e.mux.unmatched.Load() == 2 })
	if len(sink.pcm) != 160 {
		t.Fatalf("recorded %d samples, want 160 (nothing after Close)", len(sink.pcm))
	}
	e.mux.mu.RLock()
	defer e.mux.mu.RUnlock()
	if len(e.mux.byAddr) != 0 || len(e.mux.bySSRC) != 0 {
		t.Fatalf("closed call still tracked: %v %v", e.mux.byAddr, e.mux.bySSRC)
	}
}

// TestMuxAddressChange: the caller's RTP moves to another address with
// the same SSRC (a NAT rebinding): found by its SSRC, learnt by strict
// RTP once the old address is quiet, recorded without a gap.
func TestMuxAddressChange(t *testing.T) {
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("waits for strict RTP's 2 s quiet period")
	}
	checkGoroutines(t)
	e := newMuxEngine(t)
	s, p := newCall(t, e, SessionConfig{Codec: PCMU})
	var sink syncSink
	s.Record(&sink)
	for f := range 5 {
		p.send(0, uint16(f), uint32(f*160), bytesOf(0x40, 160))
	}
	waitFor(t, "first packets", func() bool { return s.Stats().PacketsReceived == 5 })
	time.Sleep(strictQuiet + 100*time.Millisecond)
	moved := newPeer(t, s)
	moved.hdr.SSRC = p.hdr.SSRC
	for f := 5; f < 15; f++ {
		moved.send(0, uint16(f), uint32(f*160), bytesOf(0x40, 160))
	}
	waitFor(t, "moved packets", func() bool { return s.Stats().PacketsReceived == 15 })
	s.StopRecord()
	if len(sink.pcm) != 15*160 {
		t.Fatalf("recorded %d samples, want %d", len(sink.pcm), 15*160)
	}
	// Replies follow the caller to its new address.
	s.Play(Tone(800, 200*time.Millisecond, 0.3))
	if pkt, _ := moved.read(2 * time.Second); pkt == nil {
		t.Fatal("no RTP at the new address")
	}
	if got := e.mux.lookup(moved.addr().AddrPort(), 0, false); got != s {
		t.Fatal("new address not tracked")
	}
}

// TestMuxPerPacketNoAlloc: the shared port keeps 0 allocations per
// packet: queueing and the batched send, and the receive dispatch.
func TestMuxPerPacketNoAlloc(t *testing.T) {
	checkGoroutines(t)
	e := newMuxEngine(t)
	s, p := newCall(t, e, SessionConfig{Codec: PCMU})
	s.Record(discard{})
	s.Play(Silence(time.Hour))
	idx := uint64(1) << 40
	s.tick(idx)
	e.mux.flush()
	s.txMu.Lock()
	s.rtcpNext = math.MaxUint64
	s.txMu.Unlock()
	if n := testing.AllocsPerRun(200, func() { idx += 2; s.tick(idx); e.mux.flush() }); n != 0 {
		t.Errorf("send: allocs = %v", n)
	}
	pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: make([]byte, 160)}).Marshal()
	from := p.addr().AddrPort()
	var seq uint16
	now := time.Now()
	for _, sink := range []FrameSink{discard{}, discardCodes{}} {
		s.Record(sink)
		if n := testing.AllocsPerRun(200, func() {
			seq++
			pkt[2], pkt[3] = byte(seq>>8), byte(seq)
			e.mux.dispatch(pkt, from, now, false)
		}); n != 0 {
			t.Errorf("receive to %T: allocs = %v", sink, n)
		}
	}
}

// discardCodes takes frames as codes and drops them.
type discardCodes struct{ discard }

func (discardCodes) WriteG711(Codec, []byte) bool { return true }

// blockingSink holds the shared reader in WriteFrame until released.
type blockingSink struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingSink) WriteFrame([]int16) {
	b.once.Do(func() {
		close(b.entered)
		<-b.release
	})
}

// TestMuxDrainOnStop: a call that stops recording (the caller's BYE)
// while the shared reader is behind still records every packet that
// arrived before: StopRecord waits for the reader to reach them.
func TestMuxDrainOnStop(t *testing.T) {
	checkGoroutines(t)
	e := newMuxEngine(t)
	a, pa := newCall(t, e, SessionConfig{Codec: PCMU})
	stall := &blockingSink{entered: make(chan struct{}), release: make(chan struct{})}
	a.Record(stall)
	b, pb := newCall(t, e, SessionConfig{Codec: PCMU})
	pb.hdr.SSRC = 0xB0B
	var sink syncSink
	b.Record(&sink)
	for f := range 10 {
		pa.send(0, uint16(f), uint32(f*160), bytesOf(0x11, 160))
	}
	<-stall.entered // the reader is stuck in call A's recording
	for f := range 20 {
		pb.send(0, uint16(f), uint32(f*160), bytesOf(0x22, 160))
	}
	time.Sleep(50 * time.Millisecond) // B's packets wait in the socket
	stopped := make(chan struct{})
	go func() { b.StopRecord(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("StopRecord returned while the reader had not reached the call's packets")
	case <-time.After(100 * time.Millisecond):
	}
	close(stall.release)
	<-stopped
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.pcm) != 20*160 {
		t.Fatalf("recorded %d samples, want %d: the last packets were cut", len(sink.pcm), 20*160)
	}
}

// TestMuxSharedAddressChanges: among several calls at one address the SSRC picks the
// call, through every change the maps must follow: an SSRC claimed
// twice (the first keeps it, the second takes over when the first
// ends), a caller changing its SSRC, a call moving to an address of its
// own.
func TestMuxSharedAddressChanges(t *testing.T) {
	m := &mux{byAddr: map[netip.AddrPort][]*Session{}, bySSRC: map[uint32]*Session{}}
	a := netip.MustParseAddrPort("192.0.2.1:4000")
	b := netip.MustParseAddrPort("192.0.2.2:4000")
	s1, s2, s3 := &Session{}, &Session{}, &Session{}
	for _, s := range []*Session{s1, s2, s3} {
		m.track(s, a, netip.AddrPort{})
	}
	m.bindSSRC(s1, 100)
	m.bindSSRC(s2, 200)
	m.bindSSRC(s3, 100) // the same SSRC at the same address: s1 keeps it
	want := func(step string, at netip.AddrPort, ssrc uint32, w *Session) {
		t.Helper()
		if got := m.lookup(at, ssrc, false); got != w {
			t.Errorf("%s: lookup(%v, %d) = %p, want %p", step, at, ssrc, got, w)
		}
	}
	want("start", a, 100, s1)
	want("start", a, 200, s2)
	want("start", a, 999, nil)
	m.remove(s1)
	want("s1 ended", a, 100, s3)
	m.bindSSRC(s2, 300)
	want("s2 changed its SSRC", a, 300, s2)
	want("s2 changed its SSRC", a, 200, nil)
	m.track(s2, b, netip.AddrPort{})
	want("s2 moved", b, 300, s2)
	want("s2 moved: alone at the old address", a, 300, s3)
	m.remove(s3)
	m.remove(s2)
	if len(m.byAddr)+len(m.bySSRC) != 0 {
		t.Errorf("after every call ended: %d addresses, %d SSRCs left", len(m.byAddr), len(m.bySSRC))
	}
}

// TestSendContent: what a caller hears, on the shared port (packets built
// in the send batch) and on a port pair of its own (the packetizer's
// buffer): the playback's frames whole and in order, one talkspurt
// marker, then G.711 silence as keep-alive, sequence and timestamp
// running on throughout.
func TestSendContent(t *testing.T) {
	for _, mux := range []bool{true, false} {
		t.Run(fmt.Sprintf("mux=%v", mux), func(t *testing.T) {
			e, err := NewEngine(EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 32000, PortMax: 32999, Mux: mux})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			s, p := newCall(t, e, SessionConfig{Codec: PCMU})
			tone := Tone(600, 200*time.Millisecond, 0.3)
			want := make([]byte, len(tone))
			PCMU.Encode(want, tone)
			s.Play(tone)
			var got []byte
			var last *rtp.Packet
			markers, silent := 0, 0
			for silent < 3 {
				pkt, _ := p.read(2 * time.Second)
				if pkt == nil {
					t.Fatalf("no packet after %d bytes of the tone", len(got))
				}
				if last != nil && (pkt.SequenceNumber != last.SequenceNumber+1 || pkt.Timestamp != last.Timestamp+160) {
					t.Fatalf("seq %d ts %d after seq %d ts %d", pkt.SequenceNumber, pkt.Timestamp, last.SequenceNumber, last.Timestamp)
				}
				last = pkt
				if pkt.PayloadType != uint8(PCMU) || len(pkt.Payload) != 160 {
					t.Fatalf("packet PT %d, %d bytes", pkt.PayloadType, len(pkt.Payload))
				}
				if pkt.Marker {
					markers++
				}
				switch {
				case pkt.Marker || (len(got) > 0 && len(got) < len(want)):
					got = append(got, pkt.Payload...)
				case len(got) >= len(want):
					if !bytes.Equal(pkt.Payload, bytes.Repeat([]byte{0xFF}, 160)) {
						t.Fatalf("keep-alive after the tone is not silence: % x", pkt.Payload[:8])
					}
					silent++
				}
			}
			if !bytes.Equal(got, want) || markers != 1 {
				t.Fatalf("tone: %d bytes (equal %v), %d markers", len(got), bytes.Equal(got, want), markers)
			}
		})
	}
}
