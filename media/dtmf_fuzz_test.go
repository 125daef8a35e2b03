package media

import (
	"encoding/binary"
	"testing"
	"time"
)

// FuzzRFC4733 feeds a sequence of telephone-event packets (8 bytes each:
// SSRC low byte, timestamp low byte, a 4-byte RFC 4733 payload, a time
// step in ms, a flags byte) to DTMFDetector: only valid keys come out, and
// a retransmission of the packet just seen (same SSRC and timestamp, at
// once) never reports a key.
func FuzzRFC4733(f *testing.F) {
	f.Add([]byte{1, 10, 5, 0x0a, 0, 160, 0, 0, 1, 10, 5, 0x8a, 1, 64, 20, 0, 1, 10, 5, 0x8a, 1, 64, 20, 0})
	f.Add([]byte{1, 10, 11, 0, 0, 0, 0, 0, 1, 20, 11, 0, 0, 0, 250, 0, 2, 20, 11, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 1, 16, 0, 0, 0, 0, 0, 1, 2, 255, 0, 0, 0, 0, 0, 1, 3, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var d DTMFDetector
		now := time.Unix(1e9, 0)
		for len(b) >= 8 {
			p := b[:8]
			b = b[8:]
			ssrc, ts := uint32(p[0]), uint32(p[1])*160
			payload := p[2:6]
			if p[7]&1 == 1 {
				payload = payload[:(p[7]>>1)%4] // short payloads too
			}
			now = now.Add(time.Duration(p[6]) * 10 * time.Millisecond)
			k, ok := d.Feed(ssrc, ts, payload, now)
			if ok && (!ValidDigit(k) || len(payload) < 4 || payload[0] > 15) {
				t.Fatalf("key %q from payload %x", k, payload)
			}
			if ok && k != dtmfEventRunes[payload[0]] {
				t.Fatalf("event %d reported as %q", payload[0], k)
			}
			if _, again := d.Feed(ssrc, ts, payload, now); again {
				t.Fatalf("a retransmission reported a key again (ssrc %d ts %d)", ssrc, ts)
			}
		}
	})
}

// FuzzInbandDTMF feeds arbitrary 16-bit audio to the in-band detector in
// 20 ms frames and, on a second detector, in chunks of fuzzed sizes that
// never complete two blocks in one call: both must report the same keys,
// and only valid ones.
func FuzzInbandDTMF(f *testing.F) {
	tonePair := func(key rune, ms int) []byte {
		pcm := DTMFTone(key, time.Duration(ms)*time.Millisecond)
		out := make([]byte, 2*len(pcm))
		for i, s := range pcm {
			binary.LittleEndian.PutUint16(out[2*i:], uint16(s))
		}
		return out
	}
	f.Add([]byte{7, 100}, tonePair('1', 100))
	f.Add([]byte{160}, append(tonePair('#', 60), tonePair('8', 80)...))
	f.Add([]byte{1, 2, 3}, make([]byte, 960))
	f.Fuzz(func(t *testing.T, sizes, audio []byte) {
		pcm := make([]int16, len(audio)/2)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(audio[2*i:]))
		}
		var frames, chunks []rune
		var a, c InbandDetector
		for i := 0; i < len(pcm); i += FrameSamples {
			if k, ok := a.Feed(pcm[i:min(i+FrameSamples, len(pcm))]); ok {
				if !ValidDigit(k) {
					t.Fatalf("invalid key %q", k)
				}
				frames = append(frames, k)
			}
		}
		for i, j := 0, 0; i < len(pcm); j++ {
			n := FrameSamples
			if len(sizes) > 0 {
				n = 1 + int(sizes[j%len(sizes)])%FrameSamples
			}
			if k, ok := c.Feed(pcm[i:min(i+n, len(pcm))]); ok {
				chunks = append(chunks, k)
			}
			i += n
		}
		if string(frames) != string(chunks) {
			t.Fatalf("keys %q in 20 ms frames, %q in other chunks", string(frames), string(chunks))
		}
	})
}
