package media

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// FuzzReceivePacket feeds arbitrary datagrams to a session's receive path
// (RTP, or RTCP multiplexed on the RTP port) from the caller's address and
// from another one, on a clock that moves 30 ms per packet so strict RTP's
// quiet periods come and go. Nothing may panic; a recording gets whole
// samples only.
func FuzzReceivePacket(f *testing.F) {
	e, err := NewEngine(EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 35000, PortMax: 35999})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	caller := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}
	s, err := e.NewSession(SessionConfig{Codec: PCMU, DTMFPayload: 101, CNPayload: 13, RTCPMux: true, Remote: caller})
	if err != nil {
		f.Fatal(err)
	}
	var sink syncSink
	s.Record(&sink)
	froms := []netip.AddrPort{caller.AddrPort(), netip.MustParseAddrPort("127.0.0.1:4002"), netip.MustParseAddrPort("[::ffff:127.0.0.1]:4000")}
	now := time.Now()
	for _, seed := range rtpSeeds(f) {
		f.Add(seed, uint8(0))
	}
	f.Fuzz(func(t *testing.T, b []byte, from uint8) {
		now = now.Add(30 * time.Millisecond)
		s.handlePacket(b, froms[int(from)%len(froms)], now)
		sink.mu.Lock()
		if len(sink.pcm) > 1<<20 {
			sink.pcm = sink.pcm[:0]
		}
		sink.mu.Unlock()
	})
}

// FuzzRTCP parses arbitrary RTCP as the session does, then builds a
// report from the resulting state: no panic, a report that parses, a
// plausible round trip.
func FuzzRTCP(f *testing.F) {
	for _, seed := range rtcpSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pkts, err := rtcp.Unmarshal(b)
		if err != nil {
			return
		}
		var r rtcpState
		now := time.Unix(1_800_000_000, 0)
		r.receive(pkts, 0x1234, 0xCAFE, now)
		var st Stats
		r.stats(&st)
		if st.RTT < 0 || st.RTT > 61*time.Second {
			t.Fatalf("RTT %v", st.RTT)
		}
		q := rxQuality{started: true, ssrc: 0xCAFE, base: 1, maxSeq: 3, received: 2}
		out, err := r.build(0x1234, "c", q, 1, 1, 1, now, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rtcp.Unmarshal(out); err != nil {
			t.Fatalf("our report does not parse: %v", err)
		}
	})
}

// rtpSeeds are valid and broken RTP datagrams (plus RTCP, multiplexed).
func rtpSeeds(tb testing.TB) [][]byte {
	audio := append([]byte{0x80, 0x00, 0x00, 0x01, 0, 0, 0, 160, 0, 0, 0xCA, 0xFE}, make([]byte, 160)...)
	return append([][]byte{
		audio,
		{0x80, 13, 0, 2, 0, 0, 1, 64, 0, 0, 0xCA, 0xFE, 70},                            // comfort noise
		{0x80, 101, 0, 3, 0, 0, 1, 64, 0, 0, 0xCA, 0xFE, 5, 0x8a, 0x03, 0x20},          // DTMF 5, end
		{0x90, 0x00, 0, 4, 0, 0, 2, 0, 0, 0, 0xCA, 0xFE, 0xBE, 0xDE, 0, 1, 1, 2, 3, 4}, // extension
		{0xA0, 0x00, 0, 5, 0, 0, 2, 0, 0, 0, 0xCA, 0xFE, 1, 2, 3, 200},                 // padding too long
		{0x8F, 0x00, 0, 6, 0, 0, 2, 0, 0, 0, 0xCA, 0xFE},                               // 15 CSRCs missing
		{0x80},
	}, rtcpSeeds(tb)...)
}

func rtcpSeeds(tb testing.TB) [][]byte {
	return [][]byte{
		mustRTCP(tb, &rtcp.SenderReport{SSRC: 0xCAFE, NTPTime: 0xE000000080000000, PacketCount: 3,
			Reports: []rtcp.ReceptionReport{{SSRC: 0x1234, TotalLost: 0xFFFFFF, Jitter: 80, LastSenderReport: 0xE0000000, Delay: 1 << 16}}},
			rtcp.NewCNAMESourceDescription(0xCAFE, "caller")),
		mustRTCP(tb, rrFrom(0xCAFE, rtcp.ReceptionReport{SSRC: 0x1234, FractionLost: 255}), &rtcp.Goodbye{Sources: []uint32{0xCAFE}, Reason: "bye"}),
		{0x80, 0xc9, 0x00, 0x01, 0, 0, 0xCA, 0xFE},    // empty RR
		{0x81, 0xc9, 0x00, 0x07, 0, 0, 0xCA, 0xFE, 1}, // truncated block
		{0x80, 0xcc, 0x00, 0x02, 0, 0, 0, 1, 'n', 'a', 'm', 'e'},
	}
}
