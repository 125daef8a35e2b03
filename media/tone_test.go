package media

import (
	"math"
	"testing"
	"time"
)

func TestTone(t *testing.T) {
	for _, tc := range []struct {
		freq    float64
		d       time.Duration
		amp     float64
		samples int
		peak    int16
	}{
		{1000, 100 * time.Millisecond, 0.5, 800, 16383},
		{440, 20 * time.Millisecond, 1, 160, 32767},
		{440, 20 * time.Millisecond, 2, 160, 32767}, // clamped
		{440, 0, 1, 0, 0},
		{2000, time.Second, 0, 8000, 0},
	} {
		got := Tone(tc.freq, tc.d, tc.amp)
		if len(got) != tc.samples {
			t.Errorf("Tone(%v,%v,%v): %d samples, want %d", tc.freq, tc.d, tc.amp, len(got), tc.samples)
			continue
		}
		var peak int16
		for _, s := range got {
			peak = max(peak, s)
		}
		if d := int(peak) - int(tc.peak); d > 200 || d < -200 {
			t.Errorf("Tone(%v,%v,%v): peak %d, want ~%d", tc.freq, tc.d, tc.amp, peak, tc.peak)
		}
	}
}

func TestToneFrequency(t *testing.T) {
	// Count zero crossings: 2 per period.
	pcm := Tone(1000, time.Second, 0.5)
	var crossings int
	for i := 1; i < len(pcm); i++ {
		if (pcm[i-1] < 0) != (pcm[i] < 0) {
			crossings++
		}
	}
	if crossings < 1990 || crossings > 2010 {
		t.Fatalf("crossings = %d, want ~2000", crossings)
	}
}

func TestBeep(t *testing.T) {
	b := Beep()
	if len(b) != 2400 {
		t.Fatalf("Beep is %d samples, want 2400 (300 ms)", len(b))
	}
	if b[0] != 0 || math.Abs(float64(b[len(b)-1])) > 100 {
		t.Errorf("Beep edges not ramped: %d %d", b[0], b[len(b)-1])
	}
}

func TestSilence(t *testing.T) {
	s := Silence(60 * time.Millisecond)
	if len(s) != 480 {
		t.Fatalf("len = %d", len(s))
	}
	for _, v := range s {
		if v != 0 {
			t.Fatal("non-zero sample")
		}
	}
}

func TestDTMFTone(t *testing.T) {
	if DTMFTone('x', time.Second) != nil {
		t.Error("invalid digit made a tone")
	}
	if n := len(DTMFTone('#', 100*time.Millisecond)); n != 800 {
		t.Errorf("len = %d", n)
	}
}
