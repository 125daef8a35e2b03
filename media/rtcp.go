package media

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// ntpTime is the 64-bit NTP timestamp of t (RFC 3550 §4).
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800 // seconds from 1900 to 1970
	secs := uint64(t.Unix()) + unixToNTP
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// rtcpState is what RTCP tells about the call and what our next report
// needs. Its mutex is never held with rxMu or txMu.
type rtcpState struct {
	mu sync.Mutex

	// The peer's last sender report, for LSR/DLSR in our reports.
	lastSR   uint32 // middle 32 bits of its NTP timestamp
	lastSRAt time.Time

	// Our previous report, for the fraction lost (RFC 3550 A.3) and the
	// choice of SR or RR (§6.4).
	priorSSRC                    uint32
	expectedPrior, receivedPrior uint32
	sentPrior                    uint64

	// The peer's reception reports about our stream.
	reports        uint64
	remoteJitter   uint32 // samples
	remoteLost     int64
	remoteFraction uint8
	rtt, rttMax    time.Duration
	bye            bool
}

// rtcpInfo is what the peer said in one compound packet.
type rtcpInfo struct {
	senders []uint32 // SSRCs of its SR and RR packets
	bye     bool
}

// receive takes the parsed packets of one compound RTCP packet from the
// peer. ours is our SSRC; peer the SSRC we accept from it (0 = any yet).
func (r *rtcpState) receive(pkts []rtcp.Packet, ours, peer uint32, now time.Time) rtcpInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	var info rtcpInfo
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.SenderReport:
			info.senders = append(info.senders, p.SSRC)
			if peer == 0 || p.SSRC == peer {
				r.lastSR, r.lastSRAt = uint32(p.NTPTime>>16), now
			}
			r.blocks(p.Reports, ours, now)
		case *rtcp.ReceiverReport:
			info.senders = append(info.senders, p.SSRC)
			r.blocks(p.Reports, ours, now)
		case *rtcp.Goodbye:
			info.bye = true
			r.bye = true
		}
	}
	return info
}

// blocks reads the reception reports about our stream: its quality at the
// peer, and the round-trip time (RFC 3550 §6.4.1: A - LSR - DLSR).
func (r *rtcpState) blocks(rr []rtcp.ReceptionReport, ours uint32, now time.Time) {
	for _, b := range rr {
		if b.SSRC != ours {
			continue
		}
		r.reports++
		r.remoteJitter = b.Jitter
		lost := int64(b.TotalLost & 0xFFFFFF)
		if lost&0x800000 != 0 { // 24-bit two's complement: more received than expected
			lost -= 1 << 24
		}
		r.remoteLost = lost
		r.remoteFraction = b.FractionLost
		if b.LastSenderReport == 0 {
			continue
		}
		a := uint32(ntpTime(now) >> 16)
		rtt := a - b.LastSenderReport - b.Delay
		if int32(rtt) < 0 || rtt > 60<<16 { // clock noise or a forged LSR
			continue
		}
		r.rtt = time.Duration(rtt) * time.Second >> 16
		r.rttMax = max(r.rttMax, r.rtt)
	}
}

// build returns our compound report: SR if we sent RTP since the last
// report, else RR; a reception report block about the peer's stream when
// we receive one; SDES CNAME (required, §6.1); BYE at the end of the call.
func (r *rtcpState) build(ours uint32, cname string, q rxQuality, sent, octets uint64, ts uint32, now time.Time, bye bool) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var blocks []rtcp.ReceptionReport
	if q.started {
		if q.ssrc != r.priorSSRC {
			r.priorSSRC, r.expectedPrior, r.receivedPrior = q.ssrc, 0, 0
		}
		expected := q.extMax() - q.base + 1
		lost := min(max(int64(expected)-int64(q.received), -(1<<23)), 1<<23-1)
		expInt, recvInt := expected-r.expectedPrior, q.received-r.receivedPrior
		r.expectedPrior, r.receivedPrior = expected, q.received
		var fraction uint8
		if lostInt := int64(expInt) - int64(recvInt); expInt != 0 && lostInt > 0 {
			fraction = uint8(min(lostInt<<8/int64(expInt), 255))
		}
		b := rtcp.ReceptionReport{
			SSRC:               q.ssrc,
			FractionLost:       fraction,
			TotalLost:          uint32(lost) & 0xFFFFFF,
			LastSequenceNumber: q.extMax(),
			Jitter:             q.jitter >> 4,
		}
		if r.lastSR != 0 {
			b.LastSenderReport = r.lastSR
			b.Delay = uint32(now.Sub(r.lastSRAt) << 16 / time.Second)
		}
		blocks = append(blocks, b)
	}
	pkts := make([]rtcp.Packet, 0, 3)
	if sent != r.sentPrior {
		pkts = append(pkts, &rtcp.SenderReport{SSRC: ours, NTPTime: ntpTime(now), RTPTime: ts,
			PacketCount: uint32(sent), OctetCount: uint32(octets), Reports: blocks})
	} else {
		pkts = append(pkts, &rtcp.ReceiverReport{SSRC: ours, Reports: blocks})
	}
	r.sentPrior = sent
	pkts = append(pkts, rtcp.NewCNAMESourceDescription(ours, cname))
	if bye {
		pkts = append(pkts, &rtcp.Goodbye{Sources: []uint32{ours}})
	}
	return rtcp.Marshal(pkts)
}

func (r *rtcpState) stats(st *Stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st.RemoteJitter = samplesToDuration(r.remoteJitter)
	st.RemoteLost = r.remoteLost
	st.RemoteFractionLost = float64(r.remoteFraction) / 256
	st.RemoteReports = r.reports
	st.RTT, st.RTTMax = r.rtt, r.rttMax
	st.RemoteBye = r.bye
}

// handleRTCP takes one RTCP datagram, from the RTCP port or (viaRTP) from
// the RTP port with rtcp-mux. It is accepted from the caller's addresses
// only (the accepted RTP source's or the SDP's); garbage is counted and
// dropped.
func (s *Session) handleRTCP(b []byte, from netip.AddrPort, now time.Time, viaRTP bool) {
	b, plain := s.decryptRTCP(b, viaRTP)
	if !plain {
		s.rtcpDrops.Add(1)
		return
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		s.rtcpDrops.Add(1)
		return
	}
	ip := from.Addr().Unmap()
	s.rxMu.Lock()
	ok := (s.gate.acc.IsValid() && ip == s.gate.acc.Addr()) ||
		(s.sdpAddr.IsValid() && ip == s.sdpAddr.Addr()) ||
		(s.rtcpSDP.IsValid() && ip == s.rtcpSDP.Addr())
	var peer uint32
	if s.gate.haveSSRC {
		peer = s.gate.ssrc
	}
	s.rxMu.Unlock()
	if !ok {
		s.rtcpDrops.Add(1)
		return
	}
	s.rtcpRecv.Add(1)
	s.heard(now)
	info := s.rtcp.receive(pkts, s.ssrc, peer, now)
	fromPeer := false
	for _, ssrc := range info.senders {
		fromPeer = fromPeer || (peer != 0 && ssrc == peer)
	}
	if !fromPeer {
		return
	}
	// Its own reports keep the accepted source alive for strict RTP, and
	// tell where its RTCP really comes from (symmetric RTCP through NAT).
	s.rxMu.Lock()
	s.gate.alive(peer, now)
	s.rxMu.Unlock()
	if !viaRTP {
		s.txMu.Lock()
		s.rtcpLatched = netip.AddrPortFrom(ip, from.Port())
		s.txMu.Unlock()
	}
}

// rtcpDest is where our RTCP goes: nowhere while we send no RTP, the RTP
// destination with rtcp-mux, else where the peer's RTCP comes from, the
// SDP's a=rtcp address, or the RTP port + 1. Called with txMu.
func (s *Session) rtcpDest() (*net.UDPConn, netip.AddrPort) {
	switch {
	case !s.remote.IsValid():
		return nil, netip.AddrPort{}
	case s.rtcpMux:
		return s.conn, s.remote
	case s.rtcpLatched.IsValid():
		return s.rtcpConn, s.rtcpLatched
	case s.remote == s.txSDP && s.txRTCPSDP.IsValid():
		return s.rtcpConn, s.txRTCPSDP
	}
	return s.rtcpConn, netip.AddrPortFrom(s.remote.Addr(), s.remote.Port()+1)
}

// sendReport sends our compound RTCP report (with a BYE when bye). It
// runs on the shared clock goroutine, so it takes neither rxMu nor any
// lock a recording sink may hold.
func (s *Session) sendReport(now time.Time, bye bool) {
	s.qMu.Lock()
	q := s.q
	s.qMu.Unlock()
	s.txMu.Lock()
	conn, dst := s.rtcpDest()
	ts := s.pk.hdr.Timestamp
	s.txMu.Unlock()
	if conn == nil {
		return
	}
	b, err := s.rtcp.build(s.ssrc, s.cname, q, s.sent.Load(), s.octets.Load(), ts, now, bye)
	if err != nil {
		s.log.Warn("rtcp report not built", "rtp_port", s.port, "err", err)
		return
	}
	b, ok := s.encryptRTCP(b)
	if !ok {
		return
	}
	if _, err := conn.WriteToUDPAddrPort(b, dst); err == nil {
		s.rtcpSent.Add(1)
	}
}
