package siptest

import (
	"math"

	"github.com/zaf/g711"
)

// Decode decodes G.711 bytes of the given payload type (PCMU or PCMA).
func Decode(pt uint8, b []byte) []int16 {
	out := make([]int16, len(b))
	for i, x := range b {
		if pt == PCMA {
			out[i] = g711.DecodeAlawFrame(x)
		} else {
			out[i] = g711.DecodeUlawFrame(x)
		}
	}
	return out
}

// Encode encodes linear samples with PCMU or PCMA.
func Encode(pt uint8, pcm []int16) []byte {
	out := make([]byte, len(pcm))
	for i, s := range pcm {
		if pt == PCMA {
			out[i] = g711.EncodeAlawFrame(s)
		} else {
			out[i] = g711.EncodeUlawFrame(s)
		}
	}
	return out
}

// RoundTrip returns pcm as it sounds after G.711 encoding and decoding.
func RoundTrip(pt uint8, pcm []int16) []int16 { return Decode(pt, Encode(pt, pcm)) }

// Tone makes a sine tone at 8000 Hz.
func Tone(freq float64, samples int, amplitude float64) []int16 {
	out := make([]int16, samples)
	for i := range out {
		out[i] = int16(math.Round(amplitude * math.Sin(2*math.Pi*freq*float64(i)/8000)))
	}
	return out
}

// Goertzel returns the power of freq in samples (8000 Hz), normalised by the
// number of samples so that windows of different lengths compare: a full-scale
// sine of amplitude A gives about A*A/4.
func Goertzel(samples []int16, freq float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / 8000
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range samples {
		s0 := float64(x) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	n := float64(len(samples))
	return p / (n * n)
}

// MeanAbs is the mean absolute amplitude.
func MeanAbs(samples []int16) float64 {
	if len(samples) == 0 {
		return 0
	}
	var s float64
	for _, x := range samples {
		s += math.Abs(float64(x))
	}
	return s / float64(len(samples))
}
