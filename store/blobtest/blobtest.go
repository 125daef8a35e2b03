// Package blobtest is the contract every store.Blobs backend passes
// (file://, s3://, azblob://): what the recorder, the recovery, the API
// and the GDPR code rely on. Each backend's tests call Run with a factory
// that returns an empty store.
package blobtest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vmserver/voicemail/store"
)

// Run runs the contract; newBlobs returns a fresh, empty store per subtest.
func Run(t *testing.T, newBlobs func(t *testing.T) store.Blobs) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Blobs)
	}{
		{"CommitIsAtomic", commitIsAtomic},
		{"Abort", abort},
		{"CreateIsExclusive", createIsExclusive},
		{"BadKeys", badKeys},
		{"Recovery", recovery},
		{"PartLockedWhileWritten", partLocked},
		{"Put", put},
		{"ConcurrentPut", concurrentPut},
		{"Sidecar", sidecar},
		{"OpenMissing", openMissing},
		{"RangeRead", rangeRead},
		{"LargeBlob", largeBlob},
		{"SettleAfterCommit", settleAfterCommit},
		{"List", list},
		{"Ping", func(t *testing.T, b store.Blobs) {
			if err := b.Ping(); err != nil {
				t.Errorf("Ping: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newBlobs(t)) })
	}
}

// Read returns the whole content of a committed blob.
func Read(t testing.TB, b store.Blobs, key string) string {
	t.Helper()
	f, err := b.Open(key)
	if err != nil {
		t.Fatalf("Open(%s): %v", key, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return string(data)
}

func commitIsAtomic(t *testing.T, b store.Blobs) {
	key := store.MediaKey("default", "1001", store.NewMessageID())
	f, err := b.Create(key)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	defer f.Abort()
	if f.Key() != key {
		t.Errorf("Key() = %q, want %q", f.Key(), key)
	}
	if _, err := f.WriteString("RIFF----WAVE"); err != nil {
		t.Fatal(err)
	}
	// WAV writers patch the header at the end: the part must be seekable.
	if _, err := f.WriteAt([]byte("1234"), 4); err != nil {
		t.Fatal(err)
	}
	if b.Exists(key) {
		t.Error("key visible before Commit")
	}
	if _, err := b.Stat(key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat before Commit = %v, want ErrNotFound", err)
	}
	if _, err := b.Open(key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Open before Commit = %v, want ErrNotFound", err)
	}
	if parts, _ := b.Parts(); !slices.Equal(parts, []string{key}) {
		t.Errorf("Parts while writing = %v, want [%s]", parts, key)
	}
	if err := f.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got := Read(t, b, key); got != "RIFF1234WAVE" {
		t.Errorf("content = %q", got)
	}
	if n, err := b.Stat(key); err != nil || n != 12 {
		t.Errorf("Stat = %d, %v; want 12", n, err)
	}
	if parts, _ := b.Parts(); len(parts) != 0 {
		t.Errorf("Parts after Commit = %v, want none", parts)
	}
	if err := f.Abort(); err != nil || !b.Exists(key) {
		t.Errorf("Abort after Commit = %v and removed the blob: %v", err, !b.Exists(key))
	}
	if err := f.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}
	if err := b.Delete(key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if b.Exists(key) {
		t.Error("exists after Delete")
	}
	if _, err := b.Open(key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Open after Delete = %v, want ErrNotFound", err)
	}
	if err := b.Delete(key); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
}

func abort(t *testing.T, b store.Blobs) {
	key := "default/1001/a.wav"
	f, err := b.Create(key)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("partial")
	if err := b.WritePartMeta(key, map[string]string{"caller": "1002"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if b.Exists(key) {
		t.Error("key exists after Abort")
	}
	if parts, _ := b.Parts(); len(parts) != 0 {
		t.Errorf("Parts after Abort = %v", parts)
	}
	if err := b.ReadPartMeta(key, new(map[string]string)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("sidecar after Abort: %v, want ErrNotFound", err)
	}
	if err := f.Abort(); err != nil {
		t.Errorf("second Abort = %v", err)
	}
	f, err = b.Create(key)
	if err != nil {
		t.Fatalf("Create after Abort: %v", err)
	}
	f.Abort()
}

func createIsExclusive(t *testing.T, b store.Blobs) {
	key := "default/1001/a.wav"
	f, err := b.Create(key)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	if _, err := b.Create(key); !errors.Is(err, store.ErrExists) {
		t.Errorf("second Create = %v, want ErrExists", err)
	}
}

func badKeys(t *testing.T, b store.Blobs) {
	for _, key := range []string{
		"", "/etc/passwd", "../x.wav", "a/../../x.wav", "a/./b.wav", "a//b.wav", "a/b/",
		".hidden.wav", "a/.b.wav.123.tmp", `a\..\b.wav`, "a/b\x00.wav",
		"a/b.wav.part", "a/b.wav.part.json", "..", ".",
	} {
		if _, err := b.Create(key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Create(%q) = %v", key, err)
		}
		if _, err := b.Open(key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Open(%q) = %v", key, err)
		}
		if err := b.Put(key, strings.NewReader("x")); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v", key, err)
		}
		if _, err := b.Stat(key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v", key, err)
		}
		if err := b.Delete(key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v", key, err)
		}
		for name, err := range map[string]error{
			"OpenPart":      func() error { _, err := b.OpenPart(key); return err }(),
			"CommitPart":    b.CommitPart(key),
			"RemovePart":    b.RemovePart(key),
			"WritePartMeta": b.WritePartMeta(key, 1),
			"ReadPartMeta":  b.ReadPartMeta(key, new(int)),
		} {
			if !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("%s(%q) = %v", name, key, err)
			}
		}
		if b.Exists(key) || b.Path(key) != "" {
			t.Errorf("Exists/Path(%q) accepted the key", key)
		}
	}
}

// recovery is the start-up path: parts left by a crash are listed, opened
// and either committed or removed, with their sidecars.
func recovery(t *testing.T, b store.Blobs) {
	keep := "default/1001/0001.wav"
	drop := "acme/2002/0002.wav"
	done := "default/1001/0000.wav"
	greeting := store.GreetingKey("default", "1001", "busy")
	if err := b.Put(done, strings.NewReader("complete")); err != nil {
		t.Fatal(err)
	}
	type meta struct {
		Caller string
		Urgent bool
	}
	for _, k := range []string{keep, drop, greeting} {
		f, err := b.Create(k)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("audio of " + k)
		if err := b.WritePartMeta(k, meta{Caller: "+33612345678", Urgent: k == keep}); err != nil {
			t.Fatal(err)
		}
		f.File.Close() // the crash: neither Commit nor Abort
	}
	parts, err := b.Parts()
	if err != nil {
		t.Fatalf("Parts: %v", err)
	}
	want := []string{drop, keep, greeting}
	slices.Sort(want)
	if !slices.Equal(parts, want) {
		t.Errorf("Parts = %v, want %v", parts, want)
	}
	var m meta
	if err := b.ReadPartMeta(keep, &m); err != nil || m != (meta{"+33612345678", true}) {
		t.Errorf("ReadPartMeta = %+v, %v", m, err)
	}
	f, err := b.OpenPart(keep)
	if err != nil {
		t.Fatalf("OpenPart: %v", err)
	}
	// Recovery may repair the file (e.g. a WAV header) before committing.
	if _, err := f.WriteAt([]byte("AUDIO"), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.CommitPart(keep); err != nil {
		t.Fatalf("CommitPart: %v", err)
	}
	f.Close()
	if got := Read(t, b, keep); got != "AUDIO of "+keep {
		t.Errorf("recovered content = %q", got)
	}
	// The sidecar outlives the commit until the row exists (SettlePart).
	if err := b.ReadPartMeta(keep, &m); err != nil || m != (meta{"+33612345678", true}) {
		t.Errorf("sidecar after CommitPart = %+v, %v; want it kept", m, err)
	}
	if err := b.RemovePart(drop); err != nil {
		t.Fatalf("RemovePart: %v", err)
	}
	if err := b.RemovePart(drop); err != nil {
		t.Errorf("RemovePart(missing) = %v, want nil", err)
	}
	if b.Exists(drop) {
		t.Error("removed part became a blob")
	}
	if _, err := b.OpenPart(drop); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("OpenPart(removed) = %v, want ErrNotFound", err)
	}
	if err := b.CommitPart(drop); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CommitPart(removed) = %v, want ErrNotFound", err)
	}
	if parts, _ := b.Parts(); !slices.Equal(parts, []string{greeting}) {
		t.Errorf("Parts after recovery = %v, want [%s]", parts, greeting)
	}
	// Only the committed one is unsettled: the removed part took its
	// sidecar along, the greeting is still a part.
	if got := unsettledKeys(t, b); !slices.Equal(got, []string{keep}) {
		t.Errorf("Unsettled = %v, want [%s]", got, keep)
	}
	if err := b.SettlePart(keep); err != nil {
		t.Fatalf("SettlePart: %v", err)
	}
	if err := b.SettlePart(keep); err != nil {
		t.Errorf("SettlePart(settled) = %v, want nil", err)
	}
	if err := b.ReadPartMeta(keep, &m); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("sidecar after SettlePart: %v, want ErrNotFound", err)
	}
	if got := unsettledKeys(t, b); len(got) != 0 {
		t.Errorf("Unsettled after SettlePart = %v", got)
	}
	if got := Read(t, b, keep); got != "AUDIO of "+keep {
		t.Errorf("SettlePart touched the blob: %q", got)
	}
	if got := Read(t, b, done); got != "complete" {
		t.Errorf("committed blob disturbed: %q", got)
	}
}

// partLocked: a recovery must not take a part that a live writer holds.
func partLocked(t *testing.T, b store.Blobs) {
	key := "default/1001/live.wav"
	f, err := b.Create(key)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	if _, err := b.OpenPart(key); !errors.Is(err, store.ErrBusy) {
		t.Errorf("OpenPart(live) = %v, want ErrBusy", err)
	}
}

func put(t *testing.T, b store.Blobs) {
	key := store.GreetingKey("default", "1001", "unavailable")
	if err := b.Put(key, strings.NewReader("first")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := b.Put(key, bytes.NewReader([]byte("second greeting"))); err != nil {
		t.Fatalf("Put (replace): %v", err)
	}
	if got := Read(t, b, key); got != "second greeting" {
		t.Errorf("content = %q", got)
	}
	// A failing reader leaves the old blob.
	if err := b.Put(key, io.MultiReader(strings.NewReader("x"), errReader{})); err == nil {
		t.Error("Put with a failing reader succeeded")
	}
	if got := Read(t, b, key); got != "second greeting" {
		t.Errorf("content after failed Put = %q", got)
	}
	if parts, _ := b.Parts(); len(parts) != 0 {
		t.Errorf("Put temp files show up as parts: %v", parts)
	}
	// Copying one blob into another (forward) reads the source while writing.
	src, err := b.Open(key)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := b.Put("default/1002/copy.wav", src); err != nil {
		t.Fatalf("Put from Open: %v", err)
	}
	if got := Read(t, b, "default/1002/copy.wav"); got != "second greeting" {
		t.Errorf("copy = %q", got)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func concurrentPut(t *testing.T, b store.Blobs) {
	key := store.GreetingKey("default", "1001", "name")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := b.Put(key, strings.NewReader(strings.Repeat(string(rune('a'+i)), 4096))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got := Read(t, b, key)
	if len(got) != 4096 || strings.Count(got, got[:1]) != 4096 {
		t.Errorf("concurrent Puts interleaved: %d bytes", len(got))
	}
}

func sidecar(t *testing.T, b store.Blobs) {
	key := "default/1001/x.wav" // the recorder may write the sidecar first
	type meta struct {
		Tenant, Mailbox, Caller string
		Started                 int64
	}
	in := meta{"default", "1001", "+33612345678", 1700000000}
	if err := b.WritePartMeta(key, in); err != nil {
		t.Fatalf("WritePartMeta: %v", err)
	}
	in.Caller = "1002"
	if err := b.WritePartMeta(key, in); err != nil {
		t.Fatalf("WritePartMeta (replace): %v", err)
	}
	var out meta
	if err := b.ReadPartMeta(key, &out); err != nil || out != in {
		t.Errorf("ReadPartMeta = %+v, %v; want %+v", out, err, in)
	}
	if err := b.WritePartMeta(key, make(chan int)); err == nil {
		t.Error("WritePartMeta of a channel succeeded")
	}
	if parts, _ := b.Parts(); len(parts) != 0 {
		t.Errorf("a sidecar alone shows up as a part: %v", parts)
	}
	if err := b.RemovePart(key); err != nil {
		t.Fatal(err)
	}
	if err := b.ReadPartMeta(key, &out); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReadPartMeta after RemovePart = %v, want ErrNotFound", err)
	}
}

func openMissing(t *testing.T, b store.Blobs) {
	if _, err := b.Open("default/1001/none.wav"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Open(missing) = %v, want ErrNotFound", err)
	}
	if _, err := b.Stat("default/1001/none.wav"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat(missing) = %v, want ErrNotFound", err)
	}
	// A "directory" (a prefix of other keys) is not a blob.
	if err := b.Put("default/1001/greetings/x.wav", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open("default/1001/greetings"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Open(directory) = %v, want ErrNotFound", err)
	}
	if b.Exists("default/1001") {
		t.Error("Exists(directory) = true")
	}
}

// Random returns n reproducible pseudo-random bytes.
func Random(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// rangeRead: Seek and Read serve any slice, and http.ServeContent answers
// a Range request from the Reader (what the audio download does).
func rangeRead(t *testing.T, b store.Blobs) {
	data := Random(300_001, 1)
	key := store.MediaKey("default", "1001", store.NewMessageID())
	if err := b.Put(key, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	f, err := b.Open(key)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() != int64(len(data)) || fi.IsDir() || fi.ModTime().IsZero() {
		t.Fatalf("Stat = %v (size %d), %v", fi, fi.Size(), err)
	}
	if end, err := f.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
		t.Fatalf("Seek(end) = %d, %v", end, err)
	}
	for _, r := range [][2]int{{0, 44}, {299_000, 1001}, {123_456, 65_536}, {7, 1}, {150_000, 150_001}} {
		if _, err := f.Seek(int64(r[0]), io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, r[1])
		if _, err := io.ReadFull(f, got); err != nil {
			t.Fatalf("read %d bytes at %d: %v", r[1], r[0], err)
		}
		if !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
			t.Errorf("bytes %d..%d differ", r[0], r[0]+r[1])
		}
	}
	if n, err := f.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read at end = %d, %v; want 0, EOF", n, err)
	}
	if _, err := f.Seek(-10, io.SeekCurrent); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(f); !bytes.Equal(rest, data[len(data)-10:]) {
		t.Errorf("SeekCurrent(-10) then ReadAll = %d bytes", len(rest))
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := b.Open(key)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "x.wav", fi.ModTime(), f)
	}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Range", "bytes=100000-100999")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[100000:101000]) {
		t.Errorf("Range GET = %d, %d bytes, equal %v", resp.StatusCode, len(body), bytes.Equal(body, data[100000:101000]))
	}
	if cr := resp.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes 100000-100999/%d", len(data)) {
		t.Errorf("Content-Range = %q", cr)
	}
}

// largeBlob crosses the multipart threshold of the S3 client (16 MiB).
func largeBlob(t *testing.T, b store.Blobs) {
	if testing.Short() {
		t.Skip("large blob: -short")
	}
	data := Random(17<<20+3, 2)
	key := store.MediaKey("default", "1001", store.NewMessageID())
	f, err := b.Create(key)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	r, err := b.Open(key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Error("large blob content differs")
	}
}
