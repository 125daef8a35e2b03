package media

import (
	"bytes"
	"testing"
	"time"
)

func TestSilenceDetector(t *testing.T) {
	loud := Tone(440, 20*time.Millisecond, 0.3)
	quiet := Tone(440, 20*time.Millisecond, 0.002) // ~ -54 dBFS
	zero := Silence(20 * time.Millisecond)
	for _, tc := range []struct {
		name   string
		frames [][]int16
		want   []int64
	}{
		{"silence accumulates", [][]int16{zero, zero, quiet}, []int64{160, 320, 480}},
		{"loud resets", [][]int16{zero, loud, zero}, []int64{160, 0, 160}},
		{"loud first", [][]int16{loud, loud}, []int64{0, 0}},
		{"empty frame keeps run", [][]int16{zero, {}}, []int64{160, 160}},
		{"odd sizes", [][]int16{zero[:80], zero[:40]}, []int64{80, 120}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewSilenceDetector(0)
			for i, f := range tc.frames {
				if got := d.Feed(f); got != tc.want[i] {
					t.Fatalf("frame %d: run %d, want %d", i, got, tc.want[i])
				}
			}
			if d.SilentRun() != tc.want[len(tc.want)-1] {
				t.Fatal("SilentRun disagrees with Feed")
			}
			d.Reset()
			if d.SilentRun() != 0 {
				t.Fatal("Reset kept the run")
			}
		})
	}
}

func TestSilenceDetectorThreshold(t *testing.T) {
	frame := make([]int16, 160)
	for i := range frame {
		frame[i] = 1000
		if i%2 == 1 {
			frame[i] = -1000
		}
	}
	if NewSilenceDetector(2000).Feed(frame) != 160 {
		t.Error("frame under a high threshold should be silent")
	}
	if NewSilenceDetector(500).Feed(frame) != 0 {
		t.Error("frame over a low threshold should be loud")
	}
	d := NewSilenceDetector(0)
	if n := testing.AllocsPerRun(100, func() { d.Feed(frame) }); n != 0 {
		t.Errorf("allocs = %v", n)
	}
}

// TestSilenceDetectorG711: FeedG711 of codes decides as Feed of the
// samples they decode to, for every code of both laws and at the
// threshold's edge.
func TestSilenceDetectorG711(t *testing.T) {
	for _, c := range []Codec{PCMU, PCMA} {
		frames := [][]byte{}
		for code := range 256 {
			frames = append(frames, bytes.Repeat([]byte{byte(code)}, 160))
		}
		mixed := make([]byte, 160)
		for i := range mixed {
			mixed[i] = byte(i * 37)
		}
		frames = append(frames, mixed, nil)
		a, b := NewSilenceDetector(0), NewSilenceDetector(0)
		for i, f := range frames {
			pcm := make([]int16, len(f))
			c.Decode(pcm, f)
			if got, want := a.FeedG711(c, f), b.Feed(pcm); got != want {
				t.Fatalf("%v frame %d: run %d, want %d", c, i, got, want)
			}
		}
	}
}
