package testcalls

// A headless baresip driven over its ctrl_tcp interface: file audio in
// (aufile), the decoded audio it hears dumped to WAV (sndfile), loopback
// only, its whole configuration in a temp dir. How to run it by hand is in
// testcalls/README.md.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/siptest"
)

// requireTool skips a softphone test whose program is missing, unless CI is
// set: then it fails with the install hint.
func requireTool(t *testing.T, prog, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(prog); err != nil {
		skipOrFail(t, fmt.Sprintf("%s is not installed (Debian package %s: apt-get install %s)", prog, pkg, pkg))
	}
}

// speechSamples is testcalls/audio/message.ulaw decoded, in whole frames:
// 8.7 s of speech that survives a µ-law round trip unchanged.
func speechSamples(t *testing.T) []int16 {
	t.Helper()
	ulaw, err := os.ReadFile(filepath.Join(testDir, "audio", "message.ulaw"))
	if err != nil {
		t.Fatal(err)
	}
	// A phone sends whole 20 ms frames: the last partial one never leaves it.
	pcm := decodeULaw(ulaw)
	return pcm[:len(pcm)/160*160]
}

func decodeULaw(b []byte) []int16 {
	out := make([]int16, len(b))
	for i, u := range b {
		u = ^u
		t := (int(u&0x0f) << 3) + 0x84
		t <<= (u & 0x70) >> 4
		if u&0x80 != 0 {
			out[i] = int16(0x84 - t)
		} else {
			out[i] = int16(t - 0x84)
		}
	}
	return out
}

func writeWAVFile(t *testing.T, path string, pcm []int16) {
	t.Helper()
	if err := os.WriteFile(path, makeWAV(pcm), 0o600); err != nil {
		t.Fatal(err)
	}
}

type baresip struct {
	t      *testing.T
	dir    string
	cmd    *exec.Cmd
	out    *syncBuffer
	conn   net.Conn
	exited chan struct{}

	mu     sync.Mutex
	events []string // event types in order, e.g. CALL_ESTABLISHED
	resp   map[string]string
	seq    int
	signal chan struct{}
}

// startBaresip starts baresip as user@127.0.0.1 with silence as its
// microphone (switch it with setSource). It is stopped when the test ends;
// on failure its output is printed.
func startBaresip(t *testing.T, user string) *baresip {
	t.Helper()
	requireTool(t, "baresip", "baresip-core")
	dir := t.TempDir()
	snd := filepath.Join(dir, "snd")
	if err := os.Mkdir(snd, 0o700); err != nil {
		t.Fatal(err)
	}
	// Two minutes of silence: the microphone until the test switches it.
	writeWAVFile(t, filepath.Join(dir, "silence.wav"), make([]int16, 120*8000))
	ctrl := freePort(t)
	rtp := portBlock(t, 4)
	// baresip listens on the port given for UDP and TCP and on the next
	// one for TLS: a reserved pair below the ephemeral range, which an
	// outgoing connection cannot take meanwhile (CI once lost the TLS port).
	sipPort := portBlock(t, 2)
	conf := strings.Join([]string{
		"poll_method epoll",
		fmt.Sprintf("sip_listen 127.0.0.1:%d", sipPort),
		"net_interface 127.0.0.1",
		"audio_source aufile," + filepath.Join(dir, "silence.wav"),
		"audio_srate 8000",
		"audio_channels 1",
		fmt.Sprintf("rtp_ports %d-%d", rtp, rtp+3),
		"module_path /usr/lib/baresip/modules",
		"module g711.so",
		"module aufile.so",
		"module sndfile.so",
		"snd_path " + snd,
		"module_app account.so",
		"module_app menu.so",
		"module_app ctrl_tcp.so",
		fmt.Sprintf("ctrl_tcp_listen 127.0.0.1:%d", ctrl),
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	acc := fmt.Sprintf("<sip:%s@127.0.0.1>;regint=0;audio_codecs=PCMU\n", user)
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(acc), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &baresip{t: t, dir: dir, out: &syncBuffer{}, exited: make(chan struct{}),
		resp: map[string]string{}, signal: make(chan struct{}, 1)}
	// -t: a safety net should the test lose control of it.
	b.cmd = exec.Command("baresip", "-f", dir, "-t", "300")
	b.cmd.Dir = dir
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start baresip: %v", err)
	}
	go func() { _ = b.cmd.Wait(); close(b.exited) }()
	t.Cleanup(func() {
		b.stop()
		if t.Failed() {
			t.Logf("baresip output:\n%s", tail(stripStatus(b.out.String()), 80))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ctrl))
		if err == nil {
			b.conn = c
			break
		}
		select {
		case <-b.exited:
			t.Fatalf("baresip exited at start-up:\n%s", b.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip ctrl_tcp not up after 10 s: %v\n%s", err, b.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	go b.read()
	return b
}

// stripStatus drops the per-second status line baresip's menu prints.
func stripStatus(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if i := strings.LastIndex(l, "(bit/s)"); i >= 0 {
			l = l[i+len("(bit/s)"):]
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// read collects ctrl_tcp messages: netstrings holding JSON events and
// command responses.
func (b *baresip) read() {
	r := bufio.NewReader(b.conn)
	for {
		lenStr, err := r.ReadString(':')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(lenStr[:len(lenStr)-1]))
		if err != nil {
			return
		}
		buf := make([]byte, n+1) // the payload and its ','
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		var m struct {
			Event    bool   `json:"event"`
			Type     string `json:"type"`
			Response bool   `json:"response"`
			Data     string `json:"data"`
			Token    string `json:"token"`
		}
		if json.Unmarshal(buf[:n], &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.Event {
			b.events = append(b.events, m.Type)
		}
		if m.Response {
			b.resp[m.Token] = m.Data
		}
		b.mu.Unlock()
		select {
		case b.signal <- struct{}{}:
		default:
		}
	}
}

// command runs a menu command (dial, hangup, hold, resume, sndcode, ausrc)
// and waits for its response.
func (b *baresip) command(name, params string) string {
	b.t.Helper()
	b.mu.Lock()
	b.seq++
	tok := fmt.Sprintf("t%d", b.seq)
	b.mu.Unlock()
	msg, _ := json.Marshal(map[string]string{"command": name, "params": params, "token": tok})
	if _, err := fmt.Fprintf(b.conn, "%d:%s,", len(msg), msg); err != nil {
		b.t.Fatalf("baresip %s: %v", name, err)
	}
	deadline := time.After(5 * time.Second)
	for {
		b.mu.Lock()
		r, ok := b.resp[tok]
		b.mu.Unlock()
		if ok {
			return r
		}
		select {
		case <-b.signal:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			b.t.Fatalf("baresip %s %s: no response in 5 s", name, params)
		}
	}
}

// waitEvent waits until baresip has reported an event of this type.
func (b *baresip) waitEvent(typ string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.After(timeout)
	for {
		b.mu.Lock()
		evs := append([]string(nil), b.events...)
		b.mu.Unlock()
		for _, e := range evs {
			if e == typ {
				return
			}
		}
		select {
		case <-b.signal:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			b.t.Fatalf("baresip: no %s event within %v (events %v)", typ, timeout, evs)
		}
	}
}

// setSource makes the WAV at path baresip's microphone; at its end baresip
// hangs up (its menu ends a call on an audio source error).
func (b *baresip) setSource(path string) {
	b.t.Helper()
	b.command("ausrc", "aufile,"+path)
}

// stop quits baresip (SIGTERM, then SIGKILL) and waits for it, so that
// its sndfile dumps are complete.
func (b *baresip) stop() {
	select {
	case <-b.exited:
		return
	default:
	}
	if b.conn != nil {
		msg := `{"command":"quit","token":"quit"}`
		_, _ = fmt.Fprintf(b.conn, "%d:%s,", len(msg), msg)
	}
	select {
	case <-b.exited:
		return
	case <-time.After(3 * time.Second):
	}
	_ = b.cmd.Process.Signal(os.Interrupt)
	select {
	case <-b.exited:
	case <-time.After(3 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
}

// waitLog waits until the server's log holds substr.
func waitLog(t *testing.T, s *server, substr string, timeout time.Duration) {
	t.Helper()
	waitFor(t, "server log line "+substr, timeout, func() bool { return strings.Contains(s.log.String(), substr) })
}

// heard is what baresip has heard so far: its decode dump read while
// sndfile still writes it (the header's sizes are not final yet).
// baresip decodes the µ-law codes at the bottom of the scale a little
// differently (0xFF as 2, not 0): what it heard is compared as the codes
// it received, i.e. after our own µ-law round trip.
func (b *baresip) heard() []int16 {
	m, _ := filepath.Glob(filepath.Join(b.dir, "snd", "*-dec.wav"))
	if len(m) != 1 {
		return nil
	}
	raw, err := os.ReadFile(m[0])
	if err != nil {
		return nil
	}
	i := bytes.Index(raw[:min(len(raw), 512)], []byte("data"))
	if i < 0 || i+8 > len(raw) {
		return nil
	}
	raw = raw[i+8:]
	pcm := make([]int16, len(raw)/2)
	for k := range pcm {
		pcm[k] = int16(binary.LittleEndian.Uint16(raw[2*k:]))
	}
	return siptest.RoundTrip(0, pcm)
}

// waitHeard waits until baresip has heard all of want.
func (b *baresip) waitHeard(want []int16, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if holdsWhole(b.heard(), want) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("baresip has not heard the whole message within %v (%d samples heard)", timeout, len(b.heard()))
		}
		time.Sleep(250 * time.Millisecond)
	}
}
