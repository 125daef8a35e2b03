package store

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// pagedStore is an ObjectStore whose listing answers one object per
// delay, or never (delay < 0), until its context ends.
type pagedStore struct {
	keys  []string
	delay time.Duration
}

func (p pagedStore) List(ctx context.Context, prefix string, fn func(string, ObjectInfo) error) error {
	for _, k := range p.keys {
		if p.delay < 0 {
			<-ctx.Done()
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(p.delay):
		}
		if strings.HasPrefix(k, prefix) {
			if err := fn(k, ObjectInfo{Size: 1}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (pagedStore) Upload(context.Context, string, *os.File, int64) error {
	return errors.ErrUnsupported
}
func (pagedStore) Stat(context.Context, string) (ObjectInfo, error) {
	return ObjectInfo{}, errors.ErrUnsupported
}
func (pagedStore) Download(context.Context, string, int64) (io.ReadCloser, error) {
	return nil, errors.ErrUnsupported
}
func (pagedStore) Delete(context.Context, string) error { return errors.ErrUnsupported }
func (pagedStore) Ping(context.Context) error           { return nil }
func (pagedStore) String() string                       { return "paged test store" }

// A listing is bounded per wait, not as a whole: a long listing that
// keeps answering completes; a store that stops answering ends it.
func TestObjectListBoundedPerWait(t *testing.T) {
	keys := []string{"t/1/greetings/busy.wav", "t/1/greetings/name.wav", "t/2/a.wav", "t/2/b.wav", "t/2/c.wav", "t/2/d.wav"}
	b, err := NewObjectBlobs(t.TempDir(), pagedStore{keys: keys, delay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// 1.2 s in all, longer than the bound, but an answer every 200 ms.
	got, err := b.list("t/", time.Second)
	if err != nil || len(got) != len(keys) {
		t.Fatalf("slow but steady listing: %v, %v", got, err)
	}
	b.obj = pagedStore{keys: keys, delay: -1}
	start := time.Now()
	_, err = b.list("t/1/greetings/", time.Second)
	if err == nil || !strings.Contains(err.Error(), "no answer from the object store") {
		t.Fatalf("stalled store: err = %v", err)
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Errorf("stalled listing returned after %v", waited)
	}
}
