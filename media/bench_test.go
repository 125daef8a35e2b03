package media

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// BenchmarkReceivePacket measures the per-packet receive path of a real
// session without the socket read: unmarshal, demultiplex, latch check,
// sequence tracking, decode, sink (in-band DTMF detection off).
func BenchmarkReceivePacket(b *testing.B) {
	e, err := NewEngine(EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 33000, PortMax: 33999})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	s, err := e.NewSession(SessionConfig{Codec: PCMU, DTMFPayload: 101})
	if err != nil {
		b.Fatal(err)
	}
	s.Record(discard{})
	pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: make([]byte, 160)}).Marshal()
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for i := 0; b.Loop(); i++ {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(i*160))
		s.handlePacket(pkt, from, now)
	}
}

// BenchmarkSendPacket measures encode + marshal of one 20 ms frame and its
// write to a UDP socket on loopback.
func BenchmarkSendPacket(b *testing.B) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer rx.Close()
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Close()
	go func() { // drain, so the socket buffer never fills
		buf := make([]byte, 2048)
		for {
			if _, err := rx.Read(buf); err != nil {
				return
			}
		}
	}()
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	pk := newPacketizer()
	frame := Tone(440, 20*time.Millisecond, 0.3)
	b.ReportAllocs()
	for b.Loop() {
		out := pk.build(PCMU, frame, FrameSamples, false)
		if _, err := tx.WriteToUDPAddrPort(out, to); err != nil {
			b.Fatal(err)
		}
		pk.hdr.SequenceNumber++
		pk.hdr.Timestamp += FrameSamples
	}
}

func BenchmarkDecodePCMU(b *testing.B) {
	src := make([]byte, FrameSamples)
	dst := make([]int16, FrameSamples)
	b.ReportAllocs()
	b.SetBytes(FrameSamples)
	for b.Loop() {
		PCMU.Decode(dst, src)
	}
}

func BenchmarkEncodePCMA(b *testing.B) {
	src := Tone(440, 20*time.Millisecond, 0.3)
	dst := make([]byte, FrameSamples)
	b.ReportAllocs()
	for b.Loop() {
		PCMA.Encode(dst, src)
	}
}

// BenchmarkWAVWrite writes one 20 ms frame per op to a file: a tone, the
// frames a call delivers decoded from µ-law (g711), and those frames as
// the receiver gives them, the codes themselves (codes, WriteG711).
func BenchmarkWAVWrite(b *testing.B) {
	tone := writeOp{pcm: Tone(440, 20*time.Millisecond, 0.3)}
	for _, tc := range []struct {
		name  string
		f     Format
		frame writeOp
	}{
		{"pcm16", FormatPCM16, tone},
		{"pcm16-g711", FormatPCM16, writeOp{pcm: decoded(PCMU, 0, 160)}},
		{"pcm16-codes", FormatPCM16, codesOp(PCMU, 0, 160)},
		{"ulaw", FormatULaw, tone},
		{"ulaw-codes", FormatULaw, codesOp(PCMU, 0, 160)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			fh, err := os.Create(filepath.Join(b.TempDir(), "b.wav"))
			if err != nil {
				b.Fatal(err)
			}
			defer fh.Close()
			w, err := NewWAVWriter(fh, tc.f)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := tc.frame.write(w); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

func BenchmarkInbandDetector(b *testing.B) {
	var d InbandDetector
	frame := DTMFTone('5', 20*time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		d.Feed(frame)
	}
}

func BenchmarkSilenceDetector(b *testing.B) {
	d := NewSilenceDetector(0)
	frame := Tone(440, 20*time.Millisecond, 0.3)
	b.ReportAllocs()
	for b.Loop() {
		d.Feed(frame)
	}
}

func BenchmarkSilenceDetectorG711(b *testing.B) {
	d := NewSilenceDetector(0)
	frame := make([]byte, FrameSamples)
	PCMU.Encode(frame, Tone(440, 20*time.Millisecond, 0.3))
	b.ReportAllocs()
	for b.Loop() {
		d.FeedG711(PCMU, frame)
	}
}

// drain returns a loopback socket that reads and discards everything.
func drain(b *testing.B) *net.UDPConn {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rx.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := rx.Read(buf); err != nil {
				return
			}
		}
	}()
	return rx
}

// BenchmarkKeepAlive measures one 20 ms frame time of a session that is
// not playing (recording, waiting): a G.711 silence frame sent each time,
// or a comfort noise packet every 8th time. One op = one frame time.
func BenchmarkKeepAlive(b *testing.B) {
	for _, c := range []struct {
		name string
		cn   uint8
	}{{"silence", 0}, {"cn", 13}} {
		b.Run(c.name, func(b *testing.B) {
			e, err := NewEngine(EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 33000, PortMax: 33999})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			s, err := e.NewSession(SessionConfig{Codec: PCMU, CNPayload: c.cn, Remote: drain(b).LocalAddr().(*net.UDPAddr)})
			if err != nil {
				b.Fatal(err)
			}
			idx := uint64(1) << 40 // far ahead of the real clock: only these ticks send
			s.tick(idx)
			s.txMu.Lock()
			s.rtcpNext = 1<<64 - 1 // RTCP is measured on its own
			s.txMu.Unlock()
			b.ReportAllocs()
			for b.Loop() {
				idx += 2
				s.tick(idx)
			}
		})
	}
}

// BenchmarkRTCPReport measures one RTCP report (SR + reception report +
// SDES, marshalled by pion/rtcp) sent to a loopback socket: every ~5 s
// per call.
func BenchmarkRTCPReport(b *testing.B) {
	e, err := NewEngine(EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 33000, PortMax: 33999})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	to := drain(b).LocalAddr().(*net.UDPAddr)
	s, err := e.NewSession(SessionConfig{Codec: PCMU, Remote: to, RTCPRemote: to})
	if err != nil {
		b.Fatal(err)
	}
	s.qMu.Lock()
	s.q = rxQuality{started: true, ssrc: 1, base: 1, maxSeq: 500, received: 490, jitter: 160}
	s.qMu.Unlock()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		s.sendReport(now, false)
	}
}
