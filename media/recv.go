package media

import "sync/atomic"

// FrameSink receives decoded, in-order, gap-filled PCM. It is called on
// the session's receive goroutine (and by StopRecord/Flush on the caller's
// goroutine, never concurrently) and must not block long. The slice is
// reused after WriteFrame returns and may be shared: read it, copy what
// you keep, never write to it.
type FrameSink interface{ WriteFrame(pcm []int16) }

// A G711Sink can also take a frame as the G.711 codes it arrived in, so
// that a recording which keeps G.711 codes (WAVWriter) neither decodes
// nor re-encodes them. WriteG711 returns false, having done nothing, when
// it cannot take the codes; the receiver then decodes them and calls
// WriteFrame. codes is reused after it returns.
type G711Sink interface {
	FrameSink
	WriteG711(c Codec, codes []byte) bool
}

// silentFrame fills gaps. Sinks only read what they are given, so one
// frame serves every receiver (it was 320 bytes of each call).
var silentFrame [FrameSamples]int16

// Receive limits.
const (
	// DefaultReorderDepth is the reorder window in packets: 80 ms at 20 ms ptime.
	DefaultReorderDepth = 4
	// DefaultMaxGap is the largest timestamp jump (in samples, 30 s) filled
	// with silence; a larger one is a discontinuity, not a pause.
	DefaultMaxGap = 30 * SampleRate
	// MaxPayload is the largest RTP payload accepted (an Ethernet MTU).
	MaxPayload = 1500

	maxDropout  = 3000 // RFC 3550 App. A.1 MAX_DROPOUT
	maxMisorder = 100  // RFC 3550 App. A.1 MAX_MISORDER
	seqMod      = 1 << 16
	noBadSeq    = seqMod + 1
)

// ReceiverConfig configures a Receiver.
type ReceiverConfig struct {
	Codec  Codec
	Depth  int // reorder window in packets; 0 = DefaultReorderDepth
	MaxGap int // samples; 0 = DefaultMaxGap
}

// ReceiverStats counts what happened to the packets given to a Receiver.
type ReceiverStats struct {
	Received    uint64 // packets pushed
	Lost        uint64 // sequence numbers skipped (their time filled with silence)
	Late        uint64 // arrived after their place was played out
	Duplicate   uint64 // seen before
	Dropped     uint64 // empty, oversized, or a sequence jump (App. A.1 bad_seq)
	SSRCChanges uint64
}

type rxSlot struct {
	ext  int64
	ts   uint32
	n    int
	used bool
	skip bool // a telephone-event or CN packet: its number is taken, no audio
	buf  []byte
}

// Receiver turns RTP packets of one audio stream into in-order PCM.
//
// It tracks sequence numbers as RFC 3550 App. A.1 does (wrap, MAX_DROPOUT,
// MAX_MISORDER, restart after two sequential packets following a jump),
// but without the probation period: the first packet already counts, so
// the start of a message is not cut. In-order packets are played out at
// once; after a hole it waits for up to Depth packets for the missing one,
// then gives up and fills the hole with silence sized by the RTP timestamp
// difference (so any ptime works, including silence suppression). A new
// SSRC flushes the buffer and restarts tracking without a gap.
//
// A Receiver is not safe for concurrent use (the Stats are). Push does not
// allocate.
type Receiver struct {
	codec  Codec
	sink   FrameSink
	g711   G711Sink // sink, when it takes G.711 codes
	depth  int64
	maxGap uint32

	// RFC 3550 App. A.1 state.
	started bool
	ssrc    uint32
	maxSeq  uint16
	cycles  int64 // starts at seqMod so extended numbers of misordered packets stay positive
	badSeq  uint32

	next     int64  // extended sequence number to play out next
	hist     uint64 // bit i: next-1-i was played out (tells duplicates from late packets)
	slots    []rxSlot
	buffered int
	haveTS   bool
	nextTS   uint32 // timestamp right after the last played packet

	pcm []int16

	received, lost, late, dup, dropped, ssrcChanges atomic.Uint64
}

// NewReceiver returns a Receiver that writes to sink (which may be nil and
// set later).
func NewReceiver(cfg ReceiverConfig, sink FrameSink) *Receiver {
	r := &Receiver{}
	r.init(cfg, sink)
	return r
}

// init makes r a new receiver (a Session embeds its receiver, so that a
// packet finds the call's state in adjacent memory).
func (r *Receiver) init(cfg ReceiverConfig, sink FrameSink) {
	if cfg.Depth <= 0 {
		cfg.Depth = DefaultReorderDepth
	}
	if cfg.MaxGap <= 0 {
		cfg.MaxGap = DefaultMaxGap
	}
	r.codec = cfg.Codec
	r.depth = int64(cfg.Depth)
	r.maxGap = uint32(cfg.MaxGap)
	r.SetSink(sink)
	// The slots and their buffers are made when a packet first has to
	// wait for one before it (an in-order stream never needs them), and
	// the buffers and pcm grow to the packets' size: sized for the
	// largest datagram up front they were 9 KiB per call, a fifth of a
	// deposit's heap, for 160-byte G.711 packets.
}

// slot is the reorder slot of extended sequence number ext.
func (r *Receiver) slot(ext int64) *rxSlot {
	if r.slots == nil {
		r.slots = make([]rxSlot, r.depth)
	}
	return &r.slots[ext%r.depth]
}

// SetSink changes where frames go (nil discards them).
func (r *Receiver) SetSink(s FrameSink) {
	r.sink = s
	r.g711, _ = s.(G711Sink)
}

// SetCodec changes the codec used to decode the following packets.
func (r *Receiver) SetCodec(c Codec) { r.codec = c }

// Stats returns the counters; safe to call from any goroutine.
func (r *Receiver) Stats() ReceiverStats {
	return ReceiverStats{
		Received:    r.received.Load(),
		Lost:        r.lost.Load(),
		Late:        r.late.Load(),
		Duplicate:   r.dup.Load(),
		Dropped:     r.dropped.Load(),
		SSRCChanges: r.ssrcChanges.Load(),
	}
}

// Push takes one audio packet. The payload is copied, so it may alias a
// read buffer that is reused afterwards.
func (r *Receiver) Push(ssrc uint32, seq uint16, timestamp uint32, payload []byte) {
	r.received.Add(1)
	if len(payload) == 0 || len(payload) > MaxPayload {
		r.dropped.Add(1)
		return
	}
	if !r.started || ssrc != r.ssrc {
		if r.started {
			r.Flush()
			r.ssrcChanges.Add(1)
		}
		r.started, r.ssrc, r.haveTS = true, ssrc, false
		r.initSeq(seq)
	}
	ext, ok := r.updateSeq(seq)
	if !ok {
		r.dropped.Add(1)
		return
	}
	if ext < r.next {
		if d := r.next - 1 - ext; d < 64 && r.hist>>d&1 == 1 {
			r.dup.Add(1)
		} else {
			r.late.Add(1)
		}
		return
	}
	if ext == r.next && r.buffered == 0 {
		// In order with nothing waiting, as almost every packet is:
		// played out from the datagram, without touching a slot.
		r.next++
		r.hist = r.hist<<1 | 1
		r.playOut(timestamp, payload)
		return
	}
	if ext-r.next >= r.depth {
		// The window is full: stop waiting for the oldest holes.
		r.advanceTo(ext - r.depth + 1)
	}
	s := r.slot(ext)
	if s.used {
		r.dup.Add(1) // the window holds one packet per sequence number
		return
	}
	s.buf = append(s.buf[:0], payload...)
	s.ext, s.ts, s.n, s.used, s.skip = ext, timestamp, len(payload), true, false
	r.buffered++
	r.drain()
}

// Skip takes the sequence number of a packet of the same stream that
// carries no audio (RFC 4733 telephone-event, RFC 3389 comfort noise):
// they share the audio's numbering (RFC 4733 §2.1), so without this every
// digit would count as lost audio. The time it covers is filled by the
// next audio packet's timestamp, as for any gap.
func (r *Receiver) Skip(ssrc uint32, seq uint16) {
	if !r.started || ssrc != r.ssrc {
		return // another stream's numbers say nothing of this one's losses
	}
	ext, ok := r.updateSeq(seq)
	if !ok || ext < r.next {
		return
	}
	if ext-r.next >= r.depth {
		r.advanceTo(ext - r.depth + 1)
	}
	s := r.slot(ext)
	if s.used {
		return
	}
	s.ext, s.n, s.used, s.skip = ext, 0, true, true
	r.buffered++
	r.drain()
}

// drain plays out the packets that are now in order.
func (r *Receiver) drain() {
	for r.buffered > 0 {
		s := r.slot(r.next)
		if !s.used || s.ext != r.next {
			break
		}
		r.play(s)
		r.next++
	}
}

// Flush plays out everything buffered, filling holes with silence. Later
// packets older than the flushed ones are then late.
func (r *Receiver) Flush() {
	for r.buffered > 0 {
		r.advanceTo(r.next + 1)
	}
}

// initSeq is App. A.1 init_seq.
func (r *Receiver) initSeq(seq uint16) {
	r.maxSeq = seq
	r.badSeq = noBadSeq
	r.cycles = seqMod
	r.next = r.cycles + int64(seq)
	r.hist = 0
}

// updateSeq is App. A.1 update_seq; it returns the extended sequence number.
func (r *Receiver) updateSeq(seq uint16) (int64, bool) {
	udelta := seq - r.maxSeq
	switch {
	case udelta < maxDropout:
		// In order, with a permissible gap.
		if seq < r.maxSeq {
			r.cycles += seqMod // wrapped
		}
		r.maxSeq = seq
		return r.cycles + int64(seq), true
	case int(udelta) <= seqMod-maxMisorder:
		// A very large jump: restart on the second sequential packet.
		if uint32(seq) == r.badSeq {
			r.Flush()
			r.initSeq(seq)
			return r.next, true
		}
		r.badSeq = (uint32(seq) + 1) & (seqMod - 1)
		return 0, false
	default:
		// A duplicate or a reordered packet.
		return r.cycles + int64(r.maxSeq) - int64(r.maxSeq-seq), true
	}
}

// advanceTo plays out or skips everything before target.
func (r *Receiver) advanceTo(target int64) {
	for r.next < target {
		if r.buffered == 0 {
			n := target - r.next
			r.lost.Add(uint64(n))
			if n >= 64 {
				r.hist = 0
			} else {
				r.hist <<= uint(n)
			}
			r.next = target
			return
		}
		if s := r.slot(r.next); s.used && s.ext == r.next {
			r.play(s)
		} else {
			r.lost.Add(1)
			r.hist <<= 1
		}
		r.next++
	}
}

// play plays out one buffered packet.
func (r *Receiver) play(s *rxSlot) {
	s.used = false
	r.buffered--
	r.hist = r.hist<<1 | 1
	if !s.skip {
		r.playOut(s.ts, s.buf[:s.n])
	}
}

// playOut gives one packet's audio to the sink, after the silence its
// timestamp says is missing: as its codes if the sink takes them, else
// decoded.
func (r *Receiver) playOut(ts uint32, payload []byte) {
	if r.haveTS {
		if gap := ts - r.nextTS; int32(gap) > 0 && gap <= r.maxGap {
			r.silence(int(gap))
		}
	}
	r.haveTS, r.nextTS = true, ts+uint32(len(payload))
	if r.sink == nil || (r.g711 != nil && r.g711.WriteG711(r.codec, payload)) {
		return
	}
	if len(r.pcm) < len(payload) {
		r.pcm = make([]int16, len(payload))
	}
	r.codec.Decode(r.pcm, payload)
	r.sink.WriteFrame(r.pcm[:len(payload)])
}

func (r *Receiver) silence(n int) {
	if r.sink == nil {
		return
	}
	for n > 0 {
		c := min(n, len(silentFrame))
		r.sink.WriteFrame(silentFrame[:c])
		n -= c
	}
}
