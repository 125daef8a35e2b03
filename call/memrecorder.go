package call

import (
	"sync"

	"github.com/vmserver/voicemail/media"
)

// memRecorder keeps a greeting recording in memory until it is accepted.
// WriteFrame runs on the media receive goroutine.
type memRecorder struct {
	mu sync.Mutex
	limits
	pcm []int16
}

func newMemRecorder(maxSeconds, silenceSeconds, tailMS int) *memRecorder {
	capacity := maxSeconds * media.SampleRate
	if capacity <= 0 {
		capacity = 60 * media.SampleRate
	}
	return &memRecorder{
		pcm:    make([]int16, 0, capacity), // no growth per frame
		limits: newLimits(maxSeconds, silenceSeconds, tailMS),
	}
}

// WriteFrame implements media.FrameSink.
func (r *memRecorder) WriteFrame(pcm []int16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	pcm = pcm[:r.fits(len(pcm), int64(len(r.pcm)))]
	r.pcm = append(r.pcm, pcm...)
	r.check(pcm, int64(len(r.pcm)))
}

// finish stops the recording, trims trailing silence beyond the tail and
// returns its length.
func (r *memRecorder) finish() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	trim := r.trailingTrim(int64(len(r.pcm)))
	r.pcm = r.pcm[:int64(len(r.pcm))-trim]
	return int64(len(r.pcm)) * 1000 / media.SampleRate
}

func (r *memRecorder) samples() []int16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pcm
}
