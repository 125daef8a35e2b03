package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmserver/voicemail/diskspace"
	"github.com/vmserver/voicemail/media"
)

// smallFS mounts a tmpfs of size bytes (root only) and returns its path and
// whether it is real; where mounting is not permitted it returns a plain
// folder and the caller simulates the space with a Statfs hook.
func smallFS(t *testing.T, size string) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0750", "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Logf("cannot mount a tmpfs (%v: %s); simulating free space instead", err, strings.TrimSpace(string(out)))
		return dir, false
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir, true
}

// fill writes a file until the file system is full (or, simulated, notes
// the space as gone) and returns a function that frees it.
func fill(t *testing.T, dir string, real bool, simulatedFree *uint64) func() {
	t.Helper()
	path := filepath.Join(dir, "filler")
	if !real {
		old := *simulatedFree
		*simulatedFree = 64 << 10
		return func() { *simulatedFree = old }
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

func greetingWAV(seconds int, level int16) []byte {
	var b memFile
	w, _ := media.NewWAVWriter(&b, media.FormatPCM16)
	pcm := make([]int16, seconds*media.SampleRate)
	for i := range pcm {
		pcm[i] = level * int16(i%50-25)
	}
	_ = w.Write(pcm)
	_ = w.Close()
	return b.b
}

// TestDiskFull runs on a real 24 MiB tmpfs holding the database and the
// media: below media.min_free (8 MiB) /readyz fails with the reason, the
// writes that need space answer 507 with a JSON error, reads and deletes
// still work, nothing earlier is lost and everything recovers when space
// returns. Then, with the threshold off, a write that hits ENOSPC itself
// is a 507 too and leaves the earlier greeting intact.
func TestDiskFull(t *testing.T) {
	dir, real := smallFS(t, "24m")
	st, blobs := openStore(t, dir, "default")
	simFree := uint64(20 << 20)
	cfg := diskspace.Config{Paths: map[string]string{"media": filepath.Join(dir, "media"), "database": dir},
		Min: diskspace.Threshold{Bytes: 8 << 20}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if !real {
		cfg.Statfs = func(string) (diskspace.Usage, error) { return diskspace.Usage{Free: simFree, Total: 24 << 20}, nil }
	}
	mon := diskspace.New(cfg)
	h := New(Config{Store: st, Blobs: blobs, AdminToken: token, Space: mon,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(h.Close)
	call := func(method, path, ct string, body []byte) (int, errBody, []byte) {
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var e errBody
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		return rec.Code, e, rec.Body.Bytes()
	}
	greeting := "/api/v1/mailboxes/1001/greetings/unavailable"
	first := greetingWAV(2, 100)
	if code, _, b := call("POST", "/api/v1/mailboxes", "application/json", []byte(`{"number":"1001"}`)); code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	if code, _, b := call("PUT", greeting, "audio/wav", first); code != 200 {
		t.Fatalf("greeting: %d %s", code, b)
	}
	_, _, stored := call("GET", greeting, "", nil)
	if code, _, b := call("GET", "/readyz", "", nil); code != 200 {
		t.Fatalf("readyz: %d %s", code, b)
	}

	free := fill(t, dir, real, &simFree)
	mon.Check()
	code, _, b := call("GET", "/readyz", "", nil)
	if code != 503 || !strings.Contains(string(b), "disk space low") || !strings.Contains(string(b), "below media.min_free") {
		t.Errorf("readyz while full: %d %s", code, b)
	}
	for _, c := range []struct{ method, path, ct, body string }{
		{"PUT", greeting, "audio/wav", string(greetingWAV(1, 200))},
		{"POST", "/api/v1/mailboxes", "application/json", `{"number":"1002"}`},
		{"PATCH", "/api/v1/mailboxes/1001", "application/json", `{"name":"x"}`},
		{"POST", "/api/v1/webhooks", "application/json", `{"url":"https://example.com/h"}`},
	} {
		if code, e, b := call(c.method, c.path, c.ct, []byte(c.body)); code != 507 || e.Error.Code != "insufficient_storage" {
			t.Errorf("%s %s while full: %d %s", c.method, c.path, code, b)
		}
	}
	if code, _, got := call("GET", greeting, "", nil); code != 200 || !bytes.Equal(got, stored) {
		t.Errorf("the earlier greeting changed while full: %d", code)
	}
	if code, _, b := call("GET", "/api/v1/mailboxes/1001", "", nil); code != 200 {
		t.Errorf("read while full: %d %s", code, b)
	}

	free()
	mon.Check()
	if code, _, b := call("GET", "/readyz", "", nil); code != 200 {
		t.Errorf("readyz after freeing: %d %s", code, b)
	}
	second := greetingWAV(1, 300)
	if code, _, b := call("PUT", greeting, "audio/wav", second); code != 200 {
		t.Errorf("greeting after freeing: %d %s", code, b)
	}
	_, _, stored = call("GET", greeting, "", nil)

	if !real {
		return
	}
	// The threshold off (a monitor that is never low): ENOSPC itself.
	h2 := New(Config{Store: st, Blobs: blobs, AdminToken: token, Space: diskspace.New(diskspace.Config{}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(h2.Close)
	h = h2
	free = fill(t, dir, real, nil)
	if code, e, b := call("PUT", greeting, "audio/wav", greetingWAV(60, 400)); code != 507 || e.Error.Code != "insufficient_storage" {
		t.Errorf("greeting on a full disk: %d %s", code, b)
	}
	if code, _, got := call("GET", greeting, "", nil); code != 200 || !bytes.Equal(got, stored) {
		t.Errorf("the greeting changed after a failed upload: %d", code)
	}
	free()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _, b := call("PUT", greeting, "audio/wav", greetingWAV(60, 400))
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery: %d %s", code, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSpaceRoutesRegistered: every route refused while space is low is a
// real route (a renamed route would silently escape the check).
func TestSpaceRoutesRegistered(t *testing.T) {
	f := newFixture(t)
	routes := map[string]bool{}
	for _, r := range f.api.Routes() {
		routes[r] = true
	}
	for r := range spaceRoutes {
		if !routes[r] {
			t.Errorf("spaceRoutes names %q, which is not registered", r)
		}
	}
}
