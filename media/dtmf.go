package media

import "time"

// dtmfEventRunes maps RFC 4733 §3.2 event codes 0-15 to keys.
var dtmfEventRunes = [16]rune{'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D'}

// dtmfKeyTTL is how long an event key is remembered after its last packet.
// It only has to outlive the retransmissions of one event (RFC 4733 §2.5.1.4:
// the end packet is sent three times, 50 ms apart at most).
const dtmfKeyTTL = 2 * time.Second

type dtmfKey struct {
	ssrc, ts uint32
	seen     time.Time
	used     bool
}

// DTMFDetector turns RFC 4733 telephone-event packets into key presses.
//
// An event is identified by (SSRC, RTP timestamp) (RFC 4733 §2.5.1.2: all
// packets of one event carry the timestamp of its start), so each key is
// reported once, on the first packet seen of its event: a start packet, a
// continuation, a first packet of duration 0, or, if everything before it
// was lost, an end packet. Continuations and the (up to three) end
// retransmissions share the timestamp and are ignored. The same key pressed
// twice has two timestamps and is reported twice. The detector remembers a
// few recent events, so a retransmission that arrives after the next event
// started does not report its key again.
//
// The zero value is ready to use. It is not safe for concurrent use and
// does not allocate.
type DTMFDetector struct {
	recent [8]dtmfKey
	next   int
}

// Feed takes the SSRC, timestamp and payload of one telephone-event packet
// and the time it arrived. It returns the key when this packet starts a new
// event. Payloads shorter than 4 bytes and events above 15 (tones, flash)
// are ignored.
func (d *DTMFDetector) Feed(ssrc uint32, timestamp uint32, payload []byte, now time.Time) (digit rune, ok bool) {
	// RFC 4733 §2.3: event(8) E(1) R(1) volume(6) duration(16).
	if len(payload) < 4 {
		return 0, false
	}
	ev := payload[0]
	if ev >= 16 {
		return 0, false
	}
	// The E bit and duration do not matter: whatever packet of an event
	// comes first (even one of duration 0) reports it.
	for i := range d.recent {
		k := &d.recent[i]
		if k.used && k.ssrc == ssrc && k.ts == timestamp && now.Sub(k.seen) < dtmfKeyTTL {
			k.seen = now // a long press keeps its key alive
			return 0, false
		}
	}
	d.recent[d.next] = dtmfKey{ssrc: ssrc, ts: timestamp, seen: now, used: true}
	d.next = (d.next + 1) % len(d.recent)
	return dtmfEventRunes[ev], true
}

// Reset forgets all events (for example after a re-INVITE).
func (d *DTMFDetector) Reset() { *d = DTMFDetector{} }

// ValidDigit reports whether r is a DTMF key (0-9, *, #, A-D).
func ValidDigit(r rune) bool {
	for _, k := range dtmfEventRunes {
		if k == r {
			return true
		}
	}
	return false
}
