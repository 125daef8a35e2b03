package config

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// FuzzConfigYAML loads arbitrary YAML as the configuration file: no panic,
// and an accepted configuration keeps the invariants the server relies on.
func FuzzConfigYAML(f *testing.F) {
	for _, s := range []string{
		"sip:\n  listen: [udp:0.0.0.0:5060, tcp:0.0.0.0:5060]\nrtp:\n  ports: 10000-20000\n",
		"recording:\n  max_seconds: 60\n  min_seconds: 61\n",
		"media:\n  min_free: 1%\ngreeting:\n  max_seconds: 30\nwebhooks:\n  allow_hosts: [10.0.0.0/8, hooks.internal]\n",
		"smtp: {host: mail, port: 25, tls: none, retry: 1m, retry_max: 2m}\n",
		"a: &a [*a]\n",
		"data_dir: ~\nlog: {level: debug, format: text}\n",
		"http.listen: 1\n",
		"- 1\n- 2\n",
		"sip: {listen: !!binary aGVsbG8=}\n",
	} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "vm.yaml")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		fs := flag.NewFlagSet("fuzz", flag.ContinueOnError)
		Register(fs)
		if err := fs.Parse([]string{"--config", path}); err != nil {
			t.Fatal(err)
		}
		c, err := Load(fs, func(string) (string, bool) { return "", false })
		if err != nil {
			return
		}
		switch {
		case len(c.SIPListen) == 0:
			t.Fatal("no SIP listener accepted")
		case c.RTPPortMin < 1024 || c.RTPPortMax > 65535 || c.RTPPortMax <= c.RTPPortMin:
			t.Fatalf("rtp ports %d-%d", c.RTPPortMin, c.RTPPortMax)
		case c.RecordingMinSeconds > c.RecordingMaxSeconds || c.RecordingMaxSeconds < 1:
			t.Fatalf("recording %d-%d s", c.RecordingMinSeconds, c.RecordingMaxSeconds)
		case c.GreetingMaxSeconds < 1 || c.GreetingMaxSeconds > 3600:
			t.Fatalf("greeting.max_seconds %d", c.GreetingMaxSeconds)
		case c.SMTPRetry <= 0 || c.SMTPRetryMax < c.SMTPRetry:
			t.Fatalf("smtp retry %v-%v", c.SMTPRetry, c.SMTPRetryMax)
		case c.MediaMinFree.Percent < 0 || c.MediaMinFree.Percent >= 100:
			t.Fatalf("media.min_free %v", c.MediaMinFree)
		case c.DB == "" || c.Media == "":
			t.Fatal("empty db or media")
		}
	})
}
