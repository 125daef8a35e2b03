package media

import (
	"testing"
	"time"
)

func TestSessionSeek(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	s, err := e.NewSession(SessionConfig{Codec: PCMU})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Seek(100) {
		t.Fatal("Seek without a playback reported true")
	}
	if _, ok := s.PlayPosition(); ok {
		t.Fatal("PlayPosition without a playback reported true")
	}
	pcm := make([]int16, 10*SampleRate) // 10 s: does not end during the test
	s.Play(pcm)
	p0, ok := s.PlayPosition()
	if !ok {
		t.Fatal("not playing")
	}
	if !s.Seek(3 * SampleRate) {
		t.Fatal("Seek reported no playback")
	}
	if p, _ := s.PlayPosition(); p < p0+3*SampleRate || p > p0+3*SampleRate+SampleRate/2 {
		t.Fatalf("after +3 s at %d, was %d", p, p0)
	}
	s.Seek(-100 * SampleRate) // clamped to the start
	if p, _ := s.PlayPosition(); p > SampleRate/2 {
		t.Fatalf("after rewinding past the start at %d", p)
	}
	if n := testing.AllocsPerRun(100, func() { s.Seek(1); s.Seek(-1) }); n != 0 {
		t.Fatalf("Seek allocates %v times", n)
	}
	// Skipping past the end ends the playback like running out.
	s.Seek(len(pcm) * 2)
	deadline := time.After(2 * time.Second)
	for {
		select {
		case ev := <-s.Events():
			if ev.Kind == EventPlayDone {
				if s.Playing() {
					t.Fatal("still playing after EventPlayDone")
				}
				return
			}
		case <-deadline:
			t.Fatal("no EventPlayDone after skipping past the end")
		}
	}
}
