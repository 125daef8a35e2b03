package testcalls

// MWI end to end (docs/mwi.md): sipp
// subscribers (UAC) and an unsolicited target (UAS) against the real binary;
// the counts change through the server process (deposits by the siptest
// client, played/deleted through the REST API, or, where those routes are
// missing, through the database and a restart).

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/siptest"
)

// mwiServer is a server whose deposits are quick: one-second messages count.
func mwiServer(t *testing.T, dataDir string, extra ...string) *server {
	t.Helper()
	return startServer(t, dataDir, append([]string{"--recording-min-seconds", "1"}, extra...)...)
}

// restartSameSIP stops s and starts a server on the same data and SIP port
// (subscribers keep talking to the address they subscribed to).
func restartSameSIP(t *testing.T, s *server) *server {
	t.Helper()
	s.stop()
	s2 := mwiServer(t, s.dataDir, "--sip-listen", fmt.Sprintf("udp:127.0.0.1:%d,tcp:127.0.0.1:%d", s.sipPort, s.sipPort))
	s2.sipPort = s.sipPort
	return s2
}

// mwiSipp runs a scenario with our own arguments (local port, call count…).
func mwiSipp(t *testing.T, sipAddr, scenario string, port int, extra []string, keys ...string) *sippProc {
	t.Helper()
	dir := t.TempDir()
	if port == 0 {
		port = freePort(t)
	}
	args := []string{"-sf", filepath.Join(testDir, "scenarios", scenario),
		"-timeout_error", "-timeout", "120s", "-nostdin",
		"-i", "127.0.0.1", "-p", fmt.Sprint(port),
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-trace_msg", "-message_file", filepath.Join(dir, "messages.log"),
	}
	args = append(args, extra...)
	for i := 0; i < len(keys); i += 2 {
		args = append(args, "-key", keys[i], keys[i+1])
	}
	args = append(args, sipAddr)
	return launchSipp(t, dir, args)
}

// waitProgress waits until the scenario wrote mark n times to ./progress.
func waitProgress(t *testing.T, p *sippProc, mark string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(p.dir, "progress"))
		got := 0
		for _, l := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(l) == mark {
				got++
			}
		}
		if got >= n {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("sipp ended before %d× %q (have %d)\n%s", n, mark, got, p.res)
		default:
		}
		if time.Now().After(deadline) {
			p.kill()
			t.Fatalf("no %d× %q from sipp in 60 s (have %d)\n%s", n, mark, got, p.res)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func sippOK(t *testing.T, p *sippProc, what string) {
	t.Helper()
	res, ok := p.wait(90 * time.Second)
	if !ok {
		t.Fatalf("%s: sipp did not finish\n%s", what, res)
	}
	if res.code != 0 {
		t.Fatalf("%s: sipp failed\n%s\n--- why ---\n%s", what, res, abortLines(res.errLog))
	}
}

// abortLines picks sipp's reasons for failing calls out of its error log
// (which dead-call noise can otherwise push out of view).
func abortLines(errLog string) string {
	var out []string
	for _, e := range strings.Split(errLog, "\n\n") {
		if strings.Contains(e, "Aborting") || strings.Contains(e, "nexpected") || strings.Contains(e, "regexp") {
			out = append(out, e)
		}
	}
	return tail(strings.Join(out, "\n\n"), 80)
}

// quickDeposit leaves a ~1.5 s message in mailbox with the siptest client
// ('#' skips the greeting) and returns when the BYE was sent.
func quickDeposit(t *testing.T, sipAddr, mailbox string) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := siptest.Dial(ctx, siptest.Config{
		Server:     sipAddr,
		RequestURI: fmt.Sprintf("sip:%s@%s", mailbox, sipAddr),
		From:       `"MWI test" <sip:` + callerNumber + `@127.0.0.1>`,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Status() != 200 {
		t.Fatalf("deposit INVITE to %s answered %d", mailbox, c.Status())
	}
	time.Sleep(300 * time.Millisecond)
	if err := skipGreeting(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := c.SendAudio(ctx, siptest.Tone(700, 12000, 6000)); err != nil {
		t.Fatal(err)
	}
	bye := time.Now()
	if r, err := c.Bye(ctx); err != nil || (r != nil && r.StatusCode != 200) {
		t.Fatalf("deposit BYE: %v %v", r, err)
	}
	return bye
}

// changeMessage marks a message played or deletes it through the server: the
// REST API when it has the route; else the database while the server is
// stopped, then a restart (whose start-up NOTIFY carries the new state).
func changeMessage(t *testing.T, s *server, mailbox, id string, del bool) (*server, string) {
	t.Helper()
	path := "/api/v1/mailboxes/" + mailbox + "/messages/" + id
	var code int
	var body []byte
	var err error
	if del {
		code, body, err = s.api("DELETE", path, nil, nil)
	} else {
		code, body, err = s.api("PATCH", path, map[string]any{"read": true}, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if code/100 == 2 {
		return s, "api"
	}
	if code != 404 && code != 405 || !strings.Contains(string(body), "route") && code == 404 {
		t.Fatalf("%s %s: %d %s", map[bool]string{true: "DELETE", false: "PATCH"}[del], path, code, body)
	}
	s.stop()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(s.dataDir, "voicemail.db")+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	q := `UPDATE messages SET read = 1, folder = 'old' WHERE id = ?`
	if del {
		q = `DELETE FROM messages WHERE id = ?`
	}
	if _, err := db.Exec(q, id); err != nil {
		t.Fatal(err)
	}
	db.Close()
	return restartSameSIP(t, s), "restart"
}

// 9: SUBSCRIBE → 200 + NOTIFY 0/0; deposit → 1/0; played → 0/1; deleted →
// 0/0; refresh → immediate NOTIFY; Expires: 0 → terminated.
func TestMWISubscribeDepositPlayDelete(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	s := mwiServer(t, "")
	addr := s.sipAddr()
	p := mwiSipp(t, addr, "mwi_flow.xml", 0, []string{"-m", "1", "-s", "1001"})
	waitProgress(t, p, "ready", 1)
	quickDeposit(t, addr, "1001")
	waitProgress(t, p, "deposit", 1)
	msgs := s.waitMessages(t, "1001", 1, 20*time.Second)
	s, how := changeMessage(t, s, "1001", msgs[0].ID, false)
	t.Logf("played through: %s", how)
	waitProgress(t, p, "played", 1)
	s, how = changeMessage(t, s, "1001", msgs[0].ID, true)
	t.Logf("deleted through: %s", how)
	waitProgress(t, p, "deleted", 1)
	sippOK(t, p, "mwi_flow")
	checkCRLFBodies(t, p.res.msgLog)
	_ = s
}

// checkCRLFBodies: every message-summary body sipp received has CRLF line ends.
func checkCRLFBodies(t *testing.T, log string) {
	t.Helper()
	n := 0
	for _, i := range indexAll(log, "Messages-Waiting:") {
		chunk := log[i:min(len(log), i+200)]
		if !strings.Contains(chunk, "\r\nMessage-Account: sip:5555@") || !strings.Contains(chunk, "\r\nVoice-Message: ") {
			t.Errorf("body without CRLF line ends or fields: %q", chunk)
		}
		n++
	}
	if n == 0 {
		t.Errorf("no message-summary body in sipp's message log")
	}
}

func indexAll(s, sub string) []int {
	var out []int
	for off := 0; ; {
		i := strings.Index(s[off:], sub)
		if i < 0 {
			return out
		}
		out = append(out, off+i)
		off += i + len(sub)
	}
}

// Event: presence → 489; Expires 2 → NOTIFY active, then terminated;reason=timeout.
func TestMWIPresenceAndExpiry(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	s := mwiServer(t, "")
	t.Run("presence_489", func(t *testing.T) {
		sippOK(t, mwiSipp(t, s.sipAddr(), "mwi_presence.xml", 0, []string{"-m", "1", "-s", "1001"},
			"from_user", "1001", "expires", "600"), "mwi_presence")
	})
	t.Run("expiry", func(t *testing.T) {
		sippOK(t, mwiSipp(t, s.sipAddr(), "mwi_expiry.xml", 0, []string{"-m", "1", "-s", "1001"},
			"from_user", "1001", "expires", "2"), "mwi_expiry")
	})
}

// A group deposit lights every member's subscription to the group mailbox.
func TestMWIGroupDeposit(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	s := mwiServer(t, "")
	var ps []*sippProc
	for _, member := range []string{"1001", "1002"} {
		p := mwiSipp(t, s.sipAddr(), "mwi_change.xml", 0, []string{"-m", "1", "-s", "8000"}, "from_user", member, "expires", "600")
		waitProgress(t, p, "ready", 1)
		ps = append(ps, p)
	}
	quickDeposit(t, s.sipAddr(), "8000")
	for i, p := range ps {
		sippOK(t, p, fmt.Sprintf("member %d", i+1))
	}
}

// 20 subscribers of one mailbox all get the change.
func TestMWITwentySubscribers(t *testing.T) {
	// Not parallel: twenty sipp subscribers answer our NOTIFYs within T1
	// only when sipp has the CPU; beside other tests on two cores it may
	// not, and the scenario takes a retransmitted NOTIFY for the next one.
	requireSipp(t)
	s := mwiServer(t, "")
	p := mwiSipp(t, s.sipAddr(), "mwi_change.xml", 0, []string{"-m", "20", "-l", "20", "-r", "20", "-s", "1002"},
		"from_user", "1002", "expires", "600")
	waitProgress(t, p, "ready", 20)
	quickDeposit(t, s.sipAddr(), "1002")
	waitProgress(t, p, "changed", 20)
	sippOK(t, p, "20 subscribers")
}

// Restart the server: the subscriber gets a NOTIFY with the current counts.
func TestMWIRestartNotifies(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	s := mwiServer(t, "")
	p := mwiSipp(t, s.sipAddr(), "mwi_restart.xml", 0, []string{"-m", "1", "-s", "1001"}, "from_user", "1001", "expires", "600")
	waitProgress(t, p, "ready", 1)
	quickDeposit(t, s.sipAddr(), "1001")
	waitProgress(t, p, "changed", 1)
	s2 := restartSameSIP(t, s)
	waitProgress(t, p, "restored", 1)
	sippOK(t, p, "mwi_restart")
	if !strings.Contains(s2.log.String(), "mwi started") {
		t.Errorf("the restarted server did not log the MWI start")
	}
}

// 10: unsolicited NOTIFY to a sipp UAS target; its 481 stops them, while
// another target of the same mailbox keeps getting them.
func TestMWIUnsolicitedTarget481(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	s := mwiServer(t, "")
	port481 := freePort(t)
	uas := mwiSipp(t, s.sipAddr(), "mwi_target_481.xml", port481, []string{"-m", "1"})
	other := newUDPTarget(t, 0)
	code, body, err := s.api("POST", "/api/v1/mailboxes", map[string]any{
		"number": "1005", "name": "Eve", "pin": "4321",
		"mwi_targets": []string{fmt.Sprintf("sip:1005@127.0.0.1:%d", port481), fmt.Sprintf("sip:1005@127.0.0.1:%d", other.port())},
	}, nil)
	if err != nil || code != 201 {
		t.Fatalf("create mailbox with mwi_targets: %d %v %s", code, err, body)
	}
	sippOK(t, uas, "target answering 481")
	if got := other.wait(t, "Voice-Message: 0/0 (0/0)"); got == "" {
		t.Fatal("the other target got no NOTIFY")
	}
	// The stopped target's port now belongs to a listener that must hear nothing.
	stopped := newUDPTarget(t, port481)
	quickDeposit(t, s.sipAddr(), "1005")
	other.wait(t, "Voice-Message: 1/0 (0/0)")
	time.Sleep(1500 * time.Millisecond) // well past the coalescing window
	if n := stopped.count(); n != 0 {
		t.Errorf("the target that answered 481 got %d more NOTIFYs", n)
	}
	if !strings.Contains(s.log.String(), "mwi target stopped") {
		t.Errorf("no 'mwi target stopped' in the server log")
	}
}

// udpTarget is a phone that answers every request 200 and keeps what it got.
type udpTarget struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  []string
	at   []time.Time
	ch   chan struct{}
}

func newUDPTarget(t *testing.T, port int) *udpTarget {
	t.Helper()
	var c *net.UDPConn
	var err error
	for i := 0; i < 50; i++ { // sipp may hold the port a moment longer
		if c, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	u := &udpTarget{conn: c, ch: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			now := time.Now()
			msg := string(buf[:n])
			if strings.HasPrefix(msg, "SIP/2.0") {
				continue
			}
			_, _ = c.WriteToUDP([]byte(replyTo(msg, 200)), from)
			u.mu.Lock()
			u.got = append(u.got, msg)
			u.at = append(u.at, now)
			u.mu.Unlock()
			select {
			case u.ch <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return u
}

func (u *udpTarget) port() int { return u.conn.LocalAddr().(*net.UDPAddr).Port }

func (u *udpTarget) count() int { u.mu.Lock(); defer u.mu.Unlock(); return len(u.got) }

// wait returns the first request received containing want.
func (u *udpTarget) wait(t *testing.T, want string) string {
	t.Helper()
	_, m := u.waitAt(t, want, 0)
	return m
}

// waitAt returns the time of the first request from index from on containing want.
func (u *udpTarget) waitAt(t *testing.T, want string, from int) (time.Time, string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		u.mu.Lock()
		for i := from; i < len(u.got); i++ {
			if strings.Contains(u.got[i], want) {
				at, m := u.at[i], u.got[i]
				u.mu.Unlock()
				return at, m
			}
		}
		u.mu.Unlock()
		select {
		case <-u.ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no request with %q in 30 s", want)
			return time.Time{}, ""
		}
	}
}

// replyTo builds a response to a request (Via, From, To, Call-ID, CSeq copied).
func replyTo(req string, code int) string {
	var hdrs []string
	for _, line := range strings.Split(req, "\r\n")[1:] {
		if line == "" {
			break
		}
		l := strings.ToLower(line)
		for _, h := range []string{"via:", "v:", "from:", "f:", "to:", "t:", "call-id:", "i:", "cseq:"} {
			if strings.HasPrefix(l, h) {
				hdrs = append(hdrs, line)
			}
		}
	}
	return fmt.Sprintf("SIP/2.0 %d OK\r\n%s\r\nContent-Length: 0\r\n\r\n", code, strings.Join(hdrs, "\r\n"))
}

// subscribeUDP subscribes a udpTarget to mailbox with a hand-written SUBSCRIBE.
func subscribeUDP(t *testing.T, u *udpTarget, sipAddr, mailbox string) {
	t.Helper()
	server, err := net.ResolveUDPAddr("udp", sipAddr)
	if err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprintf("SUBSCRIBE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s;rport\r\n"+
		"From: <sip:%s@127.0.0.1>;tag=%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s@bench\r\nCSeq: 1 SUBSCRIBE\r\nMax-Forwards: 70\r\n"+
		"Contact: <sip:%s@127.0.0.1:%d>\r\nEvent: message-summary\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
		mailbox, sipAddr, u.port(), randToken(), mailbox, randToken()[:8], mailbox, sipAddr, randToken(), mailbox, u.port())
	if _, err := u.conn.WriteToUDP([]byte(msg), server); err != nil {
		t.Fatal(err)
	}
}

// TestMWIBenchDepositToNotify measures, for BENCHMARKS.md, the time from a
// deposit's BYE to its NOTIFY reaching a subscriber on loopback. It runs
// only with VOICEMAIL_MWI_BENCH=N (deposits per lane; 8 lanes).
func TestMWIBenchDepositToNotify(t *testing.T) {
	n := 0
	fmt.Sscan(os.Getenv("VOICEMAIL_MWI_BENCH"), &n)
	if n <= 0 {
		t.Skip("set VOICEMAIL_MWI_BENCH=N to run N deposits per lane")
	}
	var s *server
	lanes := 8
	if ext := os.Getenv("VOICEMAIL_MWI_BENCH_SERVER"); ext != "" {
		// A server already running (testcalls/load/run.sh mwi: under load),
		// given as SIPPORT,HTTPPORT,TOKEN on 127.0.0.1.
		var tok string
		s = &server{t: t}
		if _, err := fmt.Sscanf(strings.ReplaceAll(ext, ",", " "), "%d %d %s", &s.sipPort, &s.httpPort, &tok); err != nil {
			t.Fatalf("VOICEMAIL_MWI_BENCH_SERVER=%q: want SIPPORT,HTTPPORT,TOKEN: %v", ext, err)
		}
		s.token, lanes = tok, 4
	} else {
		s = mwiServer(t, "", "--log-level", "warn")
	}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for l := 0; l < lanes; l++ {
		mb := fmt.Sprint(2100 + l)
		if code, body, err := s.api("POST", "/api/v1/mailboxes", map[string]any{"number": mb, "name": "Bench", "pin": "4321"}, nil); err != nil || code != 201 {
			t.Fatalf("create %s: %d %v %s", mb, code, err, body)
		}
		u := newUDPTarget(t, 0)
		subscribeUDP(t, u, s.sipAddr(), mb)
		u.wait(t, "Voice-Message: 0/0")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= n; i++ {
				from := u.count()
				bye := quickDeposit(t, s.sipAddr(), mb)
				at, _ := u.waitAt(t, fmt.Sprintf("Voice-Message: %d/0", i), from)
				mu.Lock()
				lat = append(lat, at.Sub(bye))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	t.Logf("BYE → NOTIFY over %d deposits: p50 %v, p90 %v, p99 %v, max %v", len(lat), pct(.5), pct(.9), pct(.99), lat[len(lat)-1])
}
