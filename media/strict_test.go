package media

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestSourceGate walks strict RTP's rule through packet sequences with a
// synthetic clock.
func TestSourceGate(t *testing.T) {
	caller := netip.MustParseAddrPort("10.0.0.1:4000")
	other := netip.MustParseAddrPort("10.0.0.1:4002")
	far := netip.MustParseAddrPort("192.0.2.9:5000")
	type pkt struct {
		at   time.Duration // since the gate was set
		from netip.AddrPort
		ssrc uint32
		seq  uint16
		dtmf bool
		want gateVerdict
	}
	const R, A, L = gateReject, gateAccept, gateLearnt
	// run repeats one source's consecutive packets every 20 ms from at.
	run := func(at time.Duration, from netip.AddrPort, ssrc uint32, seq0 uint16, n int, want ...gateVerdict) []pkt {
		var ps []pkt
		for i := range n {
			w := want[min(i, len(want)-1)]
			ps = append(ps, pkt{at + time.Duration(i)*20*time.Millisecond, from, ssrc, seq0 + uint16(i), false, w})
		}
		return ps
	}
	cases := []struct {
		name string
		sdp  netip.AddrPort
		n    int
		pkts []pkt
	}{
		{"sdp source accepted from its first packet", caller, 4, run(0, caller, 1, 100, 5, A)},
		{"injector before the caller's first packet", caller, 4, slices.Concat(
			run(0, other, 9, 1, 20, R),
			run(500*time.Millisecond, caller, 1, 100, 3, A))},
		{"injector while the caller talks", caller, 4, slices.Concat(
			run(0, caller, 1, 100, 1, A),
			run(10*time.Millisecond, far, 9, 1, 10, R),
			run(100*time.Millisecond, caller, 1, 101, 1, A))},
		{"injector during a short pause", caller, 4, slices.Concat(
			run(0, caller, 1, 100, 1, A),
			run(time.Second, far, 9, 1, 10, R),
			run(1900*time.Millisecond, caller, 1, 101, 1, A))},
		{"new source learnt after 4 packets while the caller is quiet", caller, 4, slices.Concat(
			run(0, caller, 1, 100, 1, A),
			run(3*time.Second, other, 7, 50, 5, R, R, R, L, A),
			run(3200*time.Millisecond, caller, 1, 101, 2, R))},
		{"a sequence gap restarts the count", caller, 4, slices.Concat(
			run(0, caller, 1, 100, 1, A),
			run(3*time.Second, other, 7, 50, 3, R),
			run(3100*time.Millisecond, other, 7, 60, 4, R, R, R, L))},
		{"two candidates interleaved never reach 4", caller, 4, []pkt{
			{0, caller, 1, 100, false, A},
			{3 * time.Second, other, 7, 1, false, R}, {3 * time.Second, far, 8, 1, false, R},
			{3 * time.Second, other, 7, 2, false, R}, {3 * time.Second, far, 8, 2, false, R},
			{3 * time.Second, other, 7, 3, false, R}, {3 * time.Second, far, 8, 3, false, R},
			{3 * time.Second, other, 7, 4, false, R}, {3 * time.Second, far, 8, 4, false, R},
		}},
		{"second SSRC from the caller's address while it talks", caller, 4, []pkt{
			{0, caller, 1, 100, false, A}, {0, caller, 2, 500, false, R},
			{20 * time.Millisecond, caller, 1, 101, false, A}, {20 * time.Millisecond, caller, 2, 501, false, R},
			{40 * time.Millisecond, caller, 1, 102, false, A}, {40 * time.Millisecond, caller, 2, 502, false, R},
			{60 * time.Millisecond, caller, 1, 103, false, A}, {60 * time.Millisecond, caller, 2, 503, false, R},
			{80 * time.Millisecond, caller, 1, 104, false, A}, {80 * time.Millisecond, caller, 2, 504, false, R},
		}},
		{"clean SSRC switch without a pause", caller, 4, slices.Concat(
			run(0, caller, 1, 100, 10, A),
			run(200*time.Millisecond, caller, 2, 7000, 5, R, R, R, L, A),
			run(300*time.Millisecond, caller, 1, 110, 1, R))},
		{"burst of a new SSRC right after the old: learnt once the old is quiet", caller, 4, slices.Concat(
			run(0, caller, 1, 100, 1, A),
			[]pkt{{time.Millisecond, caller, 2, 1, false, R}, {time.Millisecond, caller, 2, 2, false, R},
				{time.Millisecond, caller, 2, 3, false, R}, {2 * time.Millisecond, caller, 2, 4, false, R},
				{70 * time.Millisecond, caller, 2, 5, false, L}})},
		{"another address needs the long quiet even after a long run", caller, 4, slices.Concat(
			run(0, caller, 1, 100, 1, A),
			run(100*time.Millisecond, other, 7, 1, 10, R),
			run(2100*time.Millisecond, other, 7, 11, 1, L))},
		{"second SSRC switches after the first went quiet", caller, 4, slices.Concat(
			run(0, caller, 1, 100, 1, A),
			run(3*time.Second, caller, 2, 500, 5, R, R, R, L, A),
			run(3200*time.Millisecond, caller, 1, 101, 1, R))},
		{"telephone-event of another SSRC from the caller", caller, 4, []pkt{
			{0, caller, 1, 100, false, A}, {10 * time.Millisecond, caller, 5, 7, true, A},
			{20 * time.Millisecond, caller, 1, 101, false, A},
		}},
		{"no SDP address: learnt after 4 packets", netip.AddrPort{}, 4, run(0, caller, 1, 100, 6, R, R, R, L, A)},
		{"n = 1 learns at once when quiet", caller, 1, slices.Concat(
			run(0, caller, 1, 100, 1, A),
			run(2500*time.Millisecond, far, 3, 9, 2, L, A))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t0 := time.Unix(1000, 0)
			g := sourceGate{n: c.n}
			g.reset(c.sdp, t0)
			for i, p := range c.pkts {
				if got := g.check(p.from, p.ssrc, p.seq, !p.dtmf, t0.Add(p.at)); got != p.want {
					t.Fatalf("packet %d (%v ssrc %d seq %d at %v): verdict %d, want %d", i, p.from, p.ssrc, p.seq, p.at, got, p.want)
				}
			}
		})
	}
}

// TestStrictKeepAlivePayloads: comfort noise and telephone-event packets
// keep the caller's source, so an injector is not learnt during a long
// quiet period of audio; RTCP with the caller's SSRC does too.
func TestStrictKeepAlivePayloads(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	for _, kind := range []string{"cn", "dtmf", "rtcp"} {
		t.Run(kind, func(t *testing.T) {
			s, p := newCall(t, e, SessionConfig{Codec: PCMU, DTMFPayload: 101, CNPayload: 13})
			caller := p.addr().AddrPort()
			injector := netip.MustParseAddrPort("127.0.0.1:9")
			t0 := time.Now()
			b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 0xCAFE, SequenceNumber: 1}, Payload: make([]byte, 160)}).Marshal()
			s.handlePacket(b, caller, t0)
			seq, inj := uint16(2), uint16(100)
			// 6 s of keep-alive from the caller every 150 ms, and a full
			// stream from the injector.
			for at := 150 * time.Millisecond; at < 6*time.Second; at += 150 * time.Millisecond {
				now := t0.Add(at)
				switch kind {
				case "cn":
					b, _ = (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 13, SSRC: 0xCAFE, SequenceNumber: seq}, Payload: []byte{60}}).Marshal()
					s.handlePacket(b, caller, now)
				case "dtmf":
					b, _ = (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SSRC: 0xCAFE, SequenceNumber: seq}, Payload: ev(1, false, 160)}).Marshal()
					s.handlePacket(b, caller, now)
				case "rtcp":
					b = mustRTCP(t, rrFrom(0xCAFE))
					s.handleRTCP(b, netip.AddrPortFrom(caller.Addr(), caller.Port()+1), now, false)
				}
				seq++
				for range 8 {
					b, _ = (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 0xBAD, SequenceNumber: inj}, Payload: make([]byte, 160)}).Marshal()
					s.handlePacket(b, injector, now)
					inj++
				}
			}
			s.rxMu.Lock()
			acc := s.gate.acc
			s.rxMu.Unlock()
			s.txMu.Lock()
			remote := s.remote
			s.txMu.Unlock()
			if acc != caller || remote != caller {
				t.Fatalf("accepted %v, sending to %v; want the caller %v", acc, remote, caller)
			}
			if st := s.Stats(); st.PacketsRejected != uint64(inj-100) {
				t.Fatalf("rejected %d of %d", st.PacketsRejected, inj-100)
			}
		})
	}
}

// TestStrictRTPInjection: an injector sending from another port (and
// another address) before the caller's first packet and during a pause
// changes nothing in the recording, frame for frame, and receives nothing.
func TestStrictRTPInjection(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	s, p := newCall(t, e, SessionConfig{Codec: PCMU, DTMFPayload: 101})
	var injectors []*peer
	for _, ip := range []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2)} {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		injectors = append(injectors, &peer{t: t, conn: c, to: p.to, hdr: rtp.Header{Version: 2, SSRC: 0xBAD}})
	}
	var sink syncSink
	s.Record(&sink)
	loud := make([]byte, 160)
	for i := range loud {
		loud[i] = byte(i) // a loud buzz
	}
	inject := func(seq0 uint16, n int) {
		for i := range n {
			for _, in := range injectors {
				in.send(0, seq0+uint16(i), uint32(seq0+uint16(i))*160, loud)
			}
		}
	}
	inject(1, 10) // before the caller's first packet
	time.Sleep(50 * time.Millisecond)
	tone := Tone(500, time.Second, 0.4)
	enc := make([]byte, len(tone))
	PCMU.Encode(enc, tone)
	send := func(from, to int) {
		for i := from; i < to; i++ {
			p.send(0, 1000+uint16(i), 8000+uint32(i*160), enc[i*160:(i+1)*160])
			time.Sleep(2 * time.Millisecond)
		}
	}
	send(0, 25)
	time.Sleep(100 * time.Millisecond)
	inject(20, 10) // during a pause of the caller
	time.Sleep(400 * time.Millisecond)
	send(25, 50)
	waitFor(t, "packets", func() bool { st := s.Stats(); return st.PacketsReceived+st.PacketsRejected >= 50+40 })
	s.StopRecord()
	want := make([]int16, len(tone))
	PCMU.Decode(want, enc)
	sink.mu.Lock()
	got := sink.pcm
	sink.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("recording differs from the caller's audio: %d samples, want %d", len(got), len(want))
	}
	if st := s.Stats(); st.PacketsRejected != 40 || st.PacketsReceived != 50 {
		t.Fatalf("stats %+v", st)
	}
	s.Play(tone) // audio goes to the caller only
	if pkt, _ := p.read(time.Second); pkt == nil {
		t.Fatal("the caller got nothing")
	}
	for i, in := range injectors {
		if pkt, _ := in.read(300 * time.Millisecond); pkt != nil {
			t.Fatalf("injector %d received %+v", i, pkt.Header)
		}
	}
}

// TestStrictSecondSSRCNotMixed: a second stream from the caller's own
// address, interleaved with its audio, is not recorded.
func TestStrictSecondSSRCNotMixed(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	s, p := newCall(t, e, SessionConfig{Codec: PCMA})
	var sink syncSink
	s.Record(&sink)
	tone := Tone(700, 600*time.Millisecond, 0.4)
	enc := make([]byte, len(tone))
	PCMA.Encode(enc, tone)
	other := make([]byte, 160)
	for i := range other {
		other[i] = 0x55
	}
	for i := 0; i*160 < len(enc); i++ {
		p.hdr.SSRC = 0xCAFE
		p.send(8, 10+uint16(i), uint32(i*160), enc[i*160:(i+1)*160])
		p.hdr.SSRC = 0xF00D
		p.send(8, 3000+uint16(i), 777+uint32(i*160), other)
	}
	n := len(enc) / 160
	waitFor(t, "packets", func() bool { st := s.Stats(); return st.PacketsReceived+st.PacketsRejected >= uint64(2*n) })
	s.StopRecord()
	want := make([]int16, len(tone))
	PCMA.Decode(want, enc)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if !slices.Equal(sink.pcm, want) {
		t.Fatalf("recorded %d samples, want the first SSRC's %d exactly", len(sink.pcm), len(want))
	}
	if st := s.Stats(); st.PacketsRejected != uint64(n) {
		t.Fatalf("rejected %d, want %d", st.PacketsRejected, n)
	}
}

// TestPortsRandom: ports are not handed out in order, and the RTCP port
// next to each is held too.
func TestPortsRandom(t *testing.T) {
	checkGoroutines(t)
	e, err := NewEngine(EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 34000, PortMax: 34999})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var ports []int
	for range 6 {
		s, err := e.NewSession(SessionConfig{Codec: PCMU})
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, s.LocalPort())
		if c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.LocalPort() + 1}); err == nil {
			c.Close()
			t.Fatalf("RTCP port %d not bound", s.LocalPort()+1)
		}
	}
	if slices.IsSorted(ports) {
		// 6 random picks of 500 come out sorted with probability 1/720;
		// in order from the bottom of the range, never.
		if ports[0] == 34000 && ports[5] == 34010 {
			t.Fatalf("ports handed out in order: %v", ports)
		}
	}
}

// TestStrictSSRCSwitch: a caller that restarts its stream with a new SSRC
// (and new sequence and timestamp bases) without a pause is followed, and
// nothing of the new stream is lost: the packets that taught it are
// replayed.
func TestStrictSSRCSwitch(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	s, p := newCall(t, e, SessionConfig{Codec: PCMU, DTMFPayload: 101})
	var sink syncSink
	s.Record(&sink)
	tone := Tone(450, time.Second, 0.4)
	enc := make([]byte, len(tone))
	PCMU.Encode(enc, tone)
	for i := 0; i < 50; i++ {
		seq, ts := 100+uint16(i), 5000+uint32(i*160)
		if i >= 25 {
			p.hdr.SSRC = 0xD00D
			seq, ts = 40000+uint16(i), 900000+uint32(i*160)
		}
		p.send(0, seq, ts, enc[i*160:(i+1)*160])
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, "packets", func() bool { return s.Stats().PacketsReceived >= 50 })
	s.StopRecord()
	want := make([]int16, len(tone))
	PCMU.Decode(want, enc)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if !slices.Equal(sink.pcm, want) {
		t.Fatalf("recorded %d samples, want both streams' %d exactly", len(sink.pcm), len(want))
	}
	if st := s.Stats(); st.PacketsRejected != 0 || st.PacketsReceived != 50 {
		t.Fatalf("stats %+v", st)
	}
}
