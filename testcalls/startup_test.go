package testcalls

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serveUntil starts `voicemail serve` with args (no --demo of the harness),
// reads its output (stdout and its log on stderr) until a line contains
// want, then stops it with SIGTERM and returns everything it printed.
func serveUntil(t *testing.T, dir string, want string, args ...string) string {
	t.Helper()
	return serveUntilWith(t, dir, want, nil, nil, args...)
}

// serveUntilWith is serveUntil with the server started under the command
// prefix wrap (e.g. taskset) and with env added to its environment.
func serveUntilWith(t *testing.T, dir string, want string, wrap, env []string, args ...string) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("the server does not build: %v\n%s", buildErr, buildOutput)
	}
	sip, http := freePort(t), freePort(t)
	rtp := portBlock(t, 4)
	all := append([]string{"serve", "--data-dir", filepath.Join(dir, "data"),
		"--sip-listen", fmt.Sprintf("udp:127.0.0.1:%d", sip), "--http-listen", fmt.Sprintf("127.0.0.1:%d", http),
		"--rtp-ports", fmt.Sprintf("%d-%d", rtp, rtp+3)}, args...)
	all = append(append(wrap[:len(wrap):len(wrap)], binPath), all...)
	cmd := exec.Command(all[0], all[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout // the log, in the same stream
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var got strings.Builder
	deadline := time.After(30 * time.Second)
	found := false
	for !found {
		select {
		case l, ok := <-lines:
			if !ok {
				_ = cmd.Wait()
				// A free port can be taken by another process between our
				// probe and the server's bind: start again on new ports.
				if strings.Contains(got.String(), "address already in use") && portRetries.Add(1) <= 20 {
					t.Logf("serve lost a port race; retrying on new ports")
					return serveUntilWith(t, dir, want, wrap, env, args...)
				}
				t.Fatalf("serve %v exited before printing %q:\n%s", args, want, got.String())
			}
			got.WriteString(l + "\n")
			found = strings.Contains(l, want)
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatalf("serve %v did not print %q within 30 s:\n%s", args, want, got.String())
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	for l := range lines {
		got.WriteString(l + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve %v: exit %v after SIGTERM", args, err)
	}
	return got.String()
}

// TestServeStartupHints: without mailboxes the server says how to create
// one; `demo: true` in the YAML file is the same as --demo.
func TestServeStartupHints(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := serveUntil(t, dir, "restart with --demo")
	if !strings.Contains(out, "No mailboxes yet") || !strings.Contains(out, "voicemail mailbox add 1001") {
		t.Errorf("no next step for an empty server:\n%s", out)
	}
	yaml := filepath.Join(dir, "voicemail.yaml")
	if err := os.WriteFile(yaml, []byte("demo: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = serveUntil(t, dir, "List the messages", "--config", yaml)
	if !strings.Contains(out, `Demo tenant "default"`) || strings.Contains(out, "No mailboxes yet") {
		t.Errorf("demo: true did not seed the demo mailboxes:\n%s", out)
	}
	// Outside the repository the line is relative and says where to run it.
	if !strings.Contains(out, "sipp -sf testcalls/scenarios/leave_message.xml") || !strings.Contains(out, "from the repository root") {
		t.Errorf("no sipp line:\n%s", out)
	}
}

// TestMWITargetStoppedShowAndResume: a target that answered 481 shows as
// stopped, with why, in `mailbox show` and the API; `mailbox mwi-resume`
// starts it again and it gets the current counts at once.
func TestMWITargetStoppedShowAndResume(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	s := mwiServer(t, "")
	port := freePort(t)
	uas := mwiSipp(t, s.sipAddr(), "mwi_target_481.xml", port, []string{"-m", "1"})
	target := fmt.Sprintf("sip:1005@127.0.0.1:%d", port)
	code, body, err := s.api("POST", "/api/v1/mailboxes", map[string]any{"number": "1005", "mwi_targets": []string{target}}, nil)
	if err != nil || code != 201 {
		t.Fatalf("create mailbox: %d %v %s", code, err, body)
	}
	sippOK(t, uas, "target answering 481")

	type state struct{ Target, State, Reason string }
	states := func() []state {
		var page struct{ Items []state }
		code, body, err := s.api("GET", "/api/v1/mailboxes/1005/mwi_targets", nil, nil)
		if err != nil || code != 200 || json.Unmarshal(body, &page) != nil {
			t.Fatalf("GET mwi_targets: %d %v %s", code, err, body)
		}
		return page.Items
	}
	deadline := time.Now().Add(10 * time.Second)
	for st := states(); len(st) != 1 || st[0].State != "stopped"; st = states() {
		if time.Now().After(deadline) {
			t.Fatalf("the target is not shown as stopped: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st := states(); st[0].Reason != "481" || st[0].Target != target {
		t.Errorf("stopped state: %+v", st)
	}
	out, errs, rc := s.cli(t, nil, "mailbox", "show", "1005")
	if rc != 0 || !strings.Contains(out, target+" (stopped: answered 481") {
		t.Errorf("mailbox show: %d %q %q", rc, out, errs)
	}

	phone := newUDPTarget(t, port) // the phone answers again
	out, errs, rc = s.cli(t, nil, "mailbox", "mwi-resume", "1005", target)
	if rc != 0 || !strings.Contains(out, "notified again") {
		t.Fatalf("mwi-resume: %d %q %q", rc, out, errs)
	}
	if got := phone.wait(t, "Voice-Message: 0/0 (0/0)"); got == "" {
		t.Fatal("the resumed target got no NOTIFY")
	}
	if st := states(); st[0].State != "active" {
		t.Errorf("after resume: %+v", st)
	}
	out, _, _ = s.cli(t, nil, "mailbox", "show", "1005")
	if !strings.Contains(out, target+" (active)") {
		t.Errorf("mailbox show after resume: %q", out)
	}
	_, errs, rc = s.cli(t, nil, "mailbox", "mwi-resume", "1005", "sip:nobody@127.0.0.1")
	wantCLIError(t, "resume unknown target", errs, rc, 1, "not found")
}

// TestServeTwoProcsOnOneCPU: allowed a single CPU (taskset), the server
// runs two Go processors and says so (docs/performance.md); GOMAXPROCS
// in its environment is left as it is.
func TestServeTwoProcsOnOneCPU(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("taskset"); err != nil {
		skipOrFail(t, "taskset is not installed (Debian package util-linux)")
	}
	const line = "two Go processors on one CPU"
	out := serveUntilWith(t, t.TempDir(), "voicemail ready", []string{"taskset", "-c", "0"}, nil)
	if !strings.Contains(out, line) || !strings.Contains(out, `"gomaxprocs":2`) {
		t.Errorf("pinned to one CPU, no %q with gomaxprocs 2:\n%s", line, out)
	}
	out = serveUntilWith(t, t.TempDir(), "voicemail ready", []string{"taskset", "-c", "0"}, []string{"GOMAXPROCS=1"})
	if strings.Contains(out, line) {
		t.Errorf("GOMAXPROCS=1 set, yet the server raised it:\n%s", out)
	}
}

// TestServeMemoryLimitEnvironment: the memory limit taken from a
// container (docs/performance.md) is set at start with the server's
// logger, and the operator's GOMEMLIMIT or a bad AUTOMEMLIMIT is said in
// the log without stopping the server.
func TestServeMemoryLimitEnvironment(t *testing.T) {
	t.Parallel()
	out := serveUntilWith(t, t.TempDir(), "voicemail ready", nil, []string{"GOMEMLIMIT=300MiB"})
	if !strings.Contains(out, "GOMEMLIMIT is already set") {
		t.Errorf("GOMEMLIMIT=300MiB: the log does not say it is kept:\n%s", out)
	}
	out = serveUntilWith(t, t.TempDir(), "voicemail ready", nil, []string{"GOMEMLIMIT=", "AUTOMEMLIMIT=bogus"})
	if !strings.Contains(out, "failed to set GOMEMLIMIT") || !strings.Contains(out, "AUTOMEMLIMIT") {
		t.Errorf("AUTOMEMLIMIT=bogus: no error in the log:\n%s", out)
	}
}
