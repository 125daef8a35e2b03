package media

import (
	"errors"
	"fmt"
	"log/slog"
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

// relatchAfter is how long the latched source must be silent before
// packets from another address may take over (a NAT rebinding, a media
// relay failing over), while a stray stream cannot hijack a live one.
const relatchAfter = time.Second

// SessionConfig configures a Session.
type SessionConfig struct {
	Codec       Codec
	DTMFPayload uint8         // 0 = no telephone-event negotiated -> in-band Goertzel detection
	Ptime       time.Duration // send ptime (default 20ms; rounded to 10 ms)
	Remote      *net.UDPAddr  // from SDP; nil or unspecified IP (hold) = do not send until latched
	Logger      *slog.Logger
}

func (c *SessionConfig) normalize() error {
	if !c.Codec.Valid() {
		return fmt.Errorf("media: unsupported codec %d", c.Codec)
	}
	if c.Ptime <= 0 {
		c.Ptime = 20 * time.Millisecond
	}
	c.Ptime = max(clockTick, min(120*time.Millisecond, c.Ptime.Round(clockTick)))
	return nil
}

// Stats counts a session's packets.
type Stats struct {
	PacketsReceived  uint64 // audio and DTMF packets from the latched remote with a negotiated payload type
	PacketsLost      uint64 // audio sequence numbers never received in time (filled with silence)
	PacketsLate      uint64 // audio packets that arrived after their place was played out
	PacketsDuplicate uint64
	PacketsDropped   uint64 // malformed, not version 2, unknown payload type, foreign source, sequence jump
	PacketsSent      uint64
}

// Session is the media of one call: a UDP socket, a receive goroutine
// that reorders and decodes audio and detects DTMF, and a player paced by
// the engine's shared clock.
type Session struct {
	eng  *Engine
	conn *net.UDPConn
	port int
	log  *slog.Logger

	evMu   sync.Mutex // serialises pushEvent's drop-oldest
	events chan Event

	// Receive side, guarded by rxMu (the receive goroutine holds it per packet).
	rxMu     sync.Mutex
	rx       *Receiver
	rxPkt    rtp.Packet // owned by the receive goroutine
	rxCodec  Codec
	dtmfPT   uint8
	dtmf     DTMFDetector
	inbandOn bool
	inband   InbandDetector
	rec      FrameSink
	src      netip.AddrPort // latched source; invalid = not latched
	srcSeen  time.Time

	// Send side, guarded by txMu (the clock goroutine holds it per tick).
	txMu       sync.Mutex
	stopped    bool
	txCodec    Codec
	remote     netip.AddrPort // invalid = do not send
	pk         *packetizer
	spp        int    // samples per packet
	tpp        uint64 // clock ticks per packet
	nextTick   uint64
	started    bool
	play       []int16
	pos        int
	playing    bool
	marker     bool
	sent       atomic.Uint64
	dropped    atomic.Uint64
	dtmfCount  atomic.Uint64
	closeOnce  sync.Once
	closeErr   error
	done       chan struct{}
	closedFlag atomic.Bool
}

// sessionSink receives the Receiver's frames: in-band DTMF first, then
// the recording. It runs with rxMu held.
type sessionSink struct{ s *Session }

func (k sessionSink) WriteFrame(pcm []int16) {
	s := k.s
	if s.inbandOn {
		if d, ok := s.inband.Feed(pcm); ok {
			s.pushEvent(Event{Kind: EventDigit, Digit: d})
		}
	}
	if s.rec != nil {
		s.rec.WriteFrame(pcm)
	}
}

func newSession(e *Engine, conn *net.UDPConn, port int, cfg SessionConfig) *Session {
	s := &Session{
		eng:      e,
		conn:     conn,
		port:     port,
		log:      cfg.Logger.With("rtp_port", port),
		events:   make(chan Event, eventQueue),
		rxCodec:  cfg.Codec,
		dtmfPT:   cfg.DTMFPayload,
		inbandOn: cfg.DTMFPayload == 0,
		txCodec:  cfg.Codec,
		remote:   sendAddr(cfg.Remote),
		pk:       newPacketizer(),
		spp:      samplesFor(cfg.Ptime),
		tpp:      uint64(cfg.Ptime / clockTick),
		done:     make(chan struct{}),
	}
	s.rx = NewReceiver(ReceiverConfig{Codec: cfg.Codec}, sessionSink{s})
	go s.recvLoop()
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

// LocalPort returns the RTP port the session is bound to.
func (s *Session) LocalPort() int { return s.port }

// SetRemote applies a re-INVITE: new destination, codec and DTMF payload
// type. Latching starts over, so the new far end is followed.
func (s *Session) SetRemote(a *net.UDPAddr, c Codec, dtmfPT uint8) {
	s.rxMu.Lock()
	s.rxCodec = c
	s.rx.SetCodec(c)
	if dtmfPT != s.dtmfPT {
		s.dtmf.Reset()
		s.inband.Reset()
	}
	s.dtmfPT = dtmfPT
	s.inbandOn = dtmfPT == 0
	s.src = netip.AddrPort{}
	s.rxMu.Unlock()

	s.txMu.Lock()
	s.txCodec = c
	s.remote = sendAddr(a)
	s.txMu.Unlock()
}

// Events returns the session's event stream. It is buffered and never
// closed; when it is full the oldest event is dropped, so the receive
// loop never blocks.
func (s *Session) Events() <-chan Event { return s.events }

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
// slice, on the next frame time).
func (s *Session) Play(pcm []int16) {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	if s.stopped {
		return
	}
	s.play, s.pos, s.playing, s.marker = pcm, 0, true, true
}

// StopPlay stops the current playback without an EventPlayDone.
func (s *Session) StopPlay() {
	s.txMu.Lock()
	s.play, s.pos, s.playing = nil, 0, false
	s.txMu.Unlock()
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
	s.rxMu.Unlock()
}

// StopRecord flushes the reorder buffer into the sink, then detaches it.
func (s *Session) StopRecord() {
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	if s.rec == nil {
		return
	}
	s.rx.Flush()
	s.rec = nil
}

// Stats returns the packet counters.
func (s *Session) Stats() Stats {
	rs := s.rx.Stats()
	return Stats{
		PacketsReceived:  rs.Received + s.dtmfCount.Load(),
		PacketsLost:      rs.Lost,
		PacketsLate:      rs.Late,
		PacketsDuplicate: rs.Duplicate,
		PacketsDropped:   rs.Dropped + s.dropped.Load(),
		PacketsSent:      s.sent.Load(),
	}
}

// Close stops the player, closes the socket, waits for the receive
// goroutine and returns the port to the pool. Do not call it from a
// FrameSink (it waits for the goroutine that calls the sink).
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.eng.clock.remove(s)
		s.txMu.Lock()
		s.stopped, s.playing, s.play = true, false, nil
		s.txMu.Unlock()
		s.closedFlag.Store(true)
		s.closeErr = s.conn.Close()
		<-s.done
		s.eng.release(s)
	})
	return s.closeErr
}

// recvLoop reads packets until the socket is closed. It reuses one buffer
// and one rtp.Packet, so it does not allocate per packet.
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

// handlePacket parses and dispatches one datagram (RFC 3550 §5.1; pion
// skips CSRCs and extensions and strips padding).
func (s *Session) handlePacket(b []byte, from netip.AddrPort, now time.Time) {
	p := &s.rxPkt
	if err := p.Unmarshal(b); err != nil || p.Version != 2 {
		s.dropped.Add(1)
		return
	}
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	pt := p.PayloadType
	isDTMF := s.dtmfPT != 0 && pt == s.dtmfPT
	if !isDTMF && pt != uint8(s.rxCodec) {
		s.dropped.Add(1) // comfort noise, an unnegotiated codec, RTCP on the RTP port
		return
	}
	if !s.latch(from, now) {
		s.dropped.Add(1)
		return
	}
	if isDTMF {
		s.dtmfCount.Add(1)
		if d, ok := s.dtmf.Feed(p.SSRC, p.Timestamp, p.Payload, now); ok {
			s.pushEvent(Event{Kind: EventDigit, Digit: d})
		}
		return
	}
	s.rx.Push(p.SSRC, p.SequenceNumber, p.Timestamp, p.Payload)
}

// latch implements symmetric RTP (RFC 4961): send to where the first valid
// packet came from, and accept packets only from there. Called with rxMu.
func (s *Session) latch(from netip.AddrPort, now time.Time) bool {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if from == s.src {
		s.srcSeen = now
		return true
	}
	if s.src.IsValid() && now.Sub(s.srcSeen) < relatchAfter {
		return false
	}
	s.src, s.srcSeen = from, now
	s.txMu.Lock()
	s.remote = from
	s.txMu.Unlock()
	s.log.Debug("rtp latched", "remote", from.String())
	return true
}

// tick is called by the engine clock every 10 ms; it sends a frame each
// time a ptime has elapsed on the clock. While idle it sends nothing but
// the RTP timestamp keeps pace with the wall clock (RFC 3550 §5.1).
func (s *Session) tick(idx uint64) {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	if s.stopped {
		return
	}
	if !s.started {
		s.started, s.nextTick = true, idx
	}
	if idx < s.nextTick {
		return
	}
	// After a stall (the clock lost ticks), send at most 2 frames at once
	// and let the timestamp jump over the rest.
	const maxBurst = 2
	if behind := (idx-s.nextTick)/s.tpp + 1; behind > maxBurst {
		skip := behind - maxBurst
		s.nextTick += skip * s.tpp
		s.pk.hdr.Timestamp += uint32(skip) * uint32(s.spp)
	}
	for idx >= s.nextTick {
		s.sendFrame()
		s.nextTick += s.tpp
	}
}

// sendFrame sends the next frame of the playback, if any. Called with txMu.
func (s *Session) sendFrame() {
	if s.playing {
		if s.pos < len(s.play) {
			end := min(s.pos+s.spp, len(s.play))
			frame := s.play[s.pos:end]
			s.pos = end
			if s.remote.IsValid() {
				b := s.pk.build(s.txCodec, frame, s.spp, s.marker)
				if _, err := s.conn.WriteToUDPAddrPort(b, s.remote); err == nil {
					s.sent.Add(1)
				}
				s.pk.hdr.SequenceNumber++
				s.marker = false // RFC 3551 §4.1: marker on the first packet of a talkspurt
			}
		}
		if s.pos >= len(s.play) {
			s.play, s.pos, s.playing = nil, 0, false
			s.pushEvent(Event{Kind: EventPlayDone})
		}
	}
	s.pk.hdr.Timestamp += uint32(s.spp)
}
