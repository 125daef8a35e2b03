package testcalls

// linphonec (Linphone 5.1's console client), headless: `soundcard use
// files` replaces the sound card, `play` sends a WAV into the call. Its
// RTP timeout is left at the default (nortp_timeout=30): a server that
// sends nothing while it records is hung up on after 30 s.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/siptest"
)

type linphonec struct {
	t      *testing.T
	dir    string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *syncBuffer
	exited chan struct{}
}

// startLinphonec starts linphonec with its home, configuration and
// database in a temp dir, bound to loopback.
func startLinphonec(t *testing.T) *linphonec {
	t.Helper()
	requireTool(t, "linphonec", "linphone-cli")
	dir := t.TempDir()
	rtp := portBlock(t, 4)
	// Only what a test needs differs from the defaults: ports, loopback,
	// IPv4, no echo canceller (it would alter the file's audio), no video.
	rc := fmt.Sprintf(`[sip]
sip_tcp_port=-1
sip_tls_port=-1
guess_hostname=0
use_ipv6=0
bind_address=127.0.0.1
[rtp]
audio_rtp_port=%d
bind_address=127.0.0.1
[sound]
echocancellation=0
[video]
automatically_initiate=0
capture=0
display=0
`, rtp)
	if err := os.WriteFile(filepath.Join(dir, "linphonerc"), []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &linphonec{t: t, dir: dir, out: &syncBuffer{}, exited: make(chan struct{})}
	l.cmd = exec.Command("linphonec", "-c", filepath.Join(dir, "linphonerc"))
	l.cmd.Dir = dir
	l.cmd.Env = append(os.Environ(), "HOME="+dir)
	l.cmd.Stdout, l.cmd.Stderr = l.out, l.out
	var err error
	if l.stdin, err = l.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := l.cmd.Start(); err != nil {
		t.Fatalf("start linphonec: %v", err)
	}
	go func() { _ = l.cmd.Wait(); close(l.exited) }()
	t.Cleanup(func() {
		l.stop()
		if t.Failed() {
			t.Logf("linphonec output:\n%s", tail(l.out.String(), 80))
		}
	})
	l.waitOutput("linphonec> ", 20*time.Second)
	// The configuration's sip_port is not honoured by linphonec 5.1's
	// start-up; the ports command is.
	l.send(fmt.Sprintf("ports sip %d", freePort(t)))
	l.send("soundcard use files")
	l.waitOutput("Using wav files instead of soundcard", 5*time.Second)
	return l
}

func (l *linphonec) send(line string) {
	l.t.Helper()
	if _, err := io.WriteString(l.stdin, line+"\n"); err != nil {
		l.t.Fatalf("linphonec %q: %v", line, err)
	}
}

func (l *linphonec) waitOutput(substr string, timeout time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(l.out.String(), substr) {
		select {
		case <-l.exited:
			l.t.Fatalf("linphonec exited while waiting for %q", substr)
		default:
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("linphonec: no %q within %v", substr, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *linphonec) stop() {
	select {
	case <-l.exited:
		return
	default:
	}
	_, _ = io.WriteString(l.stdin, "quit\n")
	select {
	case <-l.exited:
	case <-time.After(5 * time.Second):
		_ = l.cmd.Process.Kill()
		<-l.exited
	}
}

// longSpeech is n samples of speech that never repeats: message.ulaw over
// and over, each pass at another gain, µ-law round-tripped so that it
// survives PCMU unchanged.
func longSpeech(t *testing.T, n int) []int16 {
	t.Helper()
	speech := speechSamples(t)
	out := make([]int16, 0, n+len(speech))
	for pass := 0; len(out) < n; pass++ {
		g := 1 - 0.07*float64(pass%9)
		for _, v := range speech {
			out = append(out, int16(float64(v)*g))
		}
	}
	return siptest.RoundTrip(0, out[:n])
}

// A 90-second message from a phone with default RTP timeouts: it stays in
// the call (the server sends media while it records) and the message is
// 90 s of exactly what it sent.
func TestSoftphoneLinphone90s(t *testing.T) {
	requireTool(t, "linphonec", "linphone-cli")
	// Not parallel: a heavy test runs before the two dozen parallel call
	// tests, alone, so that real phones and proxies are not starved on a
	// 2-core machine (testcalls/README.md).
	s := startServer(t, "")
	l := startLinphonec(t)
	// 90 s of speech; the phone hangs up 0.4 s after it.
	content := longSpeech(t, 90*8000)
	wav := filepath.Join(l.dir, "speech.wav")
	writeWAVFile(t, wav, content)

	l.send(fmt.Sprintf("call sip:1002@%s", s.sipAddr()))
	l.waitOutput("connected.", 20*time.Second)
	waitLog(t, s, `"msg":"recording"`, 30*time.Second)
	l.send("play " + wav)
	time.Sleep(time.Duration(len(content))*time.Second/8000 + 400*time.Millisecond)
	if strings.Contains(l.out.String(), "ended") {
		t.Fatalf("linphonec's call ended before it hung up:\n%s", tail(l.out.String(), 20))
	}
	l.send("terminate")
	l.waitOutput("ended", 10*time.Second)

	msgs := s.waitMessages(t, "1002", 1, 20*time.Second)
	w, err := parseWAV(s.audio(t, "1002", msgs[0].ID))
	if err != nil {
		t.Fatal(err)
	}
	got := len(w.samples) * 1000 / 8000
	t.Logf("message %d ms (API duration_ms %d)", got, msgs[0].DurationMS)
	if got < 89500 || got > 90500 {
		t.Errorf("the message is %d ms, want 90 s ± 0.5 s", got)
	}
	requireWhole(t, "the 90 s message", w.samples, content)
}
