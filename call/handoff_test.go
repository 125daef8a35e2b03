package call

import (
	"slices"
	"testing"
)

type frameLog struct{ frames [][]int16 }

func (f *frameLog) WriteFrame(pcm []int16) { f.frames = append(f.frames, slices.Clone(pcm)) }

// TestHandoffSink: frames taken before the recorder exists reach it first,
// in order and frame by frame, then later frames go straight through.
func TestHandoffSink(t *testing.T) {
	var h handoffSink
	for i := range 3 {
		h.WriteFrame([]int16{int16(i), int16(i), int16(i)})
	}
	var f frameLog
	h.handOver(&f)
	h.WriteFrame([]int16{9, 9, 9})
	want := [][]int16{{0, 0, 0}, {1, 1, 1}, {2, 2, 2}, {9, 9, 9}}
	if len(f.frames) != len(want) {
		t.Fatalf("frames %v, want %v", f.frames, want)
	}
	for i := range want {
		if !slices.Equal(f.frames[i], want[i]) {
			t.Fatalf("frame %d = %v, want %v", i, f.frames[i], want[i])
		}
	}
	var empty handoffSink
	var g frameLog
	empty.handOver(&g)
	if len(g.frames) != 0 {
		t.Fatalf("nothing buffered, %d frames handed over", len(g.frames))
	}
}
