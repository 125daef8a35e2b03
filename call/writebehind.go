package call

import (
	"io"
	"sync"
)

// writeBehind writes a recording's file from the runtime's few writer
// goroutines (writers), so that whoever delivers the frames (the shared
// RTP port's one reader, for thousands of calls) never waits on the disk.
// Under a burst of message commits, each with its fsync, ext4 holds plain
// appends for milliseconds while it commits its journal; a reader held
// that long is a socket buffer overflowing and frames lost
// (docs/performance.md).
//
// Writes keep their order: a file is with at most one writer at a time,
// and Seek, Truncate and wait first let its queue empty. A failed write is
// kept and returned by every later call, and passed to failed: the
// recorder stops on a full disk with what reached the file intact.
type writeBehind struct {
	f  io.WriteSeeker
	ws *writers
	// failed, when set, hears of the first failed write at once: a
	// recording must stop on a full disk when it happens, not at its next
	// write, which may never come.
	failed func(error)

	mu    sync.Mutex
	moved sync.Cond // the queue shrank, a write failed, or the queue is done
	queue []*[]byte
	busy  bool // the file is with the writers (queued or being written)
	err   error
}

// writeBehindQueue bounds what one file may have queued: 4 s of a PCM16
// recording. Past it the caller waits, as it would without the queue.
const writeBehindQueue = 8

func newWriteBehind(f io.WriteSeeker, ws *writers) *writeBehind {
	w := &writeBehind{f: f, ws: ws}
	w.moved.L = &w.mu
	return w
}

// Write queues a copy of p. Lock order: a file's mu, then its writers'.
func (w *writeBehind) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.err == nil && len(w.queue) >= writeBehindQueue {
		w.moved.Wait()
	}
	if w.err != nil {
		return 0, w.err
	}
	b := w.ws.buf()
	*b = append((*b)[:0], p...)
	w.queue = append(w.queue, b)
	if !w.busy {
		w.busy = true
		w.ws.add(w)
	}
	return len(p), nil
}

// drain writes the queue until it is empty; a writer goroutine runs it.
func (w *writeBehind) drain() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.queue) > 0 {
		b := w.queue[0]
		w.queue = w.queue[:copy(w.queue, w.queue[1:])]
		w.moved.Broadcast() // room in the queue
		if w.err == nil {
			w.mu.Unlock()
			_, err := w.f.Write(*b)
			w.mu.Lock()
			if err != nil && w.err == nil {
				w.err = err
				if w.failed != nil {
					// On a goroutine of its own: the caller may hold
					// its lock while it waits here for room in the queue.
					go w.failed(err)
				}
			}
		}
		w.ws.release(b)
	}
	w.busy = false
	w.moved.Broadcast()
}

// wait returns once every queued write is done, with the first error.
func (w *writeBehind) wait() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.busy {
		w.moved.Wait()
	}
	return w.err
}

// Seek seeks once the queued writes are done.
func (w *writeBehind) Seek(offset int64, whence int) (int64, error) {
	if err := w.wait(); err != nil {
		return 0, err
	}
	return w.f.Seek(offset, whence)
}

// Truncate cuts the file once the queued writes are done, when it can be
// cut (media.WAVWriter.Truncate).
func (w *writeBehind) Truncate(n int64) error {
	if err := w.wait(); err != nil {
		return err
	}
	if t, ok := w.f.(interface{ Truncate(int64) error }); ok {
		return t.Truncate(n)
	}
	return nil
}

// writers are the goroutines that write the queued files, at most
// maxWriters at once. They start when a file is queued and none is free, and end when
// nothing is queued: no goroutine per recording, none while idle, and a
// file stuck on the disk holds one writer, not the others.
type writers struct {
	mu      sync.Mutex
	ready   []*writeBehind // files waiting for a writer: ready[head:], in order
	head    int
	running int
	free    []*[]byte // the copies' buffers, shared by every file: a call keeps none between its writes
}

// maxFreeBufs bounds the buffers kept for reuse (2 MiB); a burst beyond
// it leaves its extra buffers to the collector.
const maxFreeBufs = 256

// buf returns an empty buffer for the copy of one write: a WAV writer's
// half second of PCM16 and a header fit without growing it.
func (ws *writers) buf() *[]byte {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if n := len(ws.free); n > 0 {
		b := ws.free[n-1]
		ws.free[n-1] = nil
		ws.free = ws.free[:n-1]
		return b
	}
	b := make([]byte, 0, 8<<10+64)
	return &b
}

func (ws *writers) release(b *[]byte) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if len(ws.free) < maxFreeBufs {
		ws.free = append(ws.free, b)
	}
}

// maxWriters: several, so that files keep being written while a few wait
// on the journal; few, since each blocked one is an OS thread.
const maxWriters = 4

func newWriters() *writers { return &writers{} }

func (ws *writers) add(w *writeBehind) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.ready = append(ws.ready, w)
	if ws.running < maxWriters {
		ws.running++
		go ws.run()
	}
}

func (ws *writers) run() {
	for {
		ws.mu.Lock()
		if ws.head == len(ws.ready) {
			ws.ready, ws.head = ws.ready[:0], 0 // the array is reused
			ws.running--
			ws.mu.Unlock()
			return
		}
		w := ws.ready[ws.head]
		ws.ready[ws.head] = nil
		ws.head++
		if ws.head >= 64 && 2*ws.head >= len(ws.ready) {
			// Under a steady backlog the queue is never empty: move
			// what is left to the front rather than grow forever.
			n := copy(ws.ready, ws.ready[ws.head:])
			clear(ws.ready[n:])
			ws.ready, ws.head = ws.ready[:n], 0
		}
		ws.mu.Unlock()
		w.drain()
	}
}
