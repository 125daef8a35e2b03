package call

import (
	"testing"
	"time"

	"github.com/vmserver/voicemail/media"
)

func TestMemRecorder(t *testing.T) {
	r := newMemRecorder(1, 0, 0) // 1 s limit
	loud := media.Tone(700, 200*time.Millisecond, 0.5)
	r.WriteFrame(loud)
	r.WriteFrame(make([]int16, 800)) // 100 ms of silence, trimmed at the end
	if ms := r.finish(); ms != 200 {
		t.Fatalf("duration %d ms, want 200 (trailing silence trimmed)", ms)
	}
	r.WriteFrame(loud) // after finish: ignored
	if n := len(r.samples()); n != 1600 {
		t.Fatalf("%d samples after finish", n)
	}

	r = newMemRecorder(1, 0, 0)
	for i := 0; i < 6; i++ {
		r.WriteFrame(loud)
	}
	select {
	case e := <-r.ended:
		if e != endMax {
			t.Fatalf("ended %v, want max", e)
		}
	default:
		t.Fatal("no end at the limit")
	}
	if n := len(r.samples()); n != media.SampleRate {
		t.Fatalf("%d samples, want the 1 s limit", n)
	}

	r = newMemRecorder(10, 1, 0) // 1 s of silence ends it
	r.WriteFrame(loud)
	for i := 0; i < 60; i++ {
		r.WriteFrame(make([]int16, 160))
	}
	if e := <-r.ended; e != endSilence {
		t.Fatalf("ended %v, want silence", e)
	}
	if ms := r.finish(); ms != 200 {
		t.Fatalf("duration %d ms after silence, want 200", ms)
	}
}

// TestTrailingTail: trailing silence is trimmed down to the tail, never
// below it, and voice is never trimmed.
func TestTrailingTail(t *testing.T) {
	loud := media.Tone(700, 200*time.Millisecond, 0.5)
	for _, tc := range []struct {
		name      string
		tailMS    int
		toneMS    int
		silenceMS int // trailing silence written after the tone
		wantMS    int64
	}{
		{"no tail, all silence trimmed", 0, 200, 300, 200},
		{"tail kept from a longer silence", 500, 200, 1500, 700},
		{"silence shorter than the tail kept whole", 500, 200, 300, 500},
		{"silence equal to the tail kept", 500, 200, 500, 700},
		{"no trailing silence", 500, 200, 0, 200},
		{"only silence: nothing to keep", 500, 0, 1000, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newMemRecorder(10, 0, tc.tailMS)
			loud := loud[:tc.toneMS*8]
			if len(loud) > 0 {
				r.WriteFrame(loud)
			}
			for i := 0; i < tc.silenceMS/20; i++ {
				r.WriteFrame(make([]int16, 160))
			}
			if ms := r.finish(); ms != tc.wantMS {
				t.Fatalf("duration %d ms, want %d", ms, tc.wantMS)
			}
			// Content: the tone is intact and what follows it is silence.
			got := r.samples()
			for i, v := range loud {
				if got[i] != v {
					t.Fatalf("sample %d = %d, want the tone's %d", i, got[i], v)
				}
			}
			for i := len(loud); i < len(got); i++ {
				if got[i] != 0 {
					t.Fatalf("sample %d = %d after the tone, want silence", i, got[i])
				}
			}
		})
	}
}
