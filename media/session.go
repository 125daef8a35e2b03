package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/pion/rtp"
)

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds. The zero value is not a valid kind.
const (
	EventDigit    EventKind = iota + 1 // a DTMF key (RFC 4733, in-band or SIP INFO)
	EventPlayDone                      // the last frame of a Play went out
)

func (k EventKind) String() string {
	switch k {
	case EventDigit:
		return "digit"
	case EventPlayDone:
		return "play-done"
	}
	return "unknown"
}

// Event is what a Session reports to the call.
type Event struct {
	Kind  EventKind
	Digit rune // for EventDigit
}

// eventQueue is the capacity of Session.Events.
const eventQueue = 32

// SessionConfig configures a Session.
type SessionConfig struct {
	Codec       Codec
	DTMFPayload uint8         // 0 = no telephone-event negotiated -> in-band Goertzel detection
	CNPayload   uint8         // comfort noise (RFC 3389) payload type, usually 13; 0 = not negotiated: keep-alive sends silence frames
	Ptime       time.Duration // send ptime (default 20ms; rounded to 10 ms)
	Remote      *net.UDPAddr  // from SDP; nil or unspecified IP (hold) = do not send until a source is learnt
	// RTCPRemote is where RTCP goes without rtcp-mux: the SDP a=rtcp
	// attribute (RFC 3605); nil = the RTP port + 1 (RFC 3550 §11).
	RTCPRemote *net.UDPAddr
	RTCPMux    bool // RTCP on the RTP port (RFC 5761), when the offer had a=rtcp-mux
	// RTPTimeout: with no RTP and no RTCP from the caller for this long,
	// Inactive() is closed. 0 = off.
	RTPTimeout time.Duration
	// StrictRTPPackets is how many consecutive packets of one SSRC, with
	// sequence numbers increasing by one, a new source (or a new SSRC from
	// the accepted one) must send, while the accepted source is silent
	// (2 s for another address, 60 ms for another SSRC from the accepted
	// one), before it is learnt. 0 = DefaultStrictRTPPackets.
	StrictRTPPackets int
	// RemoteSSRC is the caller's SSRC from its SDP (a=ssrc, RFC 5576),
	// 0 = not given. On the shared port (Engine Mux) it finds the
	// caller's packets when several calls come from one address.
	RemoteSSRC uint32
	// SRTP, when set, encrypts and authenticates RTP and RTCP both ways
	// (RFC 3711); packets that fail are dropped. nil = plain RTP.
	SRTP   *SRTPConfig
	Logger *slog.Logger
}

func (c *SessionConfig) normalize() error {
	if !c.Codec.Valid() {
		return fmt.Errorf("media: unsupported codec %d", c.Codec)
	}
	if c.CNPayload > 127 || (c.CNPayload != 0 && (c.CNPayload == uint8(c.Codec) || c.CNPayload == c.DTMFPayload)) {
		return fmt.Errorf("media: bad comfort noise payload type %d", c.CNPayload)
	}
	if c.Ptime <= 0 {
		c.Ptime = 20 * time.Millisecond
	}
	c.Ptime = max(clockTick, min(120*time.Millisecond, c.Ptime.Round(clockTick)))
	if c.StrictRTPPackets <= 0 {
		c.StrictRTPPackets = DefaultStrictRTPPackets
	}
	if c.RTPTimeout < 0 {
		c.RTPTimeout = 0
	}
	return nil
}

// Stats counts a session's packets and gives the call's quality.
type Stats struct {
	PacketsReceived  uint64 // audio, DTMF and comfort noise packets from the accepted source with a negotiated payload type
	PacketsLost      uint64 // audio sequence numbers never received in time (filled with silence)
	PacketsLate      uint64 // audio packets that arrived after their place was played out
	PacketsDuplicate uint64
	PacketsDropped   uint64 // malformed, not version 2, unknown payload type, sequence jump
	PacketsRejected  uint64 // strict RTP: from a source or SSRC that is not (yet) accepted
	PacketsSent      uint64 // all RTP sent, keep-alive included
	KeepAliveSent    uint64 // comfort noise or silence packets sent while not playing

	RTCPSent     uint64
	RTCPReceived uint64 // compound packets parsed from the caller
	RTCPDropped  uint64 // unparsable, or from an address that is not the caller's

	// Jitter is the interarrival jitter of the caller's audio as we
	// measure it (RFC 3550 A.8), at the end; JitterMax its largest value.
	Jitter, JitterMax time.Duration
	// From the caller's last reception report about our stream (zero
	// without one): its jitter, cumulative loss and the fraction lost in
	// the last interval (0..1).
	RemoteJitter       time.Duration
	RemoteLost         int64
	RemoteFractionLost float64
	RemoteReports      uint64 // reception reports about our stream received
	// RTT is the last round-trip time computed from LSR/DLSR (RFC 3550
	// §6.4.1); RTTMax the largest. Zero when never measured.
	RTT, RTTMax time.Duration
	RemoteBye   bool // the caller sent an RTCP BYE

	SRTPFailed uint64 // SRTP/SRTCP packets that failed authentication or the replay check
}

// Session is the media of one call: an RTP and an RTCP socket, receive
// goroutines that accept, reorder and decode audio and detect DTMF, and a
// player paced by the engine's shared clock that also sends keep-alive
// packets and RTCP reports.
type Session struct {
	// What every received packet touches comes first, together: with
	// thousands of calls a packet finds its call's memory out of the
	// cache, and each cache line it touches costs a wait for memory.

	// Receive side, guarded by rxMu (the receive goroutine holds it per packet).
	rxMu       sync.Mutex
	closedFlag atomic.Bool
	rxCodec    Codec
	dtmfPT     uint8
	cnPT       uint8
	rx         Receiver
	rec        FrameSink
	recCodes   G711Sink                  // rec, if it takes G.711 codes
	inband     *InbandDetector           // without telephone-event only: most calls do without its 352 bytes
	srtp       atomic.Pointer[srtpState] // nil = plain RTP (srtp.go)
	epoch      time.Time                 // the engine clock's start: arrival times and lastHeard count from it
	lastHeard  atomic.Int64              // ns since epoch of the last accepted RTP or RTCP
	gate       sourceGate

	// The shared port (Engine Mux): nil with a port pair of our own.
	// muxAddrs, muxN, muxSSRC and muxHaveSSRC are guarded by mux.mu;
	// muxBound by rxMu.
	mux         *mux
	muxSSRC     uint32
	muxHaveSSRC bool
	muxBoundOK  bool
	muxN        uint8
	muxBound    uint32
	muxAddrs    [2]netip.AddrPort // the SDP address and the accepted source (mux.track)

	// qMu guards q, apart from rxMu: the clock goroutine reads q for RTCP
	// and must never wait for a recording sink that holds rxMu.
	qMu sync.Mutex
	q   rxQuality

	rxPkt        rtp.Packet // owned by the RTP receive goroutine
	replayPkt    rtp.Packet
	cands        candRun
	dtmf         DTMFDetector
	sdpAddr      netip.AddrPort // the RTP address of the last SDP; invalid = none
	rtcpSDP      netip.AddrPort // from SessionConfig.RTCPRemote
	rejectLogged bool
	srtpFails    atomic.Uint64

	eng      *Engine
	conn     *net.UDPConn
	rtcpConn *net.UDPConn
	port     int
	log      *slog.Logger // the call's; every line adds rtp_port itself (a With per call kept 311 bytes)
	ssrc     uint32       // ours
	cname    string

	evMu   sync.Mutex // serialises pushEvent's drop-oldest
	events chan Event

	// Send side, guarded by txMu (the clock goroutine holds it per tick).
	txMu        sync.Mutex
	stopped     bool
	txCodec     Codec
	remote      netip.AddrPort // invalid = do not send
	hold        bool           // SetRemote(nil): send nothing, even to a learnt source
	txSDP       netip.AddrPort // sdpAddr as the send side saw it
	txRTCPSDP   netip.AddrPort
	rtcpMux     bool
	rtcpLatched netip.AddrPort // where the caller's RTCP comes from (without mux)
	pk          *packetizer
	spp         int    // samples per packet
	tpp         uint64 // clock ticks per packet
	nextTick    uint64
	started     bool
	play        []int16
	pos         int
	playing     bool
	marker      bool
	txCN        uint8
	cnEvery     int // frames between comfort noise packets
	cnWait      int
	rtcpNext    uint64 // clock tick of the next report
	rtcpMean    time.Duration

	rtcp rtcpState // guarded by its own mutex

	timeout      int64           // RTPTimeout in ns; 0 = off
	inactive     context.Context // done when the caller went silent (checkInactive)
	setInactive  context.CancelFunc
	inactiveOnce sync.Once

	sent, octets, keepalive       atomic.Uint64
	dropped, rejected, dtmfCount  atomic.Uint64
	cnCount                       atomic.Uint64
	rtcpSent, rtcpRecv, rtcpDrops atomic.Uint64

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
	rtcpDone  chan struct{}
}

// sessionSink receives the Receiver's frames: in-band DTMF first, then
// the recording. It runs with rxMu held.
type sessionSink struct{ s *Session }

func (k sessionSink) WriteFrame(pcm []int16) {
	s := k.s
	if s.inband != nil {
		if d, ok := s.inband.Feed(pcm); ok {
			s.pushEvent(Event{Kind: EventDigit, Digit: d})
		}
	}
	if s.rec != nil {
		s.rec.WriteFrame(pcm)
	}
}

// WriteG711 passes the codes on when nothing here needs them decoded: no
// in-band DTMF detector, and a recording that takes codes (or none).
func (k sessionSink) WriteG711(c Codec, codes []byte) bool {
	s := k.s
	if s.inband != nil {
		return false
	}
	if s.rec == nil {
		return true
	}
	return s.recCodes != nil && s.recCodes.WriteG711(c, codes)
}

func newSession(e *Engine, conn, rtcpConn *net.UDPConn, port int, cfg SessionConfig, st *srtpState) *Session {
	now := time.Now()
	s := &Session{
		eng:      e,
		conn:     conn,
		rtcpConn: rtcpConn,
		port:     port,
		log:      cfg.Logger,
		epoch:    e.clock.start,
		events:   make(chan Event, eventQueue),
		rxCodec:  cfg.Codec,
		dtmfPT:   cfg.DTMFPayload,
		cnPT:     cfg.CNPayload,
		txCodec:  cfg.Codec,
		pk:       newPacketizer(),
		spp:      samplesFor(cfg.Ptime),
		tpp:      uint64(cfg.Ptime / clockTick),
		txCN:     cfg.CNPayload,
		cnEvery:  max(1, int(cnInterval/cfg.Ptime)),
		rtcpMux:  cfg.RTCPMux,
		rtcpMean: e.rtcpMean,
		timeout:  int64(cfg.RTPTimeout),
		done:     make(chan struct{}),
		rtcpDone: make(chan struct{}),
	}
	s.inactive, s.setInactive = context.WithCancel(context.Background())
	s.ssrc = s.pk.hdr.SSRC
	s.cname = fmt.Sprintf("voicemail-%08x@%d", s.ssrc, port)
	remote := sendAddr(cfg.Remote)
	s.sdpAddr, s.txSDP, s.remote = remote, remote, remote
	s.rtcpSDP = sendAddr(cfg.RTCPRemote)
	s.txRTCPSDP = s.rtcpSDP
	if cfg.DTMFPayload == 0 {
		s.inband = new(InbandDetector)
	}
	s.gate = sourceGate{n: cfg.StrictRTPPackets}
	s.gate.reset(remote, now)
	s.lastHeard.Store(int64(now.Sub(s.epoch)))
	s.rx.init(ReceiverConfig{Codec: cfg.Codec}, sessionSink{s})
	if st != nil {
		s.srtp.Store(st)
	}
	if e.mux != nil {
		s.mux = e.mux
		close(s.done)
		close(s.rtcpDone)
		s.rxMu.Lock()
		s.muxTrack()
		if cfg.RemoteSSRC != 0 {
			s.muxBound, s.muxBoundOK = cfg.RemoteSSRC, true
			s.mux.bindSSRC(s, cfg.RemoteSSRC)
		}
		s.rxMu.Unlock()
		return s
	}
	go s.recvLoop()
	go s.rtcpLoop()
	return s
}

// sendAddr turns an SDP address into a destination; nil, port 0 or an
// unspecified IP (RFC 3264 §8.4 hold) mean "none".
func sendAddr(a *net.UDPAddr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	ap := a.AddrPort()
	ip := ap.Addr().Unmap()
	if !ip.IsValid() || ip.IsUnspecified() || ap.Port() == 0 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ip, ap.Port())
}

// SSRC is the SSRC of what we send; CNAME our RTCP CNAME.
func (s *Session) SSRC() uint32 { return s.ssrc }

// CNAME is our RTCP canonical name for this session.
func (s *Session) CNAME() string { return s.cname }

// Shared reports whether the session is on the engine's shared RTP port.
func (s *Session) Shared() bool { return s.mux != nil }

// LocalPort returns the RTP port the session is bound to (RTCP is on the
// next port, or on this one with rtcp-mux).
func (s *Session) LocalPort() int { return s.port }

// SetRemote applies a re-INVITE: new destination, codec and DTMF payload
// type; comfort noise and RTCP settings stay. See Update.
func (s *Session) SetRemote(a *net.UDPAddr, c Codec, dtmfPT uint8) {
	s.txMu.Lock()
	cn, mux := s.txCN, s.rtcpMux
	s.txMu.Unlock()
	_ = s.Update(SessionConfig{Codec: c, DTMFPayload: dtmfPT, CNPayload: cn, Remote: a, RTCPMux: mux})
}

// Update applies a re-INVITE's negotiated media: Codec, DTMFPayload,
// CNPayload, Remote, RTCPRemote, RTCPMux and SRTP (other fields are
// ignored; a nil SRTP keeps the current keys: signalling refuses to fall
// back to plain RTP during a call).
// A nil or unspecified Remote is hold: nothing is sent until the next
// Update with an address. A new SDP address becomes the accepted source
// at once (signalling is trusted, RTP is not); the same address again (a
// session refresh) keeps whatever source was learnt.
func (s *Session) Update(cfg SessionConfig) error {
	if !cfg.Codec.Valid() {
		return fmt.Errorf("media: unsupported codec %d", cfg.Codec)
	}
	if cfg.CNPayload > 127 || (cfg.CNPayload != 0 && (cfg.CNPayload == uint8(cfg.Codec) || cfg.CNPayload == cfg.DTMFPayload)) {
		cfg.CNPayload = 0
	}
	if cfg.SRTP != nil {
		if err := s.setSRTP(cfg.SRTP); err != nil {
			return err
		}
	}
	now := time.Now()
	a := sendAddr(cfg.Remote)
	rtcpAddr := sendAddr(cfg.RTCPRemote)

	s.rxMu.Lock()
	s.rxCodec = cfg.Codec
	s.rx.SetCodec(cfg.Codec)
	if cfg.DTMFPayload != s.dtmfPT {
		s.dtmf.Reset()
		s.inband = nil
	}
	s.dtmfPT = cfg.DTMFPayload
	if cfg.DTMFPayload == 0 && s.inband == nil {
		s.inband = new(InbandDetector)
	}
	s.cnPT = cfg.CNPayload
	changed := a.IsValid() && a != s.sdpAddr
	if changed {
		s.sdpAddr = a
		s.gate.reset(a, now)
		s.cands.n = 0
		s.qMu.Lock()
		s.q = rxQuality{}
		s.qMu.Unlock()
		s.muxTrack()
	}
	if a.IsValid() {
		s.rtcpSDP = rtcpAddr
	}
	accepted := s.gate.acc
	s.rxMu.Unlock()

	s.txMu.Lock()
	defer s.txMu.Unlock()
	s.txCodec = cfg.Codec
	s.txCN = cfg.CNPayload
	s.rtcpMux = cfg.RTCPMux
	switch {
	case !a.IsValid():
		s.hold, s.remote = true, netip.AddrPort{}
	case changed:
		s.hold, s.remote, s.txSDP, s.txRTCPSDP, s.rtcpLatched = false, a, a, rtcpAddr, netip.AddrPort{}
	default:
		s.hold, s.remote, s.txRTCPSDP = false, accepted, rtcpAddr
		if !accepted.IsValid() {
			s.remote = a
		}
	}
	s.eng.clock.wake(s) // keep-alive may start or stop
	return nil
}

// Events returns the session's event stream. It is buffered and never
// closed; when it is full the oldest event is dropped, so the receive
// loop never blocks.
func (s *Session) Events() <-chan Event { return s.events }

// Inactive is closed when neither RTP nor RTCP came from the caller for
// SessionConfig.RTPTimeout: the caller vanished without a BYE. It is
// never closed with the timeout off.
func (s *Session) Inactive() <-chan struct{} { return s.inactive.Done() }

// OnInactive runs f on a goroutine of its own once Inactive is closed,
// unless stop was called first; until then it costs no goroutine.
func (s *Session) OnInactive(f func()) (stop func() bool) { return context.AfterFunc(s.inactive, f) }

func (s *Session) pushEvent(ev Event) {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	for {
		select {
		case s.events <- ev:
			return
		default:
		}
		select {
		case <-s.events: // drop the oldest
		default:
		}
	}
}

// InjectDigit adds a digit from another source (SIP INFO) to the same
// event stream. Lower-case a-d are accepted; other runes are ignored.
func (s *Session) InjectDigit(d rune) {
	d = unicode.ToUpper(d)
	if ValidDigit(d) {
		s.pushEvent(Event{Kind: EventDigit, Digit: d})
	}
}

// Play starts sending pcm (8 kHz mono), replacing any current playback.
// The slice is not copied and must not change while it plays. When the
// last frame has gone out, EventPlayDone is reported (also for an empty
// slice, on the next frame time). Between playbacks the session sends
// keep-alive packets by itself.
func (s *Session) Play(pcm []int16) {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	if s.stopped {
		return
	}
	s.play, s.pos, s.playing, s.marker = pcm, 0, true, true
	s.cnWait = 0 // the next idle period starts with a comfort noise packet
	s.eng.clock.wake(s)
}

// StopPlay stops the current playback without an EventPlayDone.
func (s *Session) StopPlay() {
	s.txMu.Lock()
	s.play, s.pos, s.playing = nil, 0, false
	s.cnWait = 0
	s.txMu.Unlock()
	s.eng.clock.wake(s)
}

// Playing reports whether a playback is in progress.
func (s *Session) Playing() bool {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	return s.playing
}

// Record sends every frame received from now on (in order, gaps filled
// with silence) to sink, replacing any previous sink.
func (s *Session) Record(sink FrameSink) {
	s.rxMu.Lock()
	s.rec = sink
	s.recCodes, _ = sink.(G711Sink)
	s.rxMu.Unlock()
}

// StopRecord flushes the reorder buffer into the sink, then detaches it.
// On the shared port it first lets the reader handle what already
// arrived (mux.drain), so a BYE never cuts the caller's last words.
func (s *Session) StopRecord() {
	if s.mux != nil {
		s.rxMu.Lock()
		recording := s.rec != nil
		s.rxMu.Unlock()
		if recording {
			s.mux.drain()
		}
	}
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	if s.rec == nil {
		return
	}
	s.rx.Flush()
	s.rec, s.recCodes = nil, nil
}

// Stats returns the packet counters and the call's quality so far.
func (s *Session) Stats() Stats {
	rs := s.rx.Stats()
	st := Stats{
		PacketsReceived:  rs.Received + s.dtmfCount.Load() + s.cnCount.Load(),
		PacketsLost:      rs.Lost,
		PacketsLate:      rs.Late,
		PacketsDuplicate: rs.Duplicate,
		PacketsDropped:   rs.Dropped + s.dropped.Load(),
		PacketsRejected:  s.rejected.Load(),
		PacketsSent:      s.sent.Load(),
		KeepAliveSent:    s.keepalive.Load(),
		RTCPSent:         s.rtcpSent.Load(),
		RTCPReceived:     s.rtcpRecv.Load(),
		RTCPDropped:      s.rtcpDrops.Load(),
		SRTPFailed:       s.srtpFails.Load(),
	}
	s.qMu.Lock()
	st.Jitter, st.JitterMax = samplesToDuration(s.q.jitter>>4), samplesToDuration(s.q.jitterMax>>4)
	s.qMu.Unlock()
	s.rtcp.stats(&st)
	return st
}

// Close sends an RTCP BYE, stops the player, closes the sockets, waits
// for the receive goroutines and returns the port to the pool. Do not
// call it from a FrameSink (it waits for the goroutine that calls the
// sink).
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.eng.clock.remove(s)
		s.txMu.Lock()
		s.stopped, s.playing, s.play = true, false, nil
		s.txMu.Unlock()
		s.sendReport(time.Now(), true)
		s.closedFlag.Store(true)
		if s.mux != nil {
			// A datagram being handled finishes; later ones see closedFlag.
			s.rxMu.Lock()
			s.rxMu.Unlock()
			s.mux.remove(s)
		} else {
			s.closeErr = errors.Join(s.conn.Close(), s.rtcpConn.Close())
		}
		<-s.done
		<-s.rtcpDone
		s.eng.release(s)
	})
	return s.closeErr
}

// recvLoop reads RTP (and, with rtcp-mux, RTCP) until the socket is
// closed. It reuses one buffer and one rtp.Packet, so it does not
// allocate per packet.
func (s *Session) recvLoop() {
	defer close(s.done)
	buf := make([]byte, 2048)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.closedFlag.Load() {
				return
			}
			continue
		}
		s.handlePacket(buf[:n], from, time.Now())
	}
}

// rtcpLoop reads the RTCP port until the socket is closed.
func (s *Session) rtcpLoop() {
	defer close(s.rtcpDone)
	buf := make([]byte, 2048)
	for {
		n, from, err := s.rtcpConn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.closedFlag.Load() {
				return
			}
			continue
		}
		s.handleRTCP(buf[:n], from, time.Now(), false)
	}
}

// heard records that the caller is alive (for the inactivity timeout).
func (s *Session) heard(now time.Time) { s.lastHeard.Store(int64(now.Sub(s.epoch))) }

// checkInactive closes Inactive once the caller was silent for the
// timeout; idx is the clock tick (time since epoch in ticks).
func (s *Session) checkInactive(idx uint64) (next uint64) {
	if s.timeout == 0 {
		return math.MaxUint64
	}
	last := s.lastHeard.Load()
	if int64(idx)*int64(clockTick)-last > s.timeout {
		s.inactiveOnce.Do(func() {
			s.log.Info("no RTP or RTCP from the caller", "rtp_port", s.port, "timeout", time.Duration(s.timeout))
			s.setInactive()
		})
		return math.MaxUint64
	}
	// The first tick past the timeout, counted from the last packet heard
	// so far; checked again then.
	return uint64((last+s.timeout)/int64(clockTick)) + 1
}

func samplesToDuration(n uint32) time.Duration {
	return time.Duration(n) * time.Second / SampleRate
}
