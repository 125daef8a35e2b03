package config

import (
	"os"
	"strings"
	"testing"
)

// TestErrorsNameWhatTheUserTyped: a bad value names the flag or the
// environment variable it came from, and the YAML key.
func TestErrorsNameWhatTheUserTyped(t *testing.T) {
	cases := []struct {
		file string
		env  map[string]string
		args []string
		want []string
	}{
		{args: []string{"--rtp-ports", "20000-10000"}, want: []string{"flag --rtp-ports", "rtp.ports"}},
		{env: map[string]string{"VOICEMAIL_LOGIN_LOCKOUT": "soon"}, want: []string{"VOICEMAIL_LOGIN_LOCKOUT", "login.lockout"}},
		{file: "recording:\n  format: mp3\n", want: []string{"recording.format in ", "vm.yaml"}},
		{env: map[string]string{"VOICEMAIL_SMTP_RETRY": "2h"}, want: []string{"VOICEMAIL_SMTP_RETRY", "smtp.retry_max"}},
		{args: []string{"--recording-min-seconds", "500"}, want: []string{"flag --recording-min-seconds"}},
		{args: []string{"--demo=maybe"}, want: []string{"flag --demo", "true or false"}},
	}
	for _, c := range cases {
		_, err := load(t, c.file, c.env, c.args...)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v %v %q: err = %v, want it to contain %q", c.args, c.env, c.file, err, w)
			}
		}
	}
}

// TestDemo: demo is a YAML key, a variable and a flag without a value.
func TestDemo(t *testing.T) {
	for _, c := range []struct {
		file string
		env  map[string]string
		args []string
		want bool
	}{
		{want: false},
		{file: "demo: true\n", want: true},
		{env: map[string]string{"VOICEMAIL_DEMO": "true"}, want: true},
		{args: []string{"--demo"}, want: true},
		{file: "demo: true\n", args: []string{"--demo=false"}, want: false},
	} {
		cfg, err := load(t, c.file, c.env, c.args...)
		if err != nil || cfg.Demo != c.want {
			t.Errorf("%q %v %v: demo = %v, %v", c.file, c.env, c.args, cfg != nil && cfg.Demo, err)
		}
	}
}

// TestConfigFileFromEnv: VOICEMAIL_CONFIG names the file when --config is
// not given (the CLI uses it to find a local server).
func TestConfigFileFromEnv(t *testing.T) {
	p := t.TempDir() + "/vm.yaml"
	writeFile(t, p, "http:\n  listen: 127.0.0.1:9099\n")
	cfg, err := load(t, "", map[string]string{ConfigEnv: p})
	if err != nil || cfg.HTTPListen != "127.0.0.1:9099" {
		t.Fatalf("listen %v, %v", cfg, err)
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
