package testcalls

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/siptest"
)

// TestDiskFullReadyz runs the real binary with its data folder (database
// and media) on a 64 MiB tmpfs and media.min_free 32 MiB: filling the file
// system makes /readyz fail with the reason, API writes answer 507, the
// metric shows it, reads still work; freeing it brings everything back by
// itself. Needs root for mount; elsewhere it is skipped (CI runs as root).
// The SIP side (503 to new deposits) is TestDiskFullDeposit.
func TestDiskFullReadyz(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m,mode=0750", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
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

// TestDiskFullDeposit: with the data folder on a small tmpfs that is full,
// deposits are refused before they are answered (503, Retry-After: 300),
// so no caller talks into a recording that is lost; the message stored
// before stays intact; once space is freed a deposit is stored again.
func TestDiskFullDeposit(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	dir := mountTmpfs(t)
	s := startServer(t, dir, "--media-min-free", "32MiB")
	s.putGreeting(t, "1001", "unavailable", siptest.Tone(unavailableHz, 4000, 6000))
	deposit := func() {
		runSipp(t, s, "uac_deposit.xml", "1001", "codec_pt", "0", "codec_name", "PCMU",
			"pcap", pcapPath("audio_pcmu.pcap"), "pause_ms", pauseFor("audio_pcmu.pcap"))
	}
	deposit()
	first := newestRecording(t, s, "1001", 1)
	before := s.audio(t, "1001", first.api.ID)

	filler := fillUp(t, dir)
	waitFor(t, "readyz 503", 15*time.Second, func() bool {
		res, _ := s.call(t, "GET", "/readyz", "", nil)
		return res.StatusCode == 503
	})
	for range 2 {
		res := runSipp(t, s, "uac_expect_status.xml", "1001", "status", "503")
		if !strings.Contains(res.msgLog, "Retry-After: 300") {
			t.Errorf("503 without Retry-After: 300\n%s", res)
		}
	}
	if n := strings.Count(s.log.String(), "deposits refused (503): storage full"); n != 1 {
		t.Errorf("%d refusal log lines, want 1 per change of state", n)
	}
	if n := len(s.messages(t, "1001")); n != 1 {
		t.Errorf("%d messages while full, want 1", n)
	}
	if left := s.mediaFiles(t, ".part"); len(left) > 0 {
		t.Errorf("parts left by refused calls: %v", left)
	}
	if after := s.audio(t, "1001", first.api.ID); !bytes.Equal(before, after) {
		t.Error("the message stored before the disk filled changed")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "readyz 200", 15*time.Second, func() bool {
		res, _ := s.call(t, "GET", "/readyz", "", nil)
		return res.StatusCode == 200
	})
	deposit()
	r := newestRecording(t, s, "1001", 2)
	checkExactSuffix(t, r.w.samples, 0, len(source))
}

// mountTmpfs mounts a 64 MiB tmpfs for the test's data folder (root only;
// skipped elsewhere unless CI is set).
func mountTmpfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m,mode=0750", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount a tmpfs (run as root): %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fillUp writes a file until the file system under dir is full.
func fillUp(t *testing.T, dir string) string {
	t.Helper()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return filler
		}
	}
}

// TestDiskFullMidRecording: the media folder (alone) on a tmpfs with about
// 32 KiB left when the call starts. The recording runs out of space
// mid-way: what reached the disk is saved as a message (valid WAV, every
// sample the one sent), no part is left, the server ends the call itself,
// and the free space is measured again at once (/readyz 503).
func TestDiskFullMidRecording(t *testing.T) {
	// Not parallel: a heavy test runs before the two dozen parallel call
	// tests, alone, so that real phones and proxies are not starved on a
	// 2-core machine (testcalls/README.md).
	requireSipp(t)
	dir := mountTmpfs(t)
	s := startServer(t, "", "--media", "file://"+dir, "--media-min-free", "1KiB", "--recording-min-seconds", "1")
	s.putGreeting(t, "1001", "unavailable", siptest.Tone(unavailableHz, 4000, 6000))
	filler := fillUp(t, dir)
	st, err := os.Stat(filler)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filler, st.Size()-32<<10); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "readyz 200", 15*time.Second, func() bool {
		res, _ := s.call(t, "GET", "/readyz", "", nil)
		return res.StatusCode == 200
	})
	p := startSipp(t, s, "uac_deposit.xml", "1001", "codec_pt", "0", "codec_name", "PCMU",
		"pcap", pcapPath("audio_pcmu.pcap"), "pause_ms", pauseFor("audio_pcmu.pcap"))
	msgs := s.waitMessages(t, "1001", 1, 30*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want the one cut short", len(msgs))
	}
	p.wait(60 * time.Second) // the server hangs up first: sipp's verdict does not matter
	w, err := parseWAV(s.audio(t, "1001", msgs[0].ID))
	if err != nil {
		t.Fatalf("the kept recording is not a valid WAV: %v", err)
	}
	if !strings.Contains(s.log.String(), "disk full while recording") {
		t.Errorf("no disk-full line in the log:\n%s", tail(s.log.String(), 30))
	}
	dec := decodedSource(0, len(source))
	off, ok := findOffset(w.samples, dec)
	if !ok {
		t.Fatalf("the kept recording (%d samples) is not the sent audio", len(w.samples))
	}
	if n, first := mismatches(w.samples, dec, off, 0, len(w.samples), nil); n > 0 {
		t.Errorf("%d kept samples differ from the sent audio, first at %d", n, first)
	}
	if secs := float64(len(w.samples)) / 8000; secs < 1 || secs > 2.1 {
		t.Errorf("kept %.2f s, want what fits in about 32 KiB (1 to 2.1 s)", secs)
	}
	if left := s.mediaFiles(t, ".part"); len(left) > 0 {
		t.Errorf("parts left: %v", left)
	}
	// The space monitor runs every 5 s; two dozen parallel call tests on two
	// cores may delay a round or two.
	waitFor(t, "readyz 503 after the full write", 30*time.Second, func() bool {
		res, _ := s.call(t, "GET", "/readyz", "", nil)
		return res.StatusCode == 503
	})
}
