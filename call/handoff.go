package call

import (
	"sync"

	"github.com/vmserver/voicemail/media"
)

// handoffSink takes a recording's frames before its file exists and
// passes them, then every later frame, to the recorder once it does.
// WriteFrame runs on the media receive goroutine.
type handoffSink struct {
	mu     sync.Mutex
	buf    []int16
	frame  int // samples per frame as received, for the hand-over
	target media.FrameSink
}

func (h *handoffSink) WriteFrame(pcm []int16) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.target != nil {
		h.target.WriteFrame(pcm)
		return
	}
	if h.frame == 0 {
		h.frame = len(pcm)
	}
	h.buf = append(h.buf, pcm...)
}

// WriteG711 passes the codes on once the recorder is there and takes
// them; before, the frame is buffered decoded (WriteFrame).
func (h *handoffSink) WriteG711(c media.Codec, codes []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.target.(media.G711Sink)
	return ok && g.WriteG711(c, codes)
}

// handOver writes what was buffered to t, frame by frame as it came (the
// recorder's limits count frames), and sends every later frame to t.
func (h *handoffSink) handOver(t media.FrameSink) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.buf) > 0 {
		n := min(h.frame, len(h.buf))
		t.WriteFrame(h.buf[:n])
		h.buf = h.buf[n:]
	}
	h.buf, h.target = nil, t
}
