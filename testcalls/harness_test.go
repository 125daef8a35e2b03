package testcalls

// This file is over 600 lines on purpose: it is the one harness every
// end-to-end test shares (build, free ports, server start, sipp, API,
// SQLite and WAV helpers); splitting it would scatter what a test needs.

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/vmserver/voicemail/internal/azuritetest"
	"github.com/vmserver/voicemail/internal/siptest"
	"github.com/vmserver/voicemail/internal/testlog"
)

// Set up by TestMain.
var (
	repoRoot    string // the module root
	testDir     string // testcalls/
	binPath     string // the built server (or $VOICEMAIL_BIN)
	buildErr    error
	buildOutput string
	manifest    pcapManifest
	source      []int16 // audio.raw
)

type pcapManifest struct {
	SampleRate   int                  `json:"sample_rate"`
	FrameSamples int                  `json:"frame_samples"`
	Raw          string               `json:"raw"`
	RawSamples   int                  `json:"raw_samples"`
	Pcaps        map[string]*pcapInfo `json:"pcaps"`
}

type pcapInfo struct {
	File         string `json:"file"`
	Codec        string `json:"codec"`
	PayloadType  uint8  `json:"payload_type"`
	Frames       int    `json:"frames"`
	Packets      int    `json:"packets"`
	DurationMS   int    `json:"duration_ms"`
	Samples      int    `json:"samples"`
	SSRC         uint32 `json:"ssrc"`
	FirstSeq     uint16 `json:"first_seq"`
	Dropped      []int  `json:"dropped"`
	Swapped      []int  `json:"swapped"`
	Duplicated   []int  `json:"duplicated"`
	SSRCChangeAt int    `json:"ssrc_change_at"`
	FirstTS      uint32 `json:"first_timestamp"`
	SSRC2        uint32 `json:"ssrc2"`
	Timestamp2   uint32 `json:"timestamp2"`
}

func TestMain(m *testing.M) {
	flag.Parse()
	// The call tests mostly wait on the wire clock: run many at once unless
	// the caller chose -parallel.
	parallelSet := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.parallel" {
			parallelSet = true
		}
	})
	if !parallelSet {
		_ = flag.Set("test.parallel", "24")
	}

	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testDir = wd
	repoRoot = filepath.Dir(wd)

	if err := loadManifest(); err != nil {
		fmt.Fprintln(os.Stderr, "testcalls:", err)
		os.Exit(1)
	}

	tmp, err := os.MkdirTemp("", "voicemail-testcalls-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if b := os.Getenv("VOICEMAIL_BIN"); b != "" {
		binPath = b
	} else {
		binPath = filepath.Join(tmp, "voicemail")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/voicemail")
		cmd.Dir = repoRoot
		out, err := cmd.CombinedOutput()
		buildOutput = string(out)
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/voicemail: %v", err)
		}
	}
	// The Azure emulator starts before the call tests load the machine
	// (objectstore_test.go).
	var stopAzurite func()
	azurite, stopAzurite, azuriteErr = azuritetest.StartProcess(tmp)
	code := m.Run()
	if stopAzurite != nil {
		stopAzurite()
	}
	os.RemoveAll(tmp)
	os.Exit(code)
}

func loadManifest() error {
	b, err := os.ReadFile(filepath.Join(testDir, "pcap", "manifest.json"))
	if err != nil {
		return fmt.Errorf("%v (run: go run ./testcalls/mkpcap -out testcalls/pcap)", err)
	}
	if err := json.Unmarshal(b, &manifest); err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(testDir, "pcap", manifest.Raw))
	if err != nil {
		return err
	}
	source = make([]int16, len(raw)/2)
	for i := range source {
		source[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	if len(source) != manifest.RawSamples {
		return fmt.Errorf("audio.raw has %d samples, manifest says %d", len(source), manifest.RawSamples)
	}
	return nil
}

func pcapPath(name string) string { return filepath.Join(testDir, "pcap", name) }

// ---------------------------------------------------------------------------
// Tools

// requireSipp skips when sipp is missing, unless CI is set: then it fails.
// play_pcap_audio also needs raw sockets (root).
func requireSipp(t *testing.T) {
	t.Helper()
	why := ""
	if _, err := exec.LookPath("sipp"); err != nil {
		why = "sipp is not installed (Debian package sip-tester)"
	} else if os.Geteuid() != 0 {
		why = "sipp play_pcap_audio needs root (raw sockets)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "" {
		t.Skip(why)
	}
	t.Fatal(why + " (CI is set, so this is a failure)")
}

// ---------------------------------------------------------------------------
// Ports

var (
	portMu    sync.Mutex
	portsUsed = map[int]bool{}
	blockNext = 10000 + (os.Getpid()*7919)%190*100 // a pid-dependent start in [10000, 29000)
)

// freePort returns a port free for UDP and TCP on 127.0.0.1 (bound to port 0
// first, so it comes from the ephemeral range), never handed out twice.
func freePort(t *testing.T) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for i := 0; i < 200; i++ {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		p := u.LocalAddr().(*net.UDPAddr).Port
		tl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		u.Close()
		if err != nil {
			continue
		}
		tl.Close()
		if portsUsed[p] {
			continue
		}
		portsUsed[p] = true
		return p
	}
	t.Fatal("no free port")
	return 0
}

// portBlock returns the first of n consecutive UDP ports (even, n even) below
// the ephemeral range, all bindable now, never handed out twice in this run.
func portBlock(t *testing.T, n int) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for tries := 0; tries < 400; tries++ {
		base := blockNext
		blockNext += n
		if blockNext+n >= 30000 {
			blockNext = 10000
		}
		ok := true
		for p := base; p < base+n && ok; p++ {
			if portsUsed[p] {
				ok = false
				break
			}
			u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
			if err != nil {
				ok = false
				break
			}
			u.Close()
		}
		if !ok {
			continue
		}
		for p := base; p < base+n; p++ {
			portsUsed[p] = true
		}
		return base
	}
	t.Fatal("no free port block")
	return 0
}

// ---------------------------------------------------------------------------
// The server under test

type server struct {
	t        *testing.T
	dataDir  string
	sipPort  int
	httpPort int
	rtpMin   int
	rtpMax   int
	token    string
	cmd      *exec.Cmd
	log      *syncBuffer
	exited   chan struct{}
	waitErr  error
	killed   bool
	extra    []string
	stopOnce sync.Once
}

type syncBuffer = testlog.Buffer

// tail keeps the last lines of s, and its first lines/4: when a peer went
// into a loop, how it started is at the top.
func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		head := lines / 4
		out := append([]string{}, l[:head]...)
		out = append(out, fmt.Sprintf("... (%d lines left out)", len(l)-lines))
		l = append(out, l[len(l)-(lines-head):]...)
	}
	return strings.Join(l, "\n")
}

func randToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// portRetries bounds the start-ups retried after a lost port race.
var portRetries atomic.Int32

// startServer starts `voicemail serve --demo` on fresh ports with dataDir
// ("" = a new temp dir) and waits for /healthz. It is stopped with SIGTERM
// when the test ends; on failure its stderr is printed.
func startServer(t *testing.T, dataDir string, extra ...string) *server {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("the server does not build: %v\n%s", buildErr, buildOutput)
	}
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	s := &server{
		t: t, dataDir: dataDir,
		sipPort: freePort(t), httpPort: freePort(t),
		token: randToken(), log: &syncBuffer{}, exited: make(chan struct{}), extra: extra,
	}
	s.rtpMin = portBlock(t, 40)
	s.rtpMax = s.rtpMin + 39
	args := []string{"serve", "--demo",
		"--data-dir", dataDir,
		"--sip-listen", fmt.Sprintf("udp:127.0.0.1:%d,tcp:127.0.0.1:%d", s.sipPort, s.sipPort),
		"--sip-public-addr", "127.0.0.1",
		"--http-listen", fmt.Sprintf("127.0.0.1:%d", s.httpPort),
		"--rtp-ports", fmt.Sprintf("%d-%d", s.rtpMin, s.rtpMax),
		"--auth-admin-token", s.token,
		"--webhooks-allow-hosts", "127.0.0.0/8,::1", // the test webhook receivers listen on loopback
		// The tests send from 127.0.0.1 as the PBX would: a trusted proxy
		// (trust_test.go sends from 127.0.0.2 as an untrusted caller).
		"--sip-trusted-proxies", "127.0.0.1",
	}
	args = append(args, extra...)
	s.cmd = exec.Command(binPath, args...)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	s.cmd.Dir = dataDir
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("server %s stderr (pid %d, args %q):\n%s", dataDir, s.cmd.Process.Pid, args, tail(s.log.String(), 300))
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.exited:
			// A free port can be taken by another process between our probe
			// and the server's bind: start again on new ports.
			if strings.Contains(s.log.String(), "address already in use") && portRetries.Add(1) <= 20 {
				t.Logf("server start-up lost a port race; retrying on new ports")
				return startServer(t, dataDir, extra...)
			}
			t.Fatalf("server exited during start-up: %v\n%s", s.waitErr, tail(s.log.String(), 100))
		default:
		}
		resp, err := http.Get(s.url("/healthz"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not healthy after 30 s (last error %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

func (s *server) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.httpPort, path)
}

func (s *server) sipAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.sipPort) }

// stop sends SIGTERM and expects a clean exit (status 0) within 15 s.
func (s *server) stop() {
	s.stopOnce.Do(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
			if s.waitErr != nil && !s.killed {
				s.t.Errorf("server did not exit cleanly on SIGTERM: %v", s.waitErr)
			}
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
			s.t.Errorf("server still running 15 s after SIGTERM; killed")
		}
	})
}

// kill SIGKILLs the server (crash test).
func (s *server) kill() {
	s.killed = true
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.stopOnce.Do(func() {})
}

// api does a JSON request with the admin token; out may be nil.
func (s *server) api(method, path string, body any, out any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url(path), rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, b, fmt.Errorf("decode %s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode, b, nil
}

type apiMessage struct {
	ID         string `json:"id"`
	Mailbox    string `json:"mailbox"`
	Folder     string `json:"folder"`
	CallerID   string `json:"caller_id"`
	CallerName string `json:"caller_name"`
	ReceivedAt string `json:"received_at"`
	DurationMS int64  `json:"duration_ms"`
	Urgent     bool   `json:"urgent"`
	Read       bool   `json:"read"`
	Size       int64  `json:"size"`
}

func (s *server) messages(t *testing.T, mailbox string) []apiMessage {
	t.Helper()
	var out struct {
		Items []apiMessage `json:"items"`
		Next  string       `json:"next"`
	}
	code, body, err := s.api("GET", "/api/v1/mailboxes/"+mailbox+"/messages", nil, &out)
	if err != nil || code != 200 {
		t.Fatalf("GET messages of %s: %d %v %s", mailbox, code, err, body)
	}
	return out.Items
}

// waitMessages polls the API until mailbox holds at least n messages.
func (s *server) waitMessages(t *testing.T, mailbox string, n int, timeout time.Duration) []apiMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := s.messages(t, mailbox)
		if len(m) >= n {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailbox %s has %d messages after %v, want %d", mailbox, len(m), timeout, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *server) audio(t *testing.T, mailbox, id string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url("/api/v1/mailboxes/"+mailbox+"/messages/"+id+"/audio"), nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET audio %s/%s: %d %s", mailbox, id, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "audio/wav") && !strings.HasPrefix(ct, "audio/x-wav") {
		t.Errorf("audio Content-Type %q, want audio/wav", ct)
	}
	return b
}

type dbMessage struct {
	ID, Tenant, Mailbox, Folder, CallerID, CallerE164, CallerName, ReceivedAt, MediaKey string
	DurationMS, Size                                                                    int64
	Urgent, Read                                                                        bool
}

// dbMessages reads the messages table directly.
func (s *server) dbMessages(t *testing.T, mailbox string) []dbMessage {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(s.dataDir, "voicemail.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, tenant, mailbox, folder, caller_id, caller_e164, caller_name, received_at,
		duration_ms, urgent, read, size, media_key FROM messages WHERE mailbox = ? ORDER BY id`, mailbox)
	if err != nil {
		t.Fatalf("query messages table: %v", err)
	}
	defer rows.Close()
	var out []dbMessage
	for rows.Next() {
		v := make([]any, 13)
		p := make([]any, 13)
		for i := range v {
			p[i] = &v[i]
		}
		if err := rows.Scan(p...); err != nil {
			t.Fatal(err)
		}
		out = append(out, dbMessage{
			ID: asString(v[0]), Tenant: asString(v[1]), Mailbox: asString(v[2]), Folder: asString(v[3]),
			CallerID: asString(v[4]), CallerE164: asString(v[5]), CallerName: asString(v[6]),
			ReceivedAt: asString(v[7]), DurationMS: asInt(v[8]), Urgent: asInt(v[9]) != 0,
			Read: asInt(v[10]) != 0, Size: asInt(v[11]), MediaKey: asString(v[12]),
		})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func asString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

func asInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	case bool:
		if x {
			return 1
		}
		return 0
	case []byte, string:
		var n int64
		s := asString(x)
		if s == "true" {
			return 1
		}
		fmt.Sscan(s, &n)
		return n
	}
	return 0
}

// putGreeting writes an 8 kHz mono PCM16 WAV where the server looks for it.
func (s *server) putGreeting(t *testing.T, mailbox, kind string, pcm []int16) {
	t.Helper()
	dir := filepath.Join(s.dataDir, "media", "default", mailbox, "greetings")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, kind+".wav"), makeWAV(pcm), 0o644); err != nil {
		t.Fatal(err)
	}
}

// mediaFiles lists files under the data dir whose names end in one of the
// suffixes, skipping greetings.
func (s *server) mediaFiles(t *testing.T, suffixes ...string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(s.dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if d.Name() == "greetings" {
				return filepath.SkipDir
			}
			return nil
		}
		for _, suf := range suffixes {
			if strings.HasSuffix(d.Name(), suf) {
				out = append(out, p)
			}
		}
		return nil
	})
	return out
}

// ---------------------------------------------------------------------------
// sipp

type sippResult struct {
	code   int
	out    string
	errLog string
	msgLog string
	args   []string
}

func (r sippResult) String() string {
	return fmt.Sprintf("sipp %s\nexit %d\n--- stdout/stderr ---\n%s\n--- unexpected messages ---\n%s\n--- messages ---\n%s",
		strings.Join(r.args, " "), r.code, tail(r.out, 40), tail(r.errLog, 60), tail(r.msgLog, 150))
}

type sippProc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	dir  string
	args []string
	done chan struct{}
	res  sippResult
}

// startSipp runs a scenario from scenarios/ against s, in the background.
func startSipp(t *testing.T, s *server, scenario, service string, keys ...string) *sippProc {
	t.Helper()
	if len(keys)%2 != 0 {
		t.Fatal("startSipp: keys come in pairs")
	}
	dir := t.TempDir()
	args := []string{"-sf", filepath.Join(testDir, "scenarios", scenario),
		"-m", "1", "-timeout_error", "-timeout", "60s", "-nostdin",
		"-i", "127.0.0.1", "-p", fmt.Sprint(freePort(t)), "-mp", fmt.Sprint(portBlock(t, 4)),
		"-s", service,
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-trace_msg", "-message_file", filepath.Join(dir, "messages.log"),
		"-watchdog_minor_maxtriggers", "100000", "-watchdog_major_maxtriggers", "100000",
	}
	for i := 0; i < len(keys); i += 2 {
		args = append(args, "-key", keys[i], keys[i+1])
	}
	args = append(args, s.sipAddr())
	return launchSipp(t, dir, args)
}

// launchSipp runs sipp with args in dir, which holds its error and message
// logs; the result is collected when it exits.
func launchSipp(t *testing.T, dir string, args []string) *sippProc {
	t.Helper()
	p := &sippProc{out: &syncBuffer{}, dir: dir, args: args, done: make(chan struct{})}
	p.cmd = exec.Command("sipp", args...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start sipp: %v", err)
	}
	go func() {
		err := p.cmd.Wait()
		p.res = sippResult{code: p.cmd.ProcessState.ExitCode(), out: p.out.String(), args: args}
		if err != nil && p.res.code == 0 {
			p.res.code = -1
		}
		b, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
		p.res.errLog = string(b)
		b, _ = os.ReadFile(filepath.Join(dir, "messages.log"))
		p.res.msgLog = string(b)
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *sippProc) wait(timeout time.Duration) (sippResult, bool) {
	select {
	case <-p.done:
		return p.res, true
	case <-time.After(timeout):
		p.kill()
		return p.res, false
	}
}

func (p *sippProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// runSipp runs a scenario to the end and fails the test unless sipp exits 0.
func runSipp(t *testing.T, s *server, scenario, service string, keys ...string) sippResult {
	t.Helper()
	p := startSipp(t, s, scenario, service, keys...)
	res, ok := p.wait(90 * time.Second)
	if !ok {
		t.Fatalf("sipp %s did not finish in 90 s\n%s", scenario, res)
	}
	if res.code != 0 {
		t.Fatalf("sipp %s failed\n%s", scenario, res)
	}
	return res
}

// ---------------------------------------------------------------------------
// WAV

type wavFile struct {
	riffSize   uint32
	fmtSize    uint32
	formatTag  uint16
	channels   uint16
	rate       uint32
	byteRate   uint32
	blockAlign uint16
	bits       uint16
	dataOffset int
	dataSize   uint32
	samples    []int16
}

// parseWAV walks the RIFF chunks of a PCM16 WAV.
func parseWAV(b []byte) (*wavFile, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("not a RIFF/WAVE file")
	}
	w := &wavFile{riffSize: binary.LittleEndian.Uint32(b[4:])}
	off := 12
	for off+8 <= len(b) {
		id := string(b[off : off+4])
		size := binary.LittleEndian.Uint32(b[off+4:])
		body := off + 8
		switch id {
		case "fmt ":
			if body+16 > len(b) {
				return nil, fmt.Errorf("short fmt chunk")
			}
			w.fmtSize = size
			w.formatTag = binary.LittleEndian.Uint16(b[body:])
			w.channels = binary.LittleEndian.Uint16(b[body+2:])
			w.rate = binary.LittleEndian.Uint32(b[body+4:])
			w.byteRate = binary.LittleEndian.Uint32(b[body+8:])
			w.blockAlign = binary.LittleEndian.Uint16(b[body+12:])
			w.bits = binary.LittleEndian.Uint16(b[body+14:])
		case "data":
			w.dataOffset = body
			w.dataSize = size
			end := body + int(size)
			if end > len(b) {
				return w, fmt.Errorf("data chunk says %d bytes, file has %d after the header", size, len(b)-body)
			}
			if w.bits == 16 {
				w.samples = make([]int16, size/2)
				for i := range w.samples {
					w.samples[i] = int16(binary.LittleEndian.Uint16(b[body+2*i:]))
				}
			}
			return w, nil
		}
		off = body + int(size) + int(size&1)
	}
	return nil, fmt.Errorf("no data chunk")
}

// checkWAVHeader requires the canonical 44-byte PCM16 8 kHz mono layout.
func checkWAVHeader(t *testing.T, b []byte, w *wavFile) {
	t.Helper()
	if w.formatTag != 1 || w.channels != 1 || w.rate != 8000 || w.bits != 16 || w.byteRate != 16000 || w.blockAlign != 2 || w.fmtSize != 16 {
		t.Errorf("WAV fmt: tag %d, %d ch, %d Hz, %d bits, %d B/s, align %d, fmt size %d; want 1, 1, 8000, 16, 16000, 2, 16",
			w.formatTag, w.channels, w.rate, w.bits, w.byteRate, w.blockAlign, w.fmtSize)
	}
	if w.dataOffset != 44 {
		t.Errorf("WAV data at offset %d, want 44 (RIFF, fmt, data only)", w.dataOffset)
	}
	if int(w.dataSize) != len(b)-w.dataOffset {
		t.Errorf("WAV data size %d, file holds %d bytes of data", w.dataSize, len(b)-w.dataOffset)
	}
	if int(w.riffSize) != len(b)-8 {
		t.Errorf("RIFF size %d, want file size - 8 = %d", w.riffSize, len(b)-8)
	}
	if int(w.dataSize) != 2*len(w.samples) {
		t.Errorf("data size %d != 2 * %d samples", w.dataSize, len(w.samples))
	}
}

func makeWAV(pcm []int16) []byte {
	b := make([]byte, 44+2*len(pcm))
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*len(pcm)))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], 8000)
	binary.LittleEndian.PutUint32(b[28:], 16000)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*len(pcm)))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(s))
	}
	return b
}

// ---------------------------------------------------------------------------
// Audio comparison

// decodedSource is the source as it sounds after the given G.711 codec.
func decodedSource(pt uint8, n int) []int16 {
	if n > len(source) {
		n = len(source)
	}
	return siptest.RoundTrip(pt, source[:n])
}

// alignAt finds where rec[k:k+win] sits in src: the returned offset maps
// rec[i] to src[i+offset]. The signal never repeats, so a match is unique.
func alignAt(rec, src []int16, k, win int) (int, bool) {
	if k < 0 || k+win > len(rec) {
		return 0, false
	}
	w := rec[k : k+win]
	silent := true
	for _, x := range w {
		if x > 64 || x < -64 {
			silent = false
			break
		}
	}
	if silent {
		return 0, false
	}
	for p := 0; p+win <= len(src); p++ {
		if src[p] != w[0] {
			continue
		}
		match := true
		for i := 1; i < win; i++ {
			if src[p+i] != w[i] {
				match = false
				break
			}
		}
		if match {
			return p - k, true
		}
	}
	return 0, false
}

// findOffset aligns the recording in the source, trying windows spread over
// the first part of the recording (so that a lost frame does not defeat it).
func findOffset(rec, src []int16) (int, bool) {
	for k := 0; k+320 <= len(rec) && k < 160*60; k += 160*3 + 17 {
		if off, ok := alignAt(rec, src, k, 320); ok {
			return off, true
		}
	}
	return 0, false
}

// mismatches counts samples where rec[i] != src[i+offset], for i in [from, to),
// skipping source frames in skip. It also returns the first mismatch index.
func mismatches(rec, src []int16, offset, from, to int, skip map[int]bool) (int, int) {
	n, first := 0, -1
	for i := from; i < to && i < len(rec); i++ {
		si := i + offset
		if si < 0 || si >= len(src) {
			n++
			if first < 0 {
				first = i
			}
			continue
		}
		if skip[si/160] {
			continue
		}
		if rec[i] != src[si] {
			n++
			if first < 0 {
				first = i
			}
		}
	}
	return n, first
}

// soxiOK runs soxi on the file when sox is installed.
func soxiOK(t *testing.T, path string) {
	t.Helper()
	if _, err := exec.LookPath("soxi"); err != nil {
		t.Logf("soxi not installed; skipping soxi check of %s", path)
		return
	}
	out, err := exec.Command("soxi", path).CombinedOutput()
	if err != nil {
		t.Errorf("soxi %s: %v\n%s", path, err, out)
	}
}

// skipOrFail skips a test whose tool or data is missing, except under CI,
// where it is a failure with the reason (a test never skips silently there).
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "" {
		t.Skip(why)
	}
	t.Fatal(why + " (CI is set, so this is a failure)")
}
