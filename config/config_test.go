package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, file string, env map[string]string, args ...string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	Register(fs)
	if file != "" {
		p := filepath.Join(t.TempDir(), "vm.yaml")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", p}, args...)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

func TestDefaults(t *testing.T) {
	c, err := load(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SIPListen) != 2 || c.SIPListen[0].String() != "udp:0.0.0.0:5060" || c.SIPListen[1].Transport != "tcp" {
		t.Errorf("sip.listen = %v", c.SIPListen)
	}
	if c.RTPPortMin != 10000 || c.RTPPortMax != 20000 || c.HTTPListen != "127.0.0.1:8080" {
		t.Errorf("ports %d-%d http %s", c.RTPPortMin, c.RTPPortMax, c.HTTPListen)
	}
	if c.DB != "sqlite://data/voicemail.db" || c.Media != "file://data/media" {
		t.Errorf("db %q media %q", c.DB, c.Media)
	}
	if c.RecordingMaxSeconds != 180 || c.RecordingMinSeconds != 2 || c.RecordingSilenceSeconds != 10 || c.RecordingFormat != "pcm16" {
		t.Errorf("recording %+v", c)
	}
	if c.LoginMaxAttempts != 3 || c.LoginLockout != 15*time.Minute || c.GDPRForgetGrace != 24*time.Hour {
		t.Errorf("login/gdpr %+v", c)
	}
	if len(c.AccessNumbers) != 1 || c.AccessNumbers[0] != "5555" {
		t.Errorf("access %v", c.AccessNumbers)
	}
}

func TestPrecedence(t *testing.T) {
	file := "sip:\n  listen: udp:127.0.0.1:5070\nrecording:\n  max_seconds: 60\n  min_seconds: 1\naccess_numbers: [5555, 6666]\n"
	// file only
	c, err := load(t, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.RecordingMaxSeconds != 60 || c.SIPListen[0].Addr != "127.0.0.1:5070" || len(c.AccessNumbers) != 2 {
		t.Errorf("file not applied: %+v", c)
	}
	// env beats file
	c, err = load(t, file, map[string]string{"VOICEMAIL_RECORDING_MAX_SECONDS": "90"})
	if err != nil {
		t.Fatal(err)
	}
	if c.RecordingMaxSeconds != 90 {
		t.Errorf("env: max_seconds = %d", c.RecordingMaxSeconds)
	}
	// flag beats env
	c, err = load(t, file, map[string]string{"VOICEMAIL_RECORDING_MAX_SECONDS": "90"}, "--recording-max-seconds", "120")
	if err != nil {
		t.Fatal(err)
	}
	if c.RecordingMaxSeconds != 120 {
		t.Errorf("flag: max_seconds = %d", c.RecordingMaxSeconds)
	}
	if FlagName("auth.admin_token") != "auth-admin-token" || EnvName("auth.admin_token") != "VOICEMAIL_AUTH_ADMIN_TOKEN" {
		t.Error("names")
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		file string
		env  map[string]string
		args []string
		key  string
	}{
		{file: "sip:\n  lisen: udp:1.2.3.4:5060\n", key: "sip.lisen"},
		{args: []string{"--rtp-ports", "20000-10000"}, key: "rtp.ports"},
		{args: []string{"--recording-format", "mp3"}, key: "recording.format"},
		{env: map[string]string{"VOICEMAIL_LOGIN_LOCKOUT": "soon"}, key: "login.lockout"},
		{args: []string{"--sip-listen", "sctp:1.2.3.4:5060"}, key: "sip.listen"},
		{args: []string{"--access-numbers", "55a5"}, key: "access_numbers"},
		{args: []string{"--recording-max-seconds", "0"}, key: "recording.max_seconds"},
	}
	for _, c := range cases {
		_, err := load(t, c.file, c.env, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: err = %v, want it to name the key", c.key, err)
		}
	}
}
