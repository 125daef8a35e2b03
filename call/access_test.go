package call

import (
	"testing"
	"time"

	"github.com/vmserver/voicemail/media"
)

func TestMemRecorder(t *testing.T) {
	r := newMemRecorder(1, 0) // 1 s limit
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

	r = newMemRecorder(1, 0)
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

	r = newMemRecorder(10, 1) // 1 s of silence ends it
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
