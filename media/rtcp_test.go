package media

import (
	"net"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

func mustRTCP(t testing.TB, pkts ...rtcp.Packet) []byte {
	t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rrFrom(ssrc uint32, blocks ...rtcp.ReceptionReport) rtcp.Packet {
	return &rtcp.ReceiverReport{SSRC: ssrc, Reports: blocks}
}

// rtcpEngine is a test engine whose sessions report every ~200 ms.
func rtcpEngine(t *testing.T) *Engine {
	e := newTestEngine(t)
	e.rtcpMean = 200 * time.Millisecond
	return e
}

// rtcpPeer is the far end's RTCP socket.
type rtcpPeer struct {
	t    *testing.T
	conn *net.UDPConn
}

func newRTCPCall(t *testing.T, e *Engine, cfg SessionConfig) (*Session, *peer, *rtcpPeer) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cfg.RTCPRemote = c.LocalAddr().(*net.UDPAddr) // as from a=rtcp
	s, p := newCall(t, e, cfg)
	return s, p, &rtcpPeer{t: t, conn: c}
}

// read returns the next compound RTCP packet, nil after the timeout.
func (r *rtcpPeer) read(timeout time.Duration) ([]rtcp.Packet, time.Time) {
	return readRTCP(r.t, r.conn, timeout)
}

func readRTCP(t *testing.T, c *net.UDPConn, timeout time.Duration) ([]rtcp.Packet, time.Time) {
	t.Helper()
	buf := make([]byte, 2048)
	deadline := time.Now().Add(timeout)
	for {
		c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		if err != nil {
			return nil, time.Time{}
		}
		if !isRTCP(buf[:n]) {
			continue // RTP on a multiplexed port
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			t.Fatalf("our RTCP does not parse: %v", err)
		}
		return pkts, time.Now()
	}
}

func (r *rtcpPeer) send(s *Session, pkts ...rtcp.Packet) {
	if _, err := r.conn.WriteToUDP(mustRTCP(r.t, pkts...), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.LocalPort() + 1}); err != nil {
		r.t.Fatal(err)
	}
}

// blockFor returns the report block about ssrc in a compound packet.
func blockFor(pkts []rtcp.Packet, ssrc uint32) (*rtcp.ReceptionReport, *rtcp.SenderReport) {
	var sr *rtcp.SenderReport
	var blocks []rtcp.ReceptionReport
	switch p := pkts[0].(type) {
	case *rtcp.SenderReport:
		sr, blocks = p, p.Reports
	case *rtcp.ReceiverReport:
		blocks = p.Reports
	}
	for i := range blocks {
		if blocks[i].SSRC == ssrc {
			return &blocks[i], sr
		}
	}
	return nil, sr
}

func TestRTCPReports(t *testing.T) {
	checkGoroutines(t)
	e := rtcpEngine(t)
	s, p, rp := newRTCPCall(t, e, SessionConfig{Codec: PCMU})
	// 30 packets, 2 of them lost (110, 111), arriving in a burst: jitter.
	for seq := uint16(100); seq < 130; seq++ {
		if seq != 110 && seq != 111 {
			p.send(0, seq, uint32(seq)*160, make([]byte, 160))
		}
	}
	waitFor(t, "audio", func() bool { return s.Stats().PacketsReceived == 28 })

	// Our report: SR (we send keep-alive), CNAME, a block about the caller.
	var block *rtcp.ReceptionReport
	var sr *rtcp.SenderReport
	var srAt time.Time
	for block == nil || sr == nil || block.LastSequenceNumber != 129 {
		pkts, at := rp.read(3 * time.Second)
		if pkts == nil {
			t.Fatal("no RTCP report with the caller's block")
		}
		if len(pkts) < 2 {
			t.Fatalf("not a compound packet: %v", pkts)
		}
		if sdes, ok := pkts[1].(*rtcp.SourceDescription); !ok || len(sdes.Chunks) != 1 || sdes.Chunks[0].Items[0].Type != rtcp.SDESCNAME || sdes.Chunks[0].Items[0].Text == "" {
			t.Fatalf("second packet is not an SDES CNAME: %v", pkts[1])
		}
		block, sr = blockFor(pkts, 0xCAFE)
		srAt = at
	}
	if sr.SSRC != s.ssrc || sr.PacketCount == 0 || sr.OctetCount == 0 {
		t.Fatalf("sender report %+v", sr)
	}
	if block.TotalLost != 2 || block.Jitter == 0 || block.LastSenderReport != 0 {
		t.Fatalf("report block %+v", block)
	}
	if st := s.Stats(); st.Jitter == 0 || st.Jitter < st.JitterMax/16 {
		t.Fatalf("jitter %v max %v", st.Jitter, st.JitterMax)
	}

	// The caller's SR: our next block carries its LSR and our delay.
	callerNTP := ntpTime(time.Now())
	rp.send(s, &rtcp.SenderReport{SSRC: 0xCAFE, NTPTime: callerNTP, PacketCount: 28}, rtcp.NewCNAMESourceDescription(0xCAFE, "caller"))
	for {
		pkts, _ := rp.read(3 * time.Second)
		if pkts == nil {
			t.Fatal("no report after the caller's SR")
		}
		if b, _ := blockFor(pkts, 0xCAFE); b != nil && b.LastSenderReport != 0 {
			if b.LastSenderReport != uint32(callerNTP>>16) || b.Delay > 5<<16 {
				t.Fatalf("LSR %x (want %x), DLSR %d", b.LastSenderReport, uint32(callerNTP>>16), b.Delay)
			}
			break
		}
	}

	// The caller's RR about our stream: 300 ms after our SR it says it held
	// it for 100 ms, so the round trip is at least 200 ms.
	time.Sleep(300*time.Millisecond - time.Since(srAt))
	rp.send(s, rrFrom(0xCAFE, rtcp.ReceptionReport{
		SSRC: s.ssrc, FractionLost: 64, TotalLost: 5, LastSequenceNumber: 1000, Jitter: 80,
		LastSenderReport: uint32(sr.NTPTime >> 16), Delay: 100 << 16 / 1000,
	}))
	waitFor(t, "the caller's report", func() bool { return s.Stats().RemoteReports > 0 })
	st := s.Stats()
	if st.RTT < 200*time.Millisecond || st.RTT > 1200*time.Millisecond || st.RTTMax != st.RTT {
		t.Errorf("RTT %v (max %v), want 200 ms and a little", st.RTT, st.RTTMax)
	}
	if st.RemoteJitter != 10*time.Millisecond || st.RemoteLost != 5 || st.RemoteFractionLost != 0.25 {
		t.Errorf("remote quality %v %d %v", st.RemoteJitter, st.RemoteLost, st.RemoteFractionLost)
	}

	// Garbage, and RTCP from another address, are dropped.
	dropped := st.RTCPDropped
	rp.conn.WriteToUDP([]byte{0x80, 0xc9, 0, 7, 1, 2}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.LocalPort() + 1})
	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	stranger.WriteToUDP(mustRTCP(t, &rtcp.Goodbye{Sources: []uint32{0xCAFE}}), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.LocalPort() + 1})
	waitFor(t, "drops", func() bool { return s.Stats().RTCPDropped == dropped+2 })
	if s.Stats().RemoteBye {
		t.Fatal("a stranger's BYE was believed")
	}
	rp.send(s, rrFrom(0xCAFE), &rtcp.Goodbye{Sources: []uint32{0xCAFE}})
	waitFor(t, "BYE", func() bool { return s.Stats().RemoteBye })

	// Our BYE at the end.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for {
		pkts, _ := rp.read(time.Second)
		if pkts == nil {
			t.Fatal("no BYE at close")
		}
		if bye, ok := pkts[len(pkts)-1].(*rtcp.Goodbye); ok {
			if len(bye.Sources) != 1 || bye.Sources[0] != s.ssrc {
				t.Fatalf("BYE %+v", bye)
			}
			break
		}
	}
}

// TestRTCPBetweenSessions: two sessions talk to each other; each parses
// the other's reports about its own stream.
func TestRTCPBetweenSessions(t *testing.T) {
	checkGoroutines(t)
	e := rtcpEngine(t)
	a, err := e.NewSession(SessionConfig{Codec: PCMA})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := e.NewSession(SessionConfig{Codec: PCMA, Remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: a.LocalPort()}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Update(SessionConfig{Codec: PCMA, Remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: b.LocalPort()}}); err != nil {
		t.Fatal(err)
	}
	a.Play(Tone(400, 3*time.Second, 0.3))
	b.Record(discard{})
	waitFor(t, "reports both ways", func() bool {
		sa, sb := a.Stats(), b.Stats()
		return sa.RemoteReports >= 2 && sb.RemoteReports >= 2 && sa.RTCPReceived >= 2 && sb.RTCPReceived >= 2
	})
	sa, sb := a.Stats(), b.Stats()
	if sa.RemoteLost != 0 || sb.RemoteLost != 0 || sa.RTCPDropped != 0 || sb.RTCPDropped != 0 || sa.PacketsRejected != 0 {
		t.Fatalf("a %+v\nb %+v", sa, sb)
	}
	if sb.PacketsReceived == 0 || sb.KeepAliveSent == 0 {
		t.Fatalf("b %+v", sb)
	}
}

func TestRTCPMux(t *testing.T) {
	checkGoroutines(t)
	e := rtcpEngine(t)
	s, p := newCall(t, e, SessionConfig{Codec: PCMU, CNPayload: 13, RTCPMux: true})
	pkts, _ := readRTCP(t, p.conn, 3*time.Second)
	if pkts == nil {
		t.Fatal("no RTCP on the RTP port")
	}
	if sr, ok := pkts[0].(*rtcp.SenderReport); !ok || sr.SSRC != s.ssrc {
		t.Fatalf("first packet %v", pkts[0])
	}
	// The caller's RTCP on our RTP port is parsed, not taken for audio.
	p.send(0, 1, 160, make([]byte, 160))
	if _, err := p.conn.WriteToUDP(mustRTCP(t, rrFrom(0xCAFE, rtcp.ReceptionReport{SSRC: s.ssrc, TotalLost: 3})), p.to); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "report", func() bool { return s.Stats().RemoteReports == 1 })
	if st := s.Stats(); st.RemoteLost != 3 || st.PacketsDropped != 0 || st.PacketsReceived != 1 || st.RTCPReceived != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestInactivity(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	inactive := func(s *Session, within time.Duration) bool {
		select {
		case <-s.Inactive():
			return true
		case <-time.After(within):
			return false
		}
	}
	t.Run("silent caller", func(t *testing.T) {
		s, _ := newCall(t, e, SessionConfig{Codec: PCMU, RTPTimeout: 300 * time.Millisecond})
		if !inactive(s, 3*time.Second) {
			t.Fatal("not inactive")
		}
	})
	t.Run("off", func(t *testing.T) {
		s, _ := newCall(t, e, SessionConfig{Codec: PCMU})
		if inactive(s, 500*time.Millisecond) {
			t.Fatal("inactive with the timeout off")
		}
	})
	for _, kind := range []string{"rtp", "rtcp"} {
		t.Run(kind+" keeps it alive", func(t *testing.T) {
			s, p, rp := newRTCPCall(t, e, SessionConfig{Codec: PCMU, RTPTimeout: 400 * time.Millisecond})
			p.send(0, 1, 160, make([]byte, 160)) // the caller's SSRC is known
			for i := range 12 {
				if kind == "rtp" {
					p.send(0, 2+uint16(i), 320+uint32(i)*160, make([]byte, 160))
				} else {
					rp.send(s, rrFrom(0xCAFE))
				}
				if inactive(s, 100*time.Millisecond) {
					t.Fatalf("inactive after %d packets", i)
				}
			}
			if !inactive(s, 3*time.Second) {
				t.Fatal("not inactive after the caller stopped")
			}
		})
	}
}

// TestRxQuality checks the RFC 3550 A.8 jitter and the A.1/A.3 counts.
func TestRxQuality(t *testing.T) {
	var q rxQuality
	steps := []struct {
		seq         uint16
		ts, arrival uint32
		jitter16    uint32
	}{
		{65534, 0, 1000, 0},
		{65535, 160, 1160, 0},    // transit constant
		{0, 320, 1480, 160},      // 160 late: J += (160-J)/16
		{1, 480, 1480, 310},      // back on time
		{2, 640, 1640, 310 - 19}, // D = 0
	}
	for i, s := range steps {
		q.update(0xCAFE, s.seq)
		q.arrive(s.ts, s.arrival)
		if q.jitter != s.jitter16 {
			t.Fatalf("step %d: jitter×16 = %d, want %d", i, q.jitter, s.jitter16)
		}
	}
	if q.extMax() != 65536+2 || q.base != 65534 || q.received != 5 || q.extMax()-q.base+1 != 5 {
		t.Fatalf("counts %+v ext %d", q, q.extMax())
	}
	q.update(0xBEEF, 9) // a new SSRC starts over
	if q.received != 1 || q.base != 9 || q.jitter != 0 {
		t.Fatalf("after a new SSRC %+v", q)
	}
}

// TestRTCPBuildParse: our report parses, and its numbers follow A.3.
func TestRTCPBuildParse(t *testing.T) {
	var r rtcpState
	now := time.Unix(1_800_000_000, 0)
	q := rxQuality{started: true, ssrc: 7, base: 100, maxSeq: 199, received: 90, jitter: 16 * 40}
	b, err := r.build(1, "x@y", q, 0, 0, 0, now, false)
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	rr, ok := pkts[0].(*rtcp.ReceiverReport)
	if !ok || len(rr.Reports) != 1 || len(pkts) != 2 {
		t.Fatalf("nothing sent: want RR + SDES, got %v", pkts)
	}
	if blk := rr.Reports[0]; blk.SSRC != 7 || blk.TotalLost != 10 || blk.FractionLost != 10*256/100 || blk.LastSequenceNumber != 199 || blk.Jitter != 40 {
		t.Fatalf("block %+v", blk)
	}
	// Next interval: 50 more expected, all received: fraction 0; we sent: SR; BYE.
	q.maxSeq, q.received = 249, 140
	b, _ = r.build(1, "x@y", q, 10, 1600, 12345, now, true)
	pkts, _ = rtcp.Unmarshal(b)
	sr, ok := pkts[0].(*rtcp.SenderReport)
	if !ok || sr.PacketCount != 10 || sr.OctetCount != 1600 || sr.RTPTime != 12345 || sr.NTPTime != ntpTime(now) {
		t.Fatalf("SR %v", pkts[0])
	}
	if blk := sr.Reports[0]; blk.FractionLost != 0 || blk.TotalLost != 10 {
		t.Fatalf("block %+v", blk)
	}
	if _, ok := pkts[2].(*rtcp.Goodbye); !ok {
		t.Fatalf("no BYE: %v", pkts)
	}
}

// TestNTPTime: the NTP epoch is 1900 (RFC 3550 §4).
func TestNTPTime(t *testing.T) {
	if got := ntpTime(time.Unix(0, 500_000_000)); got != 2208988800<<32|1<<31 {
		t.Fatalf("%x", got)
	}
}
