package store

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func newTestBlobs(t *testing.T) *FSBlobs {
	t.Helper()
	b, err := NewFSBlobs(filepath.Join(t.TempDir(), "media"))
	if err != nil {
		t.Fatalf("NewFSBlobs: %v", err)
	}
	return b
}

func readBlob(t *testing.T, b Blobs, key string) string {
	t.Helper()
	f, err := b.Open(key)
	if err != nil {
		t.Fatalf("Open(%s): %v", key, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// tempFiles lists every file under root whose name marks it as temporary.
func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".tmp") || strings.HasSuffix(p, ".part")) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestBlobCommitIsAtomic(t *testing.T) {
	b := newTestBlobs(t)
	key := MediaKey("default", "1001", NewMessageID())

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

	// Nothing is visible under the key before Commit.
	if b.Exists(key) {
		t.Error("key visible before Commit")
	}
	if _, err := b.Stat(key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat before Commit = %v, want ErrNotFound", err)
	}
	if _, err := b.Open(key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open before Commit = %v, want ErrNotFound", err)
	}
	if parts, _ := b.Parts(); !slices.Equal(parts, []string{key}) {
		t.Errorf("Parts while writing = %v, want [%s]", parts, key)
	}

	if err := f.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got := readBlob(t, b, key); got != "RIFF1234WAVE" {
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
	if p := b.Path(key); p != filepath.Join(b.Root(), "default", "1001", filepath.Base(key)) || !filepath.IsAbs(p) {
		t.Errorf("Path = %q", p)
	}

	if err := b.Delete(key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if b.Exists(key) {
		t.Error("exists after Delete")
	}
	if err := b.Delete(key); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
}

func TestBlobAbort(t *testing.T) {
	b := newTestBlobs(t)
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
	if left := tempFiles(t, b.Root()); len(left) != 0 {
		t.Errorf("files left after Abort: %v", left)
	}
	if err := b.ReadPartMeta(key, new(map[string]string)); !errors.Is(err, ErrNotFound) {
		t.Errorf("sidecar after Abort: %v, want ErrNotFound", err)
	}
	if err := f.Abort(); err != nil {
		t.Errorf("second Abort = %v", err)
	}
	// The key can be written again.
	f, err = b.Create(key)
	if err != nil {
		t.Fatalf("Create after Abort: %v", err)
	}
	f.Abort()
}

func TestBlobCreateIsExclusive(t *testing.T) {
	b := newTestBlobs(t)
	key := "default/1001/a.wav"
	f, err := b.Create(key)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	// A second instance sharing the volume must not write the same part.
	other, err := NewFSBlobs(b.Root())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Create(key); !errors.Is(err, ErrExists) {
		t.Errorf("second Create = %v, want ErrExists", err)
	}
}

func TestBlobBadKeys(t *testing.T) {
	b := newTestBlobs(t)
	for _, key := range []string{
		"", "/etc/passwd", "../x.wav", "a/../../x.wav", "a/./b.wav", "a//b.wav", "a/b/",
		".hidden.wav", "a/.b.wav.123.tmp", `a\..\b.wav`, "a/b\x00.wav",
		"a/b.wav.part", "a/b.wav.part.json", "..", ".",
	} {
		if err := checkKey(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("checkKey(%q) = %v, want ErrInvalidKey", key, err)
		}
		if _, err := b.Create(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Create(%q) = %v", key, err)
		}
		if _, err := b.Open(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Open(%q) = %v", key, err)
		}
		if err := b.Put(key, strings.NewReader("x")); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Put(%q) = %v", key, err)
		}
		if _, err := b.Stat(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v", key, err)
		}
		if err := b.Delete(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v", key, err)
		}
		for name, err := range map[string]error{
			"OpenPart":      func() error { _, err := b.OpenPart(key); return err }(),
			"CommitPart":    b.CommitPart(key),
			"RemovePart":    b.RemovePart(key),
			"WritePartMeta": b.WritePartMeta(key, 1),
			"ReadPartMeta":  b.ReadPartMeta(key, new(int)),
		} {
			if !errors.Is(err, ErrInvalidKey) {
				t.Errorf("%s(%q) = %v", name, key, err)
			}
		}
		if b.Exists(key) || b.Path(key) != "" {
			t.Errorf("Exists/Path(%q) accepted the key", key)
		}
	}
	// Nothing escaped the root.
	if _, err := os.Stat(filepath.Join(filepath.Dir(b.Root()), "x.wav")); err == nil {
		t.Error("a bad key wrote outside the root")
	}
}

// TestBlobRecovery is the start-up path: parts left by a crash are listed,
// opened and either committed or removed, with their sidecars.
func TestBlobRecovery(t *testing.T) {
	b := newTestBlobs(t)
	keep := "default/1001/0001.wav"
	drop := "acme/2002/0002.wav"
	done := "default/1001/0000.wav"
	greeting := GreetingKey("default", "1001", "busy")

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
	if got := readBlob(t, b, keep); got != "AUDIO of "+keep {
		t.Errorf("recovered content = %q", got)
	}
	// The sidecar stays until the row exists (SettlePart).
	if err := b.ReadPartMeta(keep, &m); err != nil {
		t.Errorf("sidecar after CommitPart: %v, want it kept", err)
	}
	if err := b.SettlePart(keep); err != nil {
		t.Fatalf("SettlePart: %v", err)
	}
	if err := b.ReadPartMeta(keep, &m); !errors.Is(err, ErrNotFound) {
		t.Errorf("sidecar after SettlePart: %v, want ErrNotFound", err)
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
	if err := b.ReadPartMeta(drop, &m); !errors.Is(err, ErrNotFound) {
		t.Errorf("sidecar after RemovePart: %v, want ErrNotFound", err)
	}
	if _, err := b.OpenPart(drop); !errors.Is(err, ErrNotFound) {
		t.Errorf("OpenPart(removed) = %v, want ErrNotFound", err)
	}
	if err := b.CommitPart(drop); !errors.Is(err, ErrNotFound) {
		t.Errorf("CommitPart(removed) = %v, want ErrNotFound", err)
	}

	if parts, _ := b.Parts(); !slices.Equal(parts, []string{greeting}) {
		t.Errorf("Parts after recovery = %v, want [%s]", parts, greeting)
	}
	if got := readBlob(t, b, done); got != "complete" {
		t.Errorf("committed blob disturbed: %q", got)
	}
}

// TestBlobPartLockedWhileWritten: another instance's recovery must not take
// a part that a live writer still holds.
func TestBlobPartLockedWhileWritten(t *testing.T) {
	b := newTestBlobs(t)
	key := "default/1001/live.wav"
	f, err := b.Create(key)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	if _, err := b.OpenPart(key); !errors.Is(err, ErrBusy) {
		t.Errorf("OpenPart(live) = %v, want ErrBusy", err)
	}
	// A recovery that holds a part blocks a second recovery too.
	f.File.Close()
	rf, err := b.OpenPart(key)
	if err != nil {
		t.Fatalf("OpenPart(after writer died) = %v", err)
	}
	defer rf.Close()
	if _, err := b.OpenPart(key); !errors.Is(err, ErrBusy) {
		t.Errorf("second OpenPart = %v, want ErrBusy", err)
	}
}

func TestBlobPut(t *testing.T) {
	b := newTestBlobs(t)
	key := GreetingKey("default", "1001", "unavailable")
	if err := b.Put(key, strings.NewReader("first")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := b.Put(key, bytes.NewReader([]byte("second greeting"))); err != nil {
		t.Fatalf("Put (replace): %v", err)
	}
	if got := readBlob(t, b, key); got != "second greeting" {
		t.Errorf("content = %q", got)
	}
	if left := tempFiles(t, b.Root()); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}

	// A failing reader leaves the old blob and no temp file.
	if err := b.Put(key, io.MultiReader(strings.NewReader("x"), errReader{})); err == nil {
		t.Error("Put with a failing reader succeeded")
	}
	if got := readBlob(t, b, key); got != "second greeting" {
		t.Errorf("content after failed Put = %q", got)
	}
	if left := tempFiles(t, b.Root()); len(left) != 0 {
		t.Errorf("temp files left after failed Put: %v", left)
	}
	if parts, _ := b.Parts(); len(parts) != 0 {
		t.Errorf("Put temp files show up as parts: %v", parts)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestBlobConcurrentPut(t *testing.T) {
	b := newTestBlobs(t)
	key := GreetingKey("default", "1001", "name")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := b.Put(key, strings.NewReader(strings.Repeat(string(rune('a'+i)), 4096))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got := readBlob(t, b, key)
	if len(got) != 4096 || strings.Count(got, got[:1]) != 4096 {
		t.Errorf("concurrent Puts interleaved: %d bytes", len(got))
	}
}

func TestSidecarRoundTrip(t *testing.T) {
	b := newTestBlobs(t)
	key := "default/1001/x.wav" // no part needed: the recorder may write the sidecar first
	type meta struct {
		Tenant, Mailbox, Caller string
		Format                  string
		Started                 int64
	}
	in := meta{"default", "1001", "+33612345678", "pcm16", 1700000000}
	if err := b.WritePartMeta(key, in); err != nil {
		t.Fatalf("WritePartMeta: %v", err)
	}
	in.Format = "ulaw"
	if err := b.WritePartMeta(key, in); err != nil { // replaced atomically
		t.Fatalf("WritePartMeta (replace): %v", err)
	}
	var out meta
	if err := b.ReadPartMeta(key, &out); err != nil || out != in {
		t.Errorf("ReadPartMeta = %+v, %v; want %+v", out, err, in)
	}
	if left := tempFiles(t, b.Root()); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	if err := b.WritePartMeta(key, make(chan int)); err == nil {
		t.Error("WritePartMeta of a channel succeeded")
	}
	if err := os.WriteFile(b.Path(key)+".part.json", []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.ReadPartMeta(key, &out); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("ReadPartMeta(corrupt) = %v, want a decode error", err)
	}
	if parts, _ := b.Parts(); len(parts) != 0 {
		t.Errorf("a sidecar alone shows up as a part: %v", parts)
	}
}

func TestOpenBlobs(t *testing.T) {
	dir := t.TempDir()
	bl, err := OpenBlobs("file://" + filepath.Join(dir, "media"))
	if err != nil {
		t.Fatalf("OpenBlobs: %v", err)
	}
	if err := bl.Ping(); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "media")); err != nil || !fi.IsDir() {
		t.Errorf("root not created: %v", err)
	}
	for _, dsn := range []string{"s3://bucket/prefix", "media", "file://"} {
		if _, err := OpenBlobs(dsn); err == nil {
			t.Errorf("OpenBlobs(%q) succeeded", dsn)
		}
	}
	if _, err := OpenBlobs("s3://bucket"); err == nil || !strings.Contains(err.Error(), `"s3"`) {
		t.Errorf("OpenBlobs(s3) error %v does not name the scheme", err)
	}
	os.RemoveAll(filepath.Join(dir, "media"))
	if err := bl.Ping(); err == nil {
		t.Error("Ping succeeded with the root gone")
	}
}

func TestBlobOpenMissing(t *testing.T) {
	b := newTestBlobs(t)
	if _, err := b.Open("default/1001/none.wav"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(missing) = %v, want ErrNotFound", err)
	}
	// A directory is not a blob.
	if err := b.Put("default/1001/greetings/x.wav", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open("default/1001/greetings"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(directory) = %v, want ErrNotFound", err)
	}
	if b.Exists("default/1001") {
		t.Error("Exists(directory) = true")
	}
}
