package media

import (
	"math"
	"slices"
	"sync"
	"time"
)

// samplesFor converts a duration to a sample count at 8000 Hz.
func samplesFor(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(int64(d) * SampleRate / int64(time.Second))
}

// Tone returns a sine wave of freqHz lasting d, with amplitude 0..1 of
// full scale (values outside are clamped).
func Tone(freqHz float64, d time.Duration, amplitude float64) []int16 {
	out := make([]int16, samplesFor(d))
	addSine(out, freqHz, amplitude)
	return out
}

// addSine adds a sine of the given frequency and amplitude (0..1) to pcm,
// saturating at full scale.
func addSine(pcm []int16, freqHz, amplitude float64) {
	amplitude = max(0, min(1, amplitude))
	w := 2 * math.Pi * freqHz / SampleRate
	for i := range pcm {
		pcm[i] = clamp16(float64(pcm[i]) + amplitude*32767*math.Sin(w*float64(i)))
	}
}

// Silence returns d worth of zero samples.
func Silence(d time.Duration) []int16 { return make([]int16, samplesFor(d)) }

// Beep is the tone played before recording: 1000 Hz for 300 ms at half
// scale, with 5 ms ramps so it starts and stops without a click. It returns
// a copy of a tone computed once per process (every deposit plays it).
func Beep() []int16 { return slices.Clone(beepPCM()) }

var beepPCM = sync.OnceValue(func() []int16 {
	b := Tone(1000, 300*time.Millisecond, 0.5)
	ramp := samplesFor(5 * time.Millisecond)
	for i := 0; i < ramp; i++ {
		g := float64(i) / float64(ramp)
		b[i] = int16(float64(b[i]) * g)
		b[len(b)-1-i] = int16(float64(b[len(b)-1-i]) * g)
	}
	return b
})

// DTMF frequencies (ITU-T Q.23): rows are the low group, columns the high.
var (
	dtmfRows = [4]float64{697, 770, 852, 941}
	dtmfCols = [4]float64{1209, 1336, 1477, 1633}
	dtmfKeys = [4][4]rune{
		{'1', '2', '3', 'A'},
		{'4', '5', '6', 'B'},
		{'7', '8', '9', 'C'},
		{'*', '0', '#', 'D'},
	}
)

// DTMFTone returns the dual tone of digit (0-9, *, #, A-D) lasting d, each
// component at amplitude 0.25. It returns nil for any other rune. Useful to
// test in-band detection and to send in-band digits.
func DTMFTone(digit rune, d time.Duration) []int16 {
	for r, row := range dtmfKeys {
		for c, k := range row {
			if k == digit {
				out := make([]int16, samplesFor(d))
				addSine(out, dtmfRows[r], 0.25)
				addSine(out, dtmfCols[c], 0.25)
				return out
			}
		}
	}
	return nil
}
