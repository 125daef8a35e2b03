package testcalls

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDiskFullReadyz runs the real binary with its data folder (database
// and media) on a 64 MiB tmpfs and media.min_free 32 MiB: filling the file
// system makes /readyz fail with the reason, API writes answer 507, the
// metric shows it, reads still work; freeing it brings everything back by
// itself. Needs root for mount; elsewhere it is skipped (CI runs as root).
// The SIP side (503 to new deposits) is wired by the call driver.
func TestDiskFullReadyz(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m,mode=0750", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount a tmpfs (run as root): %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	s := startServer(t, dir, "--media-min-free", "32MiB")
	res, b := s.call(t, "GET", "/readyz", "", nil)
	want(t, "readyz", res, b, 200, "")

	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	// The monitor looks every 5 s.
	waitFor(t, "readyz 503", 15*time.Second, func() bool {
		res, b := s.call(t, "GET", "/readyz", "", nil)
		return res.StatusCode == 503 && strings.Contains(string(b), "disk space low") && strings.Contains(string(b), "below media.min_free")
	})
	res, b = s.call(t, "POST", "/api/v1/mailboxes", s.token, map[string]any{"number": "3001"})
	want(t, "create while full", res, b, 507, "")
	if !strings.Contains(string(b), `"insufficient_storage"`) {
		t.Errorf("507 body %s", b)
	}
	res, b = s.call(t, "GET", "/api/v1/mailboxes/1001", s.token, nil)
	want(t, "read while full", res, b, 200, "")
	res, b = s.call(t, "GET", "/metrics", "", nil)
	if res.StatusCode != 200 || !strings.Contains(string(b), `voicemail_disk_low{fs="media"} 1`) {
		t.Errorf("metrics while full lack voicemail_disk_low{fs=\"media\"} 1")
	}
	if strings.Count(s.log.String(), "disk space low") != 2 { // media and database share the tmpfs: one line each
		t.Errorf("want one low line per file system:\n%s", tail(s.log.String(), 20))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "readyz 200", 15*time.Second, func() bool {
		res, _ := s.call(t, "GET", "/readyz", "", nil)
		return res.StatusCode == 200
	})
	res, b = s.call(t, "POST", "/api/v1/mailboxes", s.token, map[string]any{"number": "3001"})
	want(t, "create after freeing", res, b, 201, "")
	if !strings.Contains(s.log.String(), "disk space back above the minimum") {
		t.Error("no recovery log line")
	}
}
