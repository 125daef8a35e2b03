package media

import (
	"math"
	"math/rand/v2"
	"time"
)

// cnInterval is the longest time between two comfort noise packets while
// the session is silent: RFC 3389 leaves the rate to the sender; phones
// and SBCs that time out RTP count packets, and common practice is one
// CN packet about every 160-200 ms. We send one on the first idle frame,
// then every cnInterval (8 frames at 20 ms).
const cnInterval = 160 * time.Millisecond

// cnLevel is the noise level of our comfort noise packets, in -dBov
// (RFC 3389 §3): -70 dBov, a faint hiss far under speech, so the line
// does not sound dead and a receiver that plays CN as digital silence
// loses nothing.
const cnLevel = 70

// rtcpInterval is the mean RTCP report interval (RFC 3550 §6.2: 5 s
// minimum); each interval is randomised to 0.5-1.5 times it and the first
// one is half as long (§6.3.1, §6.2).
const rtcpInterval = 5 * time.Second

// rtcpTicks is a randomised report interval, in clock ticks.
func rtcpTicks(mean time.Duration) uint64 {
	return uint64(float64(mean/clockTick) * (0.5 + rand.Float64()))
}

// tick is called by the engine clock at the ticks it asks for (every
// 10 ms at most); it sends a frame each time a ptime has elapsed on the
// clock: playback when there is one, else keep-alive (comfort noise or
// silence), so the caller's phone never sees a dead stream. It also sends
// the RTCP reports when due and checks the caller's inactivity. It
// returns the next tick at which any of that is due: a session that sends
// one comfort noise packet in 8 frames is not visited in between.
func (s *Session) tick(idx uint64) uint64 {
	s.txMu.Lock()
	if s.stopped {
		s.txMu.Unlock()
		return math.MaxUint64
	}
	if !s.started {
		s.started, s.nextTick = true, idx
		s.rtcpNext = idx + rtcpTicks(s.rtcpMean/2)
	}
	report := false
	if idx >= s.nextTick {
		behind := (idx-s.nextTick)/s.tpp + 1
		// Frames that send nothing (comfort noise not yet due, or on hold)
		// only move the timestamp on: passed in one step.
		if q := min(s.quietFrames(), behind); q > 0 {
			s.passQuiet(q)
			behind -= q
		}
		// After a stall (the clock lost ticks), send at most 2 frames at
		// once and let the timestamp jump over the rest.
		const maxBurst = 2
		if behind > maxBurst {
			skip := behind - maxBurst
			s.nextTick += skip * s.tpp
			s.pk.hdr.Timestamp += uint32(skip) * uint32(s.spp)
		}
		for idx >= s.nextTick {
			s.sendFrame()
			s.nextTick += s.tpp
		}
	}
	if idx >= s.rtcpNext {
		s.rtcpNext, report = idx+rtcpTicks(s.rtcpMean), true
	}
	next := s.rtcpNext
	if q := s.quietFrames(); q != math.MaxUint64 {
		next = min(next, s.nextTick+q*s.tpp)
	}
	s.txMu.Unlock()
	if report {
		s.sendReport(time.Now(), false)
	}
	return min(next, s.checkInactive(idx))
}

// quietFrames is how many of the coming frames send nothing: those before
// the next comfort noise packet, every one on hold (MaxUint64), none while
// playing or keeping alive with silence. Called with txMu.
func (s *Session) quietFrames() uint64 {
	switch {
	case s.playing:
		return 0
	case !s.remote.IsValid():
		return math.MaxUint64
	case s.txCN != 0:
		return uint64(s.cnWait)
	}
	return 0
}

// passQuiet moves over n quiet frames (quietFrames): the timestamp keeps
// pace with the clock (RFC 3550 §5.1), the comfort noise count goes down.
// Called with txMu.
func (s *Session) passQuiet(n uint64) {
	s.nextTick += n * s.tpp
	s.pk.hdr.Timestamp += uint32(n) * uint32(s.spp)
	if s.remote.IsValid() {
		s.cnWait -= int(n)
	}
}

// sendFrame sends the next frame of the playback, or a keep-alive packet
// when idle. The RTP timestamp keeps pace with the clock either way
// (RFC 3550 §5.1). Called with txMu.
func (s *Session) sendFrame() {
	if s.playing {
		if s.pos < len(s.play) {
			end := min(s.pos+s.spp, len(s.play))
			frame := s.play[s.pos:end]
			s.pos = end
			if s.remote.IsValid() {
				s.sendG711(frame, s.marker)
				s.marker = false // RFC 3551 §4.1: marker on the first packet of a talkspurt
			}
		}
		if s.pos >= len(s.play) {
			s.play, s.pos, s.playing = nil, 0, false
			s.pushEvent(Event{Kind: EventPlayDone})
		}
	} else if s.remote.IsValid() {
		s.keepAlive()
	}
	s.pk.hdr.Timestamp += uint32(s.spp)
}

// keepAlive sends comfort noise (RFC 3389) every cnInterval when it was
// negotiated, else a G.711 silence frame every ptime. Called with txMu.
func (s *Session) keepAlive() {
	var ok bool
	if s.txCN != 0 {
		if s.cnWait > 0 {
			s.cnWait--
			return
		}
		s.cnWait = s.cnEvery - 1
		ok = s.send(s.pk.buildCN(s.txCN, cnLevel))
	} else {
		ok = s.sendG711(nil, false)
	}
	if ok {
		s.keepalive.Add(1)
	}
}

// sendG711 sends one frame of pcm, padded with silence to a packet. On
// the shared port without SRTP the packet is built in the send batch
// itself. Called with txMu.
func (s *Session) sendG711(pcm []int16, marker bool) bool {
	if s.mux == nil || s.srtp.Load() != nil {
		return s.send(s.pk.build(s.txCodec, pcm, s.spp, marker))
	}
	n := min(s.spp, MaxPayload) // as build pads or cuts
	s.mux.queueFrame(s.pk, s.txCodec, pcm, n, marker, s.remote)
	s.pk.hdr.SequenceNumber++
	s.counted(n)
	return true
}

// counted counts one packet sent with its payload octets.
func (s *Session) counted(octets int) {
	s.sent.Add(1)
	s.octets.Add(uint64(octets))
}

// send writes one RTP packet to the remote and advances the sequence
// number. Called with txMu.
func (s *Session) send(b []byte) bool {
	s.pk.hdr.SequenceNumber++
	octets := len(b) - rtpHeaderLen
	b, ok := s.encryptRTP(b)
	if !ok {
		return false
	}
	if s.mux != nil {
		s.mux.queue(b, s.remote) // sent with the tick's batch
	} else if _, err := s.conn.WriteToUDPAddrPort(b, s.remote); err != nil {
		return false
	}
	s.counted(octets)
	return true
}

// txPtime is the send ptime (for tests).
func (s *Session) txPtime() time.Duration {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	return time.Duration(s.tpp) * clockTick
}
