package testcalls

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cli runs the built binary with the server's address and token in the
// environment and returns stdout, stderr and the exit code.
func (s *server) cli(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), "VOICEMAIL_SERVER="+s.url(""), "VOICEMAIL_TOKEN="+s.token)
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = t.TempDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// wantCLIError: exit code and exactly one line on stderr containing text.
func wantCLIError(t *testing.T, what, stderr string, code, wantCode int, text string) {
	t.Helper()
	if code != wantCode || strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 || !strings.Contains(stderr, text) {
		t.Errorf("%s: exit %d (want %d), stderr %q (want one line with %q)", what, code, wantCode, stderr, text)
	}
}

func TestCLIMailbox(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	out, errs, code := s.cli(t, nil, "mailbox", "add", "1005", "--name", "Eve", "--pin", "5678", "--email", "eve@example.com")
	if code != 0 || !strings.Contains(out, "Eve") || !strings.Contains(out, "eve@example.com") {
		t.Fatalf("add: %d %q %q", code, out, errs)
	}
	out, _, code = s.cli(t, nil, "mailbox", "list")
	if code != 0 || !strings.Contains(out, "NUMBER") || !strings.Contains(out, "1005") || !strings.Contains(out, "1001,1002") {
		t.Errorf("list table: %d %q", code, out)
	}
	out, _, code = s.cli(t, nil, "mailbox", "list", "-o", "json")
	var list []struct{ Number, Name string }
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 4 || list[2].Number != "1005" {
		t.Errorf("list json: %d %v %q", code, err, out)
	}
	out, _, code = s.cli(t, nil, "mailbox", "update", "1005", "--name", "Eva", "--review=true", "--max-messages", "10", "-o", "json")
	var mb struct {
		Name        string
		Review      bool
		MaxMessages int `json:"max_messages"`
		Email       string
	}
	if err := json.Unmarshal([]byte(out), &mb); code != 0 || err != nil || mb.Name != "Eva" || !mb.Review || mb.MaxMessages != 10 || mb.Email != "eve@example.com" {
		t.Errorf("update: %d %v %q", code, err, out)
	}
	out, _, code = s.cli(t, nil, "mailbox", "show", "1005")
	if code != 0 || !strings.Contains(out, "Eva") || !strings.Contains(out, "max messages") {
		t.Errorf("show: %d %q", code, out)
	}
	_, errs, code = s.cli(t, nil, "mailbox", "show", "9999")
	wantCLIError(t, "show missing", errs, code, 1, "mailbox 9999 not found")
	_, errs, code = s.cli(t, nil, "mailbox", "update", "1005", "--email", "nope")
	wantCLIError(t, "bad email", errs, code, 1, "email")
	_, errs, code = s.cli(t, nil, "mailbox", "add", "1005")
	wantCLIError(t, "duplicate", errs, code, 1, "exists")
	_, errs, code = s.cli(t, nil, "mailbox", "add")
	wantCLIError(t, "no number", errs, code, 2, "NUMBER")
	_, errs, code = s.cli(t, nil, "mailbox", "update", "1005")
	wantCLIError(t, "nothing to update", errs, code, 2, "nothing to update")
	_, errs, code = s.cli(t, nil, "mailbox", "list", "--bogus")
	wantCLIError(t, "unknown flag", errs, code, 2, "bogus")
	_, errs, code = s.cli(t, nil, "mailbox", "frobnicate")
	if code != 2 || !strings.Contains(errs, "unknown subcommand") {
		t.Errorf("unknown subcommand: %d %q", code, errs)
	}
	_, errs, code = s.cli(t, []string{"VOICEMAIL_TOKEN="}, "mailbox", "list")
	wantCLIError(t, "no token", errs, code, 2, "token")
	_, errs, code = s.cli(t, []string{"VOICEMAIL_TOKEN=wrong"}, "mailbox", "list")
	wantCLIError(t, "bad token", errs, code, 1, "401")
	_, errs, code = s.cli(t, nil, "mailbox", "list", "--server", "http://127.0.0.1:1")
	wantCLIError(t, "server down", errs, code, 1, "cannot reach")
	out, _, code = s.cli(t, nil, "mailbox", "delete", "1005")
	if code != 0 || !strings.Contains(out, "deleted") {
		t.Errorf("delete: %d %q", code, out)
	}
	_, errs, code = s.cli(t, nil, "mailbox", "delete", "1005")
	wantCLIError(t, "delete again", errs, code, 1, "not found")
}

func TestCLIMessage(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	s := depositServer(t)
	depositOne(t, s, "1001")
	msgs := s.waitMessages(t, "1001", 1, 20*time.Second)
	id := msgs[0].ID

	out, errs, code := s.cli(t, nil, "message", "list", "1001")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "new") || !strings.Contains(out, callerNumber) {
		t.Fatalf("list: %d %q %q", code, out, errs)
	}
	out, _, code = s.cli(t, nil, "message", "list", "1001", "--folder", "work", "-o", "json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("list work: %d %q", code, out)
	}
	out, _, code = s.cli(t, nil, "message", "show", "1001", id, "-o", "json")
	var m apiMessage
	if err := json.Unmarshal([]byte(out), &m); code != 0 || err != nil || m.ID != id {
		t.Errorf("show: %d %v %q", code, err, out)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "msg.wav")
	out, _, code = s.cli(t, nil, "message", "download", "1001", id, "--file", file)
	got, err := os.ReadFile(file)
	if code != 0 || err != nil || !bytes.Equal(got, s.audio(t, "1001", id)) || !strings.Contains(out, "saved") {
		t.Errorf("download: %d %v %q", code, err, out)
	}
	out, _, code = s.cli(t, nil, "message", "move", "1001", id, "family")
	if code != 0 || !strings.Contains(out, "family") {
		t.Errorf("move: %d %q", code, out)
	}
	_, errs, code = s.cli(t, nil, "message", "move", "1001", id, "trash")
	wantCLIError(t, "bad folder", errs, code, 1, "folder")
	_, errs, code = s.cli(t, nil, "message", "move", "1001", id)
	wantCLIError(t, "move without folder", errs, code, 2, "FOLDER")
	_, errs, code = s.cli(t, nil, "message", "show", "1002", id)
	wantCLIError(t, "wrong mailbox", errs, code, 1, "not found")
	out, _, code = s.cli(t, nil, "message", "delete", "1001", id)
	if code != 0 || !strings.Contains(out, "deleted") {
		t.Errorf("delete: %d %q", code, out)
	}
	if n := len(s.messages(t, "1001")); n != 0 {
		t.Errorf("%d messages after delete", n)
	}
}
