package media

import (
	"net/netip"
	"time"

	"github.com/pion/rtp"
)

// DefaultStrictRTPPackets is how many consecutive packets a new source
// must send before it is learnt (Asterisk's strictrtp default).
const DefaultStrictRTPPackets = 4

// strictQuiet is how long the accepted source must have sent nothing
// (no packet of any negotiated payload type, no RTCP with its SSRC)
// before another source address may be learnt. Long enough that a pause
// in a live stream (a phone's jitter, a talk-spurt gap without comfort
// noise) does not open the door, short enough that a NAT rebinding or a
// media relay failover costs about two seconds of audio.
const strictQuiet = 2 * time.Second

// ssrcQuiet is the same for a new SSRC from the accepted address (a
// phone or PBX restarting its stream, a transfer): the old SSRC must be
// quiet for three 20 ms frames and the new one send n consecutive packets
// with none of the old in between, so a clean switch is followed at once
// (its first packets are replayed) while two interleaved streams never
// switch and are never mixed.
const ssrcQuiet = 60 * time.Millisecond

// gateVerdict is what sourceGate.check decides about a packet.
type gateVerdict uint8

const (
	gateReject gateVerdict = iota
	gateAccept
	gateLearnt // accepted, and its source (or SSRC) replaces the old one
)

// sourceGate is strict RTP: it accepts packets from one source address
// and, for the media that is recorded, one SSRC. The SDP address is
// accepted from the start; anyone else (another address, or another SSRC
// from the accepted one) must send n consecutive packets of one SSRC, with
// sequence numbers increasing by one and no accepted packet in between,
// while the accepted source is quiet (strictQuiet, ssrcQuiet), and then
// replaces it. So an injector is never mixed in while the caller talks,
// and two SSRCs are never mixed: the stream switches from one to the
// other.
type sourceGate struct {
	n        int
	acc      netip.AddrPort // invalid = none yet (no SDP address)
	ssrc     uint32
	haveSSRC bool
	seen     time.Time // last packet of the accepted source, or when it was set

	cand     netip.AddrPort
	candSSRC uint32
	candSeq  uint16
	candN    int // length of the candidate's current run; 0 = none
}

func (g *sourceGate) reset(acc netip.AddrPort, now time.Time) {
	g.acc, g.haveSSRC, g.seen, g.candN = acc, false, now, 0
}

// check decides about one packet. bindSSRC is false for telephone-event
// packets: they are accepted from the accepted address whatever their
// SSRC (some senders use a separate one) and do not choose the SSRC.
func (g *sourceGate) check(from netip.AddrPort, ssrc uint32, seq uint16, bindSSRC bool, now time.Time) gateVerdict {
	if from == g.acc && (!bindSSRC || !g.haveSSRC || ssrc == g.ssrc) {
		if bindSSRC && !g.haveSSRC {
			g.ssrc, g.haveSSRC = ssrc, true
		}
		g.seen, g.candN = now, 0
		return gateAccept
	}
	if g.candN > 0 && from == g.cand && ssrc == g.candSSRC && seq == g.candSeq+1 {
		g.candN++
	} else {
		g.cand, g.candSSRC, g.candN = from, ssrc, 1
	}
	g.candSeq = seq
	quiet := strictQuiet
	if from == g.acc {
		quiet = ssrcQuiet
	}
	if g.candN < g.n || (g.acc.IsValid() && now.Sub(g.seen) < quiet) {
		return gateReject
	}
	g.acc, g.ssrc, g.haveSSRC, g.seen, g.candN = from, ssrc, true, now, 0
	return gateLearnt
}

// alive refreshes the accepted source from its RTCP (same SSRC).
func (g *sourceGate) alive(ssrc uint32, now time.Time) {
	if g.haveSSRC && ssrc == g.ssrc {
		g.seen = now
	}
}

// rxQuality tracks the accepted SSRC's sequence numbers (RFC 3550 A.1,
// A.3) and interarrival jitter (A.8) for our reception reports.
type rxQuality struct {
	started   bool
	ssrc      uint32
	base      uint32 // extended sequence number of the first packet
	cycles    uint32
	maxSeq    uint16
	received  uint32
	jitter    uint32 // samples × 16, as A.8 keeps it
	jitterMax uint32
	transit   int32
	haveTrans bool
}

func (q *rxQuality) update(ssrc uint32, seq uint16) {
	if !q.started || ssrc != q.ssrc {
		*q = rxQuality{started: true, ssrc: ssrc, base: uint32(seq), maxSeq: seq}
	}
	q.received++
	if d := seq - q.maxSeq; d > 0 && d < maxDropout {
		if seq < q.maxSeq {
			q.cycles += seqMod
		}
		q.maxSeq = seq
	}
}

// extMax is the extended highest sequence number received.
func (q *rxQuality) extMax() uint32 { return q.cycles + uint32(q.maxSeq) }

// arrive is A.8: arrival is the arrival time in timestamp units.
func (q *rxQuality) arrive(ts, arrival uint32) {
	transit := int32(arrival - ts)
	if q.haveTrans {
		d := transit - q.transit
		if d < 0 {
			d = -d
		}
		j := int64(q.jitter) + int64(d) - int64((q.jitter+8)>>4)
		q.jitter = uint32(max(0, min(j, 1<<31)))
		q.jitterMax = max(q.jitterMax, q.jitter)
	}
	q.transit, q.haveTrans = transit, true
}

// isRTCP tells RTCP from RTP on a multiplexed port (RFC 5761 §4: the
// second byte of RTCP, its packet type, is 192-223).
func isRTCP(b []byte) bool { return len(b) >= 8 && b[1] >= 192 && b[1] <= 223 }

// handlePacket parses and dispatches one datagram (RFC 3550 §5.1; pion
// skips CSRCs and extensions and strips padding).
func (s *Session) handlePacket(b []byte, from netip.AddrPort, now time.Time) {
	if isRTCP(b) {
		s.handleRTCP(b, from, now, true)
		return
	}
	// SRTP authenticates before anything else looks at the packet: an
	// injector without the key never reaches strict RTP.
	b, ok := s.decryptRTP(b)
	if !ok {
		s.dropped.Add(1)
		return
	}
	p := &s.rxPkt
	if err := p.Unmarshal(b); err != nil || p.Version != 2 {
		s.dropped.Add(1)
		return
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	if s.mux != nil && s.closedFlag.Load() {
		return // Close ran: the shared reader must not reach the sink any more
	}
	kind := s.kindOf(p.PayloadType)
	if kind == pktUnknown {
		s.dropped.Add(1) // an unnegotiated payload type
		return
	}
	switch s.gate.check(from, p.SSRC, p.SequenceNumber, kind != pktDTMF, now) {
	case gateReject:
		s.reject(from, p.SSRC)
		if s.gate.candN > 0 {
			s.cands.add(b, s.gate.candN == 1)
		}
		return
	case gateLearnt:
		s.learnt(from, p.SSRC)
		s.muxTrack()
		s.replay(now)
	}
	if s.mux != nil && s.gate.haveSSRC && (!s.muxBoundOK || s.muxBound != s.gate.ssrc) {
		s.muxBound, s.muxBoundOK = s.gate.ssrc, true
		s.mux.bindSSRC(s, s.gate.ssrc)
	}
	s.deliver(p, kind, now)
}

// muxTrack tells the shared port where this session's packets come from:
// the SDP address and the accepted source. Called with rxMu.
func (s *Session) muxTrack() {
	if s.mux != nil && !s.closedFlag.Load() {
		s.mux.track(s, s.sdpAddr, s.gate.acc)
	}
}

// Kinds of RTP packets by payload type.
const (
	pktUnknown = iota
	pktAudio
	pktDTMF
	pktCN
)

// kindOf classifies a payload type. Called with rxMu.
func (s *Session) kindOf(pt uint8) int {
	switch {
	case pt == uint8(s.rxCodec):
		return pktAudio
	case s.dtmfPT != 0 && pt == s.dtmfPT:
		return pktDTMF
	case (s.cnPT != 0 && pt == s.cnPT) || pt == 13: // 13: static CN (RFC 3551)
		return pktCN
	}
	return pktUnknown
}

// deliver takes an accepted packet: liveness, loss and jitter statistics,
// then DTMF, comfort noise or audio. Called with rxMu.
func (s *Session) deliver(p *rtp.Packet, kind int, now time.Time) {
	s.heard(now)
	s.qMu.Lock()
	if kind != pktDTMF || (s.q.started && p.SSRC == s.q.ssrc) {
		s.q.update(p.SSRC, p.SequenceNumber)
	}
	if kind == pktAudio {
		s.q.arrive(p.Timestamp, uint32(now.Sub(s.epoch)/(time.Second/SampleRate)))
	}
	s.qMu.Unlock()
	switch kind {
	case pktDTMF:
		s.dtmfCount.Add(1)
		s.rx.Skip(p.SSRC, p.SequenceNumber)
		if d, ok := s.dtmf.Feed(p.SSRC, p.Timestamp, p.Payload, now); ok {
			s.pushEvent(Event{Kind: EventDigit, Digit: d})
		}
	case pktCN:
		// The caller is in a silence period: the next audio packet's
		// timestamp fills it in the recording.
		s.cnCount.Add(1)
		s.rx.Skip(p.SSRC, p.SequenceNumber)
	default:
		s.rx.Push(p.SSRC, p.SequenceNumber, p.Timestamp, p.Payload)
	}
}

// replay delivers the packets of the run that just got its source
// learnt, before the packet that completed it, so a switch loses nothing.
// Called with rxMu.
func (s *Session) replay(now time.Time) {
	n := s.cands.n
	for i := range n {
		p := &s.replayPkt
		if err := p.Unmarshal(s.cands.packet(i)); err != nil {
			continue
		}
		s.deliver(p, s.kindOf(p.PayloadType), now)
	}
	if n > 0 {
		s.rejected.Add(^uint64(n - 1)) // they were counted as rejected
	}
	s.cands.n = 0
}

// candRun keeps the first packets of a candidate source's run (up to
// candCap), to replay them when it is learnt. Its buffer is allocated on
// the first candidate packet, which a normal call never sees.
type candRun struct {
	buf  []byte
	lens [candCap]int
	n    int
}

const (
	candCap     = 8
	maxDatagram = rtpHeaderLen + 16*4 + 4 + MaxPayload // header, 15 CSRCs, one extension word
)

func (c *candRun) add(b []byte, first bool) {
	if first {
		c.n = 0
	}
	if c.n >= candCap || len(b) > maxDatagram {
		return
	}
	if c.buf == nil {
		c.buf = make([]byte, candCap*maxDatagram)
	}
	c.lens[c.n] = copy(c.buf[c.n*maxDatagram:(c.n+1)*maxDatagram], b)
	c.n++
}

func (c *candRun) packet(i int) []byte {
	return c.buf[i*maxDatagram : i*maxDatagram+c.lens[i]]
}

// reject counts a packet strict RTP refused and logs the first per call.
// Called with rxMu.
func (s *Session) reject(from netip.AddrPort, ssrc uint32) {
	s.rejected.Add(1)
	if !s.rejectLogged {
		s.rejectLogged = true
		s.log.Warn("strict RTP: packet from a source that is not accepted dropped", "rtp_port", s.port,
			"from", from.String(), "ssrc", ssrc, "accepted", s.gate.acc.String())
	}
}

// learnt switches to a new source: replies go there from now on (unless
// on hold), and RTCP is expected from it. Called with rxMu.
func (s *Session) learnt(from netip.AddrPort, ssrc uint32) {
	s.txMu.Lock()
	if !s.hold {
		if s.remote != from {
			s.rtcpLatched = netip.AddrPort{}
		}
		s.remote = from
	}
	s.txMu.Unlock()
	s.log.Info("rtp source learnt", "rtp_port", s.port, "remote", from.String(), "ssrc", ssrc)
}
