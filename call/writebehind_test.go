package call

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/store"
)

// slowFile is an in-memory file whose writes take a while and may start
// failing after a number of bytes; it counts the writes running at once.
type slowFile struct {
	mu      sync.Mutex
	data    []byte
	pos     int64
	left    int64 // bytes before ENOSPC; <0: no limit
	delay   time.Duration
	running int
	maxRun  int
	block   chan struct{} // when set, a write waits for it
}

func (f *slowFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	f.running++
	f.maxRun = max(f.maxRun, f.running)
	block := f.block
	f.mu.Unlock()
	if block != nil {
		<-block
	}
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running--
	n := len(p)
	var err error
	if f.left >= 0 && int64(n) > f.left {
		n, err = int(f.left), &os.PathError{Op: "write", Path: "part", Err: syscall.ENOSPC}
	}
	if f.left >= 0 {
		f.left -= int64(n)
	}
	if end := f.pos + int64(n); end > int64(len(f.data)) {
		f.data = append(f.data, make([]byte, end-int64(len(f.data)))...)
	}
	copy(f.data[f.pos:], p[:n])
	f.pos += int64(n)
	return n, err
}

func (f *slowFile) Seek(off int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case io.SeekStart:
		f.pos = off
	case io.SeekCurrent:
		f.pos += off
	case io.SeekEnd:
		f.pos = int64(len(f.data)) + off
	}
	return f.pos, nil
}

func (f *slowFile) Truncate(n int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data = f.data[:min(n, int64(len(f.data)))]
	return nil
}

func (f *slowFile) bytes() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Clone(f.data)
}

// Writes reach the file in order, one at a time; Seek, Truncate and
// wait see every write before them; the caller's buffer is copied.
func TestWriteBehindOrder(t *testing.T) {
	f := &slowFile{left: -1, delay: 200 * time.Microsecond}
	w := newWriteBehind(f, newWriters())
	var want []byte
	buf := make([]byte, 1000)
	for i := range 40 {
		for j := range buf {
			buf[j] = byte(i + j)
		}
		want = append(want, buf...)
		if n, err := w.Write(buf); n != len(buf) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	// The header rewrite of media.WAVWriter.Close: seek, write, seek back.
	end, err := w.Seek(0, io.SeekCurrent)
	if err != nil || end != int64(len(want)) {
		t.Fatalf("Seek = %d, %v; want %d", end, err, len(want))
	}
	if _, err := w.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("RIFF"))
	copy(want, "RIFF")
	if _, err := w.Seek(end, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := w.Truncate(end - 10); err != nil {
		t.Fatal(err)
	}
	want = want[:end-10]
	if err := w.wait(); err != nil {
		t.Fatal(err)
	}
	if got := f.bytes(); !bytes.Equal(got, want) {
		t.Fatalf("file differs: %d bytes, want %d", len(got), len(want))
	}
	if f.maxRun != 1 {
		t.Errorf("%d writes ran at once; want one at a time", f.maxRun)
	}
}

// A failed write is returned by every later call; what reached the file
// before it stays, nothing after it is written.
func TestWriteBehindError(t *testing.T) {
	f := &slowFile{left: 2500}
	w := newWriteBehind(f, newWriters())
	for range 3 {
		if _, err := w.Write(make([]byte, 1000)); err != nil {
			t.Fatalf("write before the failure: %v", err)
		}
	}
	err := w.wait()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("wait = %v, want ENOSPC", err)
	}
	if _, err := w.Write(make([]byte, 1000)); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("write after the failure: %v", err)
	}
	if _, err := w.Seek(0, io.SeekEnd); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("seek after the failure: %v", err)
	}
	if err := w.Truncate(0); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("truncate after the failure: %v", err)
	}
	if n := len(f.bytes()); n != 2500 {
		t.Errorf("%d bytes in the file, want the 2500 the disk took", n)
	}
}

// A file that stops taking writes holds its writer after
// writeBehindQueue of them: memory stays bounded.
func TestWriteBehindBounded(t *testing.T) {
	f := &slowFile{left: -1, block: make(chan struct{})}
	w := newWriteBehind(f, newWriters())
	wrote := make(chan int, 2*writeBehindQueue)
	go func() {
		for i := range 2 * writeBehindQueue {
			w.Write([]byte{byte(i)})
			wrote <- i
		}
		close(wrote)
	}()
	// One write is with the file, writeBehindQueue are queued.
	deadline := time.After(10 * time.Second)
	for n := 0; n < writeBehindQueue+1; n++ {
		select {
		case <-wrote:
		case <-deadline:
			t.Fatalf("only %d writes queued", n)
		}
	}
	select {
	case i := <-wrote:
		t.Fatalf("write %d returned while the file was stuck and the queue full", i)
	case <-time.After(50 * time.Millisecond):
	}
	close(f.block)
	for range wrote {
	}
	if err := w.wait(); err != nil {
		t.Fatal(err)
	}
	if got := f.bytes(); len(got) != 2*writeBehindQueue || got[len(got)-1] != 2*writeBehindQueue-1 {
		t.Errorf("file %v", got)
	}
}

// countingFile counts the writes running at once across every file that
// shares its counter.
type countingFile struct {
	*slowFile
	mu           *sync.Mutex
	running, max *int
}

func (f countingFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	*f.running++
	*f.max = max(*f.max, *f.running)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		*f.running--
		f.mu.Unlock()
	}()
	return f.slowFile.Write(p)
}

// Many files share the writers: each file gets its writes in order, no
// more than maxWriters writes run at once, and the writers are gone once
// nothing is queued.
func TestWritersShared(t *testing.T) {
	ws := newWriters()
	var mu sync.Mutex
	var running, most int
	const files, writes = 24, 40
	fs := make([]*slowFile, files)
	var wg sync.WaitGroup
	for i := range files {
		fs[i] = &slowFile{left: -1, delay: 100 * time.Microsecond}
		w := newWriteBehind(countingFile{fs[i], &mu, &running, &most}, ws)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range writes {
				if _, err := w.Write([]byte{byte(i), byte(j)}); err != nil {
					t.Errorf("file %d write %d: %v", i, j, err)
				}
			}
			if err := w.wait(); err != nil {
				t.Errorf("file %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	for i, f := range fs {
		got := f.bytes()
		if len(got) != 2*writes {
			t.Fatalf("file %d: %d bytes, want %d", i, len(got), 2*writes)
		}
		for j := range writes {
			if got[2*j] != byte(i) || got[2*j+1] != byte(j) {
				t.Fatalf("file %d: write %d is %v, out of order or another file's", i, j, got[2*j:2*j+2])
			}
		}
	}
	if most > maxWriters || most < 2 {
		t.Errorf("%d writes ran at once; want between 2 and %d", most, maxWriters)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ws.mu.Lock()
		n := ws.running
		ws.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writers still running with nothing queued", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A recorded frame allocates nothing, the half seconds handed to the
// writers included: the copies come from a pool, the queues keep their
// arrays, and a writer's goroutine is reused by the runtime.
func TestRecorderFramesNoAlloc(t *testing.T) {
	blobs, err := store.NewFSBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	meta := partMeta{Tenant: "default", Mailbox: "1001", ID: store.NewMessageID(), ReceivedAt: time.Now().UTC(), Format: "pcm16"}
	rec, err := newRecorder(blobs, newWriters(), meta, media.FormatPCM16, 0, 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.discard()
	codes := make([]byte, 160)
	for i := range codes {
		codes[i] = byte(i*7) | 0x80 // speech-like µ-law, not silence
	}
	frame := func() {
		if !rec.WriteG711(media.PCMU, codes) {
			t.Fatal("the recorder did not take G.711 codes")
		}
	}
	for range 200 { // warm up: the pools, the queues' arrays, a writer
		frame()
	}
	if err := rec.out.wait(); err != nil {
		t.Fatal(err)
	}
	// AllocsPerRun rounds down: each run is 26 frames, so that it hands
	// at least one half second (25.6 frames) to the writers.
	if n := testing.AllocsPerRun(100, func() {
		for range 26 {
			frame()
		}
	}); n != 0 {
		t.Errorf("%.0f allocations per 26 recorded frames, want 0", n)
	}
	if err := rec.out.wait(); err != nil {
		t.Fatal(err)
	}
}
