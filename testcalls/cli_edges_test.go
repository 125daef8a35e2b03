package testcalls

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/siptest"
)

// runBin runs the built binary with only env as VOICEMAIL_* settings (the
// test's own environment is stripped of them) in dir.
func runBin(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("the server does not build: %v\n%s", buildErr, buildOutput)
	}
	cmd := exec.Command(binPath, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VOICEMAIL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("%v did not exit within 30 s; stderr %q", args, errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// TestCLIHelpHidesToken: with the token in the environment, no help text
// prints it (it used to be the default value of --token and -u).
func TestCLIHelpHidesToken(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-token-do-not-print"
	env := []string{"VOICEMAIL_TOKEN=" + secret, "VOICEMAIL_AUTH_ADMIN_TOKEN=" + secret}
	for _, args := range [][]string{
		{"mailbox", "-h"}, {"mailbox", "list", "-h"}, {"mailbox", "add", "-h"},
		{"message", "-h"}, {"message", "list", "-h"},
		{"gdpr", "-h"}, {"serve", "-h"}, {"help"},
	} {
		out, errs, code := runBin(t, t.TempDir(), env, args...)
		if code != 0 {
			t.Errorf("%v: exit %d", args, code)
		}
		if strings.Contains(out+errs, secret) {
			t.Errorf("%v prints the token:\n%s%s", args, out, errs)
		}
	}
	// The help still says where the token comes from.
	_, errs, _ := runBin(t, t.TempDir(), env, "mailbox", "list", "-h")
	if !strings.Contains(errs, "$VOICEMAIL_TOKEN") {
		t.Errorf("mailbox list -h does not name $VOICEMAIL_TOKEN:\n%s", errs)
	}
}

// TestServeBadFlagOneLine: a mistake on the serve (or client) command line
// or in a variable is one line naming what the user typed, and exit 2.
func TestServeBadFlagOneLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct {
		env  []string
		args []string
		want []string
	}{
		{args: []string{"serve", "--badflag"}, want: []string{"badflag", "voicemail serve -h"}},
		{args: []string{"serve", "extra"}, want: []string{`"extra"`, "voicemail serve -h"}},
		{args: []string{"serve", "--rtp-ports", "9-1"}, want: []string{"--rtp-ports", "rtp.ports"}},
		{env: []string{"VOICEMAIL_RTP_PORTS=9-1"}, args: []string{"serve"}, want: []string{"VOICEMAIL_RTP_PORTS"}},
		{env: []string{"VOICEMAIL_LOG_FORMAT=xml"}, args: []string{"serve"}, want: []string{"VOICEMAIL_LOG_FORMAT", "json or text"}},
		// The client too names the variable, not only its flag.
		{env: []string{"VOICEMAIL_SERVER=ftp://x", "VOICEMAIL_TOKEN=t"}, args: []string{"mailbox", "list"}, want: []string{"VOICEMAIL_SERVER", "voicemail mailbox -h"}},
		{env: []string{"VOICEMAIL_TOKEN=t"}, args: []string{"mailbox", "list", "--server", "ftp://x"}, want: []string{"--server"}},
	} {
		_, errs, code := runBin(t, dir, c.env, c.args...)
		lines := strings.Split(strings.TrimRight(errs, "\n"), "\n")
		ok := code == 2 && len(lines) == 1
		for _, w := range c.want {
			ok = ok && strings.Contains(errs, w)
		}
		if !ok {
			t.Errorf("%v %v: exit %d, stderr (%d lines) %q; want one line with %q", c.env, c.args, code, len(lines), errs, c.want)
		}
	}
}

// TestCLIUnknownTenant: naming a tenant that does not exist is an error for
// every subcommand, as it is for add.
func TestCLIUnknownTenant(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	for _, args := range [][]string{
		{"mailbox", "list", "--tenant", "nosuch"},
		{"mailbox", "add", "1009", "--tenant", "nosuch"},
		{"mailbox", "show", "1001", "--tenant", "nosuch"},
		{"message", "list", "1001", "--tenant", "nosuch"},
	} {
		_, errs, code := s.cli(t, nil, args...)
		wantCLIError(t, strings.Join(args, " "), errs, code, 1, "tenant nosuch not found")
	}
	code, body, err := s.api("GET", "/api/v1/mailboxes?tenant=garbage", nil, nil)
	if err != nil || code != 404 || !strings.Contains(string(body), "tenant garbage not found") {
		t.Errorf("GET ?tenant=garbage: %d %s %v", code, body, err)
	}
}

// TestCLIFollowsServerConfig: without --server and --token the client finds
// a local server on a non-default http.listen through the same file
// (--config or VOICEMAIL_CONFIG) and variables serve reads, its token
// included.
func TestCLIFollowsServerConfig(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	dir := t.TempDir()
	yaml := filepath.Join(dir, "voicemail.yaml")
	body := fmt.Sprintf("http:\n  listen: 0.0.0.0:%d\nauth:\n  admin_token: %s\n", s.httpPort, s.token)
	if err := os.WriteFile(yaml, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  []string
		args []string
	}{
		{args: []string{"mailbox", "list", "--config", yaml}},
		{env: []string{"VOICEMAIL_CONFIG=" + yaml}, args: []string{"mailbox", "list"}},
		{env: []string{fmt.Sprintf("VOICEMAIL_HTTP_LISTEN=127.0.0.1:%d", s.httpPort), "VOICEMAIL_TOKEN=" + s.token}, args: []string{"mailbox", "list"}},
	} {
		out, errs, code := runBin(t, dir, c.env, c.args...)
		if code != 0 || !strings.Contains(out, "1001") {
			t.Errorf("%v %v: exit %d, %q %q", c.env, c.args, code, out, errs)
		}
	}
	// The token kept in data_dir is found too (the server's own default).
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "admin_token"), []byte(s.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runBin(t, dir, []string{fmt.Sprintf("VOICEMAIL_HTTP_LISTEN=127.0.0.1:%d", s.httpPort)}, "mailbox", "list")
	if code != 0 || !strings.Contains(out, "1001") {
		t.Errorf("token from data/admin_token: exit %d, %q %q", code, out, errs)
	}
}

// TestDataFilePermissions: the database, recordings, greetings and keys
// are 0600/0640 and their folders 0700/0750 (docs/storage.md).
func TestDataFilePermissions(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dataDir, 0o750); err != nil { // the harness runs the server in it
		t.Fatal(err)
	}
	s := startServer(t, dataDir)
	// Through the API (the harness's putGreeting drops the file itself).
	req, _ := http.NewRequest("PUT", s.url("/api/v1/mailboxes/1001/greetings/unavailable"), bytes.NewReader(makeWAV(siptest.Tone(unavailableHz, 4000, 6000))))
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "audio/wav")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("PUT greeting: %d", res.StatusCode)
	}
	depositOne(t, s, "1001")
	s.waitMessages(t, "1001", 1, 20*time.Second)
	s.stop()
	var files, dirs int
	var wavs, dbs int
	err = filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := info.Mode().Perm()
		rel, _ := filepath.Rel(dataDir, p)
		switch {
		case d.IsDir():
			dirs++
			if mode&0o027 != 0 {
				t.Errorf("folder %s is %04o, want 0700 or 0750", rel, mode)
			}
		default:
			files++
			if mode&0o137 != 0 {
				t.Errorf("file %s is %04o, want 0600 or 0640", rel, mode)
			}
			if strings.HasSuffix(p, ".wav") {
				wavs++
			}
			if strings.HasPrefix(filepath.Base(p), "voicemail.db") {
				dbs++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if wavs < 2 || dbs < 1 {
		t.Errorf("walked %d files, %d folders: %d WAV files and %d database files, want a greeting, a message and the database", files, dirs, wavs, dbs)
	}
}
