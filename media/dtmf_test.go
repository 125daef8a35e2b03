package media

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// ev builds an RFC 4733 payload.
func ev(event byte, end bool, duration uint16) []byte {
	b := []byte{event, 10, byte(duration >> 8), byte(duration)}
	if end {
		b[1] |= 0x80
	}
	return b
}

func TestDTMFDetector(t *testing.T) {
	type pkt struct {
		ssrc    uint32
		ts      uint32
		payload []byte
		after   time.Duration // since the previous packet
	}
	const s1, s2 = 0x1111, 0x2222
	press := func(ssrc, ts uint32, event byte) []pkt {
		// start, 2 continuations, 3 end packets (RFC 4733 §2.5.1.4)
		return []pkt{
			{ssrc, ts, ev(event, false, 160), 20 * time.Millisecond},
			{ssrc, ts, ev(event, false, 320), 20 * time.Millisecond},
			{ssrc, ts, ev(event, false, 480), 20 * time.Millisecond},
			{ssrc, ts, ev(event, true, 640), 20 * time.Millisecond},
			{ssrc, ts, ev(event, true, 640), 0},
			{ssrc, ts, ev(event, true, 640), 0},
		}
	}
	cat := func(ps ...[]pkt) (out []pkt) {
		for _, p := range ps {
			out = append(out, p...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		pkts []pkt
		want string
	}{
		{"one press", press(s1, 1000, 5), "5"},
		{"all keys", cat(press(s1, 0, 0), press(s1, 1, 1), press(s1, 2, 9), press(s1, 3, 10), press(s1, 4, 11),
			press(s1, 5, 12), press(s1, 6, 13), press(s1, 7, 14), press(s1, 8, 15)), "019*#ABCD"},
		{"repeated digit", cat(press(s1, 1000, 1), press(s1, 2000, 1)), "11"},
		{"first packet duration 0", []pkt{{s1, 5, ev(3, false, 0), 0}, {s1, 5, ev(3, false, 160), 0}}, "3"},
		{"only end packets", []pkt{{s1, 5, ev(7, true, 800), 0}, {s1, 5, ev(7, true, 800), 0}, {s1, 5, ev(7, true, 800), 0}}, "7"},
		{"late end retransmission", cat(press(s1, 1000, 1), press(s1, 2000, 2)[:2],
			[]pkt{{s1, 1000, ev(1, true, 640), 0}}, press(s1, 2000, 2)[2:]), "12"},
		{"new ssrc same timestamp", cat(press(s1, 1000, 4), press(s2, 1000, 4)), "44"},
		{"events above 15 ignored", []pkt{{s1, 1, ev(16, false, 0), 0}, {s1, 2, ev(70, false, 0), 0}}, ""},
		{"short payload ignored", []pkt{{s1, 1, []byte{1, 2}, 0}}, ""},
		{"same timestamp long after", []pkt{{s1, 9, ev(8, true, 1), 0}, {s1, 9, ev(8, false, 1), 5 * time.Second}}, "88"},
		{"long press stays one digit", func() []pkt {
			var ps []pkt
			for i := 0; i < 200; i++ { // 4 s of continuations
				ps = append(ps, pkt{s1, 77, ev(6, false, uint16(i*160)), 20 * time.Millisecond})
			}
			return ps
		}(), "6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d DTMFDetector
			now := time.Unix(1000, 0)
			var got strings.Builder
			for _, p := range tc.pkts {
				now = now.Add(p.after)
				if r, ok := d.Feed(p.ssrc, p.ts, p.payload, now); ok {
					got.WriteRune(r)
				}
			}
			if got.String() != tc.want {
				t.Fatalf("digits %q, want %q", got.String(), tc.want)
			}
		})
	}
}

func TestDTMFDetectorNoAlloc(t *testing.T) {
	var d DTMFDetector
	p := ev(1, false, 160)
	now := time.Now()
	var ts uint32
	if n := testing.AllocsPerRun(100, func() { ts += 800; d.Feed(1, ts, p, now) }); n != 0 {
		t.Fatalf("allocs = %v", n)
	}
}

func TestValidDigit(t *testing.T) {
	for _, r := range "0123456789*#ABCD" {
		if !ValidDigit(r) {
			t.Errorf("%q not valid", r)
		}
	}
	for _, r := range "aE/ x" {
		if ValidDigit(r) {
			t.Errorf("%q valid", r)
		}
	}
}

// feedFrames runs pcm through d in 20 ms frames and returns the keys.
func feedFrames(d *InbandDetector, pcm []int16) string {
	var got strings.Builder
	for i := 0; i < len(pcm); i += FrameSamples {
		if r, ok := d.Feed(pcm[i:min(i+FrameSamples, len(pcm))]); ok {
			got.WriteRune(r)
		}
	}
	return got.String()
}

func concat(parts ...[]int16) (out []int16) {
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// dualTone mixes a row and column tone with the given amplitudes.
func dualTone(row, col float64, d time.Duration, ar, ac float64) []int16 {
	a := Tone(row, d, ar)
	b := Tone(col, d, ac)
	for i := range a {
		a[i] = clamp16(float64(a[i]) + float64(b[i]))
	}
	return a
}

func TestInbandDetector(t *testing.T) {
	gap := Silence(60 * time.Millisecond)
	ms := time.Millisecond
	rng := rand.New(rand.NewPCG(1, 2))
	noise := func(d time.Duration, amp float64) []int16 {
		out := make([]int16, samplesFor(d))
		for i := range out {
			out[i] = int16(rng.NormFloat64() * amp)
		}
		return out
	}
	// Speech-like: a 150 Hz voice with harmonics to 3.4 kHz (many land near
	// DTMF frequencies), pitch wobble and noise.
	speech := func(d time.Duration) []int16 {
		out := noise(d, 300)
		for i := range out {
			x := float64(i) / SampleRate
			f0 := 150 + 20*sinTest(3*x)
			var v float64
			for h := 1; h*150 < 3400; h++ {
				v += 3000 / float64(h) * sinTest(float64(h)*f0*x)
			}
			out[i] = clamp16(float64(out[i]) + v)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		pcm  []int16
		want string
	}{
		{"every key", func() []int16 {
			var p []int16
			for _, k := range "123A456B789C*0#D" {
				p = concat(p, DTMFTone(k, 100*ms), gap)
			}
			return p
		}(), "123A456B789C*0#D"},
		{"long press once", DTMFTone('5', 2*time.Second), "5"},
		{"repeat after gap", concat(DTMFTone('7', 80*ms), gap, DTMFTone('7', 80*ms)), "77"},
		{"40 ms is enough", concat(gap, DTMFTone('9', 40*ms), gap), "9"},
		{"20 ms is not", concat(gap, DTMFTone('9', 20*ms), gap), ""},
		{"key change without gap", concat(DTMFTone('1', 60*ms), DTMFTone('2', 60*ms)), "12"},
		{"quiet but valid", dualTone(941, 1336, 100*ms, 0.01, 0.01), "0"},
		{"too quiet", dualTone(941, 1336, 100*ms, 0.002, 0.002), ""},
		{"normal twist 6 dB ok", dualTone(697, 1209, 100*ms, 0.2, 0.1), "1"},
		{"twist 12 dB rejected", dualTone(697, 1209, 100*ms, 0.4, 0.1), ""},
		{"reverse twist 6 dB rejected", dualTone(697, 1209, 100*ms, 0.1, 0.2), ""},
		{"single tone", Tone(770, 200*ms, 0.5), ""},
		{"dial tone 350+440", dualTone(350, 440, 500*ms, 0.2, 0.2), ""},
		{"white noise", noise(time.Second, 5000), ""},
		{"speech", speech(2 * time.Second), ""},
		{"tone in noise, SNR 12 dB", withNoise(DTMFTone('4', 100*ms), noise(100*ms, 2000)), "4"},
		{"tone under noise, SNR -6 dB", withNoise(DTMFTone('4', 100*ms), noise(100*ms, 16000)), ""},
		{"odd frame sizes", DTMFTone('#', 100*ms), "#"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d InbandDetector
			var got string
			if tc.name == "odd frame sizes" {
				var b strings.Builder
				for i := 0; i < len(tc.pcm); i += 37 {
					if r, ok := d.Feed(tc.pcm[i:min(i+37, len(tc.pcm))]); ok {
						b.WriteRune(r)
					}
				}
				got = b.String()
			} else {
				got = feedFrames(&d, tc.pcm)
			}
			if got != tc.want {
				t.Fatalf("keys %q, want %q", got, tc.want)
			}
		})
	}
}

func TestInbandThroughG711(t *testing.T) {
	// The tones survive µ-law and A-law, as they would arrive over RTP.
	for _, c := range []Codec{PCMU, PCMA} {
		p := concat(DTMFTone('8', 100*time.Millisecond), Silence(60*time.Millisecond), DTMFTone('*', 100*time.Millisecond))
		enc := make([]byte, len(p))
		c.Encode(enc, p)
		c.Decode(p, enc)
		var d InbandDetector
		if got := feedFrames(&d, p); got != "8*" {
			t.Errorf("%v: keys %q", c, got)
		}
	}
}

func TestInbandNoAlloc(t *testing.T) {
	var d InbandDetector
	f := DTMFTone('1', 20*time.Millisecond)
	if n := testing.AllocsPerRun(100, func() { d.Feed(f) }); n != 0 {
		t.Fatalf("allocs = %v", n)
	}
}

func withNoise(p, n []int16) []int16 {
	for i := range p {
		p[i] = clamp16(float64(p[i]) + float64(n[i]))
	}
	return p
}
