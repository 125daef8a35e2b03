// The signalling tests drive sip.Server with the real call runtime
// (package call), as cmd/voicemail wires them: hence an external test
// package.
package sip_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmserver/voicemail/call"
	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/prompts"
	vsip "github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/store"
)

// testServer is a SIP server on a free loopback UDP port with a real SQLite
// store, media volume and RTP engine.
type testServer struct {
	srv  *vsip.Server
	addr *net.UDPAddr
	st   store.Store
}

func startServer(t *testing.T, mutate func(*vsip.Config)) *testServer {
	t.Helper()
	return startServerLog(t, mutate, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func startServerLog(t *testing.T, mutate func(*vsip.Config), log *slog.Logger) *testServer {
	t.Helper()
	return startServerCalls(t, mutate, log, nil)
}

// startServerCalls runs the server with calls as its CallHandler (nil: the
// real call runtime).
func startServerCalls(t *testing.T, mutate func(*vsip.Config), log *slog.Logger, calls vsip.CallHandler) *testServer {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "vm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateTenant(ctx, &store.Tenant{Name: "default"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateMailbox(ctx, &store.Mailbox{Tenant: "default", Number: "1001", Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateMailbox(ctx, &store.Mailbox{Tenant: "default", Number: "1003", Name: "Carol", Operator: "1900"}); err != nil {
		t.Fatal(err)
	}
	blobs, err := store.NewFSBlobs(filepath.Join(dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := media.NewEngine(media.EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 40000 + int(time.Now().UnixNano()%500)*20, PortMax: 49999, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	ps, err := prompts.Load("")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().(*net.UDPAddr)
	pc.Close()
	cfg := vsip.Config{
		Listeners: []vsip.Listener{{Transport: "udp", Addr: addr.String()}},
		PublicIP:  net.IPv4(127, 0, 0, 1), AccessNumbers: []string{"5555"}, MaxCalls: 10,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	if calls == nil {
		calls = call.New(call.Config{Recording: call.Recording{MaxSeconds: 60, MinSeconds: 1, SilenceSeconds: 10}},
			call.Deps{Store: st, Blobs: blobs, Prompts: ps, Logger: log})
	}
	srv, err := vsip.New(cfg, vsip.Deps{Store: st, Engine: eng, Calls: calls, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	if err := srv.Listen(lctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Drain(dctx)
		dcancel()
		cancel()
		srv.Close()
	})
	return &testServer{srv: srv, addr: addr, st: st}
}

// phone is a bare UDP SIP peer that writes requests by hand.
type phone struct {
	t      *testing.T
	user   string
	conn   *net.UDPConn
	server *net.UDPAddr
	callID string
	tag    string
	toTag  string
	rtp    int
	branch string // the Via branch of the next requests; empty = a new one each
}

func newPhone(t *testing.T, server *net.UDPAddr) *phone {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &phone{t: t, user: "1001", conn: c, server: server, callID: fmt.Sprintf("%d@test", time.Now().UnixNano()), tag: "ph1", rtp: 30000}
}

func (p *phone) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

func (p *phone) sdp(dir string) string {
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=%s\r\n", p.rtp, dir)
}

func (p *phone) sendBody(method string, cseq int, contentType, body string) {
	p.t.Helper()
	p.sendRaw(method, cseq, contentType, body)
}

func (p *phone) send(method string, cseq int, body string, extra ...string) {
	p.t.Helper()
	ct := ""
	if body != "" {
		ct = "application/sdp"
	}
	p.sendRaw(method, cseq, ct, body, extra...)
}

func (p *phone) sendRaw(method string, cseq int, contentType, body string, extra ...string) {
	p.t.Helper()
	to := fmt.Sprintf("<sip:%s@%s>", p.user, p.server)
	if p.toTag != "" {
		to += ";tag=" + p.toTag
	}
	branch := p.branch
	if branch == "" {
		branch = fmt.Sprint(time.Now().UnixNano())
	}
	msg := fmt.Sprintf("%s sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s;rport\r\n"+
		"From: <sip:2002@127.0.0.1>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\n"+
		"Contact: <sip:2002@127.0.0.1:%d>\r\n", method, p.user, p.server, p.port(), branch, p.tag, to, p.callID, cseq, method, p.port())
	for _, h := range extra {
		msg += h + "\r\n"
	}
	if contentType != "" {
		msg += "Content-Type: " + contentType + "\r\n"
	}
	msg += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
	if _, err := p.conn.WriteToUDP([]byte(msg), p.server); err != nil {
		p.t.Fatal(err)
	}
}

// reply answers a request from the server.
func (p *phone) reply(req string, code int) {
	p.t.Helper()
	var hdrs []string
	for _, line := range strings.Split(req, "\r\n")[1:] {
		for _, h := range []string{"via:", "from:", "to:", "call-id:", "cseq:"} {
			if strings.HasPrefix(strings.ToLower(line), h) {
				hdrs = append(hdrs, line)
			}
		}
	}
	msg := fmt.Sprintf("SIP/2.0 %d OK\r\n%s\r\nContent-Length: 0\r\n\r\n", code, strings.Join(hdrs, "\r\n"))
	if _, err := p.conn.WriteToUDP([]byte(msg), p.server); err != nil {
		p.t.Fatal(err)
	}
}

// read returns the next SIP message, skipping nothing.
func (p *phone) read(timeout time.Duration) (string, bool) {
	buf := make([]byte, 8192)
	_ = p.conn.SetReadDeadline(time.Now().Add(timeout))
	n, _, err := p.conn.ReadFromUDP(buf)
	if err != nil {
		return "", false
	}
	return string(buf[:n]), true
}

// expect reads until a message whose first line starts with prefix.
func (p *phone) expect(prefix string, timeout time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		m, ok := p.read(time.Until(deadline))
		if ok && strings.HasPrefix(m, prefix) {
			if p.toTag == "" {
				p.toTag = header(m, "To", ";tag=")
			}
			return m
		}
	}
	p.t.Fatalf("no %q within %s", prefix, timeout)
	return ""
}

// header returns the text after marker in the first header line named name.
func header(msg, name, marker string) string {
	for _, line := range strings.Split(msg, "\r\n") {
		if strings.HasPrefix(strings.ToLower(line), strings.ToLower(name)+":") {
			if i := strings.Index(line, marker); i >= 0 {
				v := line[i+len(marker):]
				if j := strings.IndexAny(v, ";>\r"); j >= 0 {
					v = v[:j]
				}
				return v
			}
		}
	}
	return ""
}

func TestNoACKRetransmitsThenBYE(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	p := newPhone(t, ts.addr)
	p.send("INVITE", 1, p.sdp("sendrecv"))
	var times []time.Time
	for {
		m, ok := p.read(40 * time.Second)
		if !ok {
			t.Fatal("no BYE after unacknowledged 200")
		}
		if strings.HasPrefix(m, "SIP/2.0 200") {
			times = append(times, time.Now())
		}
		if strings.HasPrefix(m, "BYE ") {
			p.reply(m, 200)
			break
		}
	}
	// RFC 3261 §13.3.1.4: T1, 2T1, 4T1 … capped at T2 until 64*T1: the
	// first send plus about ten retransmissions.
	if len(times) < 8 {
		t.Fatalf("only %d 200 OKs before BYE", len(times))
	}
	for i := 2; i < 4; i++ {
		prev, cur := times[i-1].Sub(times[i-2]), times[i].Sub(times[i-1])
		if cur < prev*3/2 {
			t.Errorf("retransmission %d after %v, previous after %v: not doubling", i, cur, prev)
		}
	}
}

func TestInDialogErrorsAndHold(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	p := newPhone(t, ts.addr)
	p.send("INVITE", 1, p.sdp("sendrecv"))
	ok := p.expect("SIP/2.0 200", 5*time.Second)
	if header(ok, "Allow-Events", "") == "" && !strings.Contains(ok, "Allow-Events: message-summary") {
		t.Errorf("200 lacks Allow-Events:\n%s", ok)
	}
	if !strings.Contains(ok, "o=voicemail ") || !strings.Contains(ok, " 1 IN IP4") {
		t.Fatalf("answer origin:\n%s", ok)
	}
	p.send("ACK", 1, "")

	// Hold: sendonly is answered recvonly with a new o= version.
	p.send("INVITE", 2, p.sdp("sendonly"))
	hold := p.expect("SIP/2.0 200", 5*time.Second)
	if !strings.Contains(hold, "a=recvonly") || !strings.Contains(hold, " 2 IN IP4") {
		t.Errorf("hold answer:\n%s", hold)
	}
	p.send("ACK", 2, "")
	// Resume.
	p.send("INVITE", 3, p.sdp("sendrecv"))
	if res := p.expect("SIP/2.0 200", 5*time.Second); !strings.Contains(res, "a=sendrecv") {
		t.Errorf("resume answer:\n%s", res)
	}
	p.send("ACK", 3, "")
	// A lower CSeq in the dialog: 500 (§12.2.2).
	p.send("INFO", 2, "")
	p.expect("SIP/2.0 500", 5*time.Second)
	// INFO with a DTMF body is accepted.
	p.send("INFO", 4, "", "Content-Type: application/dtmf-relay")
	p.expect("SIP/2.0 200", 5*time.Second)
	// Unusable re-INVITE SDP: 488, call goes on.
	p.send("INVITE", 5, "v=0\r\no=- 1 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\n")
	p.expect("SIP/2.0 488", 5*time.Second)
	p.send("ACK", 5, "")
	p.send("BYE", 6, "")
	p.expect("SIP/2.0 200", 5*time.Second)
	// The dialog is gone: 481.
	p.send("BYE", 7, "")
	p.expect("SIP/2.0 481", 5*time.Second)
}

func TestRequireAndUnsupportedBody(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	p := newPhone(t, ts.addr)
	p.send("INVITE", 1, p.sdp("sendrecv"), "Require: 100rel")
	res := p.expect("SIP/2.0 420", 5*time.Second)
	if !strings.Contains(res, "Unsupported: 100rel") {
		t.Errorf("420 lacks Unsupported:\n%s", res)
	}
	p.send("ACK", 1, "")
	q := newPhone(t, ts.addr)
	msg := "INVITE sip:1001@x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKxy\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:1001@x>\r\nCall-ID: ct@test\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1>\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
	if _, err := q.conn.WriteToUDP([]byte(fmt.Sprintf(msg, q.port())), ts.addr); err != nil {
		t.Fatal(err)
	}
	res = q.expect("SIP/2.0 415", 5*time.Second)
	if !strings.Contains(res, "Accept: application/sdp") {
		t.Errorf("415 lacks Accept:\n%s", res)
	}
}

func TestDrainRefusesNewCalls(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	p := newPhone(t, ts.addr)
	p.send("INVITE", 1, p.sdp("sendrecv"))
	p.expect("SIP/2.0 200", 5*time.Second)
	p.send("ACK", 1, "")
	drained := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		ts.srv.Drain(ctx)
		close(drained)
	}()
	time.Sleep(100 * time.Millisecond)
	q := newPhone(t, ts.addr)
	q.send("INVITE", 1, q.sdp("sendrecv"))
	res := q.expect("SIP/2.0 503", 5*time.Second)
	if !strings.Contains(res, "Retry-After:") {
		t.Errorf("503 lacks Retry-After:\n%s", res)
	}
	// A proxy's OPTIONS probe hears the drain too, so it routes elsewhere.
	o := newPhone(t, ts.addr)
	o.send("OPTIONS", 1, "")
	o.expect("SIP/2.0 503", 5*time.Second)
	// The call in progress is ended by us once the drain times out.
	bye := p.expect("BYE ", 10*time.Second)
	p.reply(bye, 200)
	<-drained
}

func TestCallLimit(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *vsip.Config) { c.MaxCalls = 1 })
	p := newPhone(t, ts.addr)
	p.send("INVITE", 1, p.sdp("sendrecv"))
	p.expect("SIP/2.0 200", 5*time.Second)
	p.send("ACK", 1, "")
	q := newPhone(t, ts.addr)
	q.send("INVITE", 1, q.sdp("sendrecv"))
	q.expect("SIP/2.0 503", 5*time.Second)
	p.send("BYE", 2, "")
	p.expect("SIP/2.0 200", 5*time.Second)
}

func TestOperatorTransferByREFER(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	p := newPhone(t, ts.addr)
	p.user = "1003"
	p.send("INVITE", 1, p.sdp("sendrecv"))
	p.expect("SIP/2.0 200", 5*time.Second)
	p.send("ACK", 1, "")
	// '0' by SIP INFO during the greeting: "please hold", then REFER.
	p.sendBody("INFO", 2, "application/dtmf-relay", "Signal=0\r\nDuration=160\r\n")
	p.expect("SIP/2.0 200", 5*time.Second)
	refer := p.expect("REFER ", 15*time.Second)
	if !strings.Contains(refer, "Refer-To: <sip:1900@") {
		t.Fatalf("REFER:\n%s", refer)
	}
	p.reply(refer, 202)
	bye := p.expect("BYE ", 10*time.Second)
	p.reply(bye, 200)
}

func TestOneToTagPerDialog(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *vsip.Config) { c.AnswerDelay = 300 * time.Millisecond })
	p := newPhone(t, ts.addr)
	p.send("INVITE", 1, p.sdp("sendrecv"))
	ringing := p.expect("SIP/2.0 180", 5*time.Second)
	tag := header(ringing, "To", ";tag=")
	ok := p.expect("SIP/2.0 200", 5*time.Second)
	if tag == "" || header(ok, "To", ";tag=") != tag {
		t.Fatalf("180 tag %q, 200 tag %q", tag, header(ok, "To", ";tag="))
	}
	p.send("ACK", 1, "")
	p.send("BYE", 2, "")
	p.expect("SIP/2.0 200", 5*time.Second)
}

func TestOverloadGuard(t *testing.T) {
	t.Parallel()
	// Any lateness at all counts as overload here: the clock's ticks always
	// finish some nanoseconds after their ideal time.
	ts := startServer(t, func(c *vsip.Config) { c.OverloadLateness = time.Nanosecond })
	time.Sleep(200 * time.Millisecond) // a few ticks of the media clock
	p := newPhone(t, ts.addr)
	p.send("INVITE", 1, p.sdp("sendrecv"))
	if res := p.expect("SIP/2.0 503", 5*time.Second); !strings.Contains(res, "Retry-After: 5") {
		t.Errorf("503 lacks Retry-After:\n%s", res)
	}
}

func TestSessionTimer(t *testing.T) {
	t.Parallel()
	// RFC 4028 §4 puts Min-SE at 90 s at least; this server is configured
	// lower so that the test does not wait minutes.
	ts := startServer(t, func(c *vsip.Config) { c.MinSE = 2 * time.Second })

	// Below our minimum: 422 with Min-SE.
	p := newPhone(t, ts.addr)
	p.send("INVITE", 1, p.sdp("sendrecv"), "Supported: timer", "Session-Expires: 1")
	if res := p.expect("SIP/2.0 422", 5*time.Second); !strings.Contains(res, "Min-SE: 2") {
		t.Errorf("422 lacks Min-SE:\n%s", res)
	}
	p.send("ACK", 1, "")

	// Accepted: the caller refreshes; a refresh by UPDATE is answered with
	// the interval; when refreshes stop, we end the call with a BYE.
	q := newPhone(t, ts.addr)
	q.send("INVITE", 1, q.sdp("sendrecv"), "Supported: timer", "Session-Expires: 3;refresher=uac")
	ok := q.expect("SIP/2.0 200", 5*time.Second)
	if !strings.Contains(ok, "Session-Expires: 3;refresher=uac") || !strings.Contains(ok, "Require: timer") {
		t.Fatalf("200 lacks the session timer:\n%s", ok)
	}
	q.send("ACK", 1, "")
	q.send("UPDATE", 2, "")
	if res := q.expect("SIP/2.0 200", 5*time.Second); !strings.Contains(res, "Session-Expires: 3;refresher=uac") {
		t.Errorf("UPDATE refresh answer:\n%s", res)
	}
	bye := q.expect("BYE ", 10*time.Second)
	q.reply(bye, 200)

	// Without "timer" in Supported the interval is ignored: no timer.
	r := newPhone(t, ts.addr)
	r.send("INVITE", 1, r.sdp("sendrecv"), "Session-Expires: 1")
	if res := r.expect("SIP/2.0 200", 5*time.Second); strings.Contains(res, "Session-Expires") {
		t.Errorf("session timer used without the caller's support:\n%s", res)
	}
	r.send("ACK", 1, "")
	r.send("BYE", 2, "")
	r.expect("SIP/2.0 200", 5*time.Second)
}

// TestByeCopyAnsweredAgain: the server ends its BYE transaction at the
// 200 (sipgo's would keep the BYE for 32 s, BENCHMARKS.md); a copy of the
// BYE, as a caller sends when our 200 is lost, still gets 200 with our
// tag, and a new BYE in the ended dialog still gets 481.
func TestByeCopyAnsweredAgain(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	p := newPhone(t, ts.addr)
	p.send("INVITE", 1, p.sdp("sendrecv"))
	p.expect("SIP/2.0 200", 5*time.Second)
	p.send("ACK", 1, "")
	p.branch = "byecopy"
	p.send("BYE", 2, "")
	first := p.expect("SIP/2.0 200", 5*time.Second)
	if !strings.Contains(first, "CSeq: 2 BYE") {
		t.Fatalf("200 is not for the BYE:\n%s", first)
	}
	for range 2 {
		time.Sleep(100 * time.Millisecond) // past sipgo's transaction, had it stayed
		p.send("BYE", 2, "")
		again := p.expect("SIP/2.0 200", 5*time.Second)
		if header(again, "To", ";tag=") != p.toTag || !strings.Contains(again, "CSeq: 2 BYE") {
			t.Fatalf("copy of the BYE answered:\n%s\nwant the To tag %q", again, p.toTag)
		}
	}
	p.branch = ""
	p.send("BYE", 3, "")
	p.expect("SIP/2.0 481", 5*time.Second)
}

// TestLateINVITECopyAbsorbed: a late copy of the INVITE (same branch),
// before and after the ACK, must neither start a second call nor draw a
// 482 or a 100, as RFC 6026's Accepted state absorbs it. The server ends
// the INVITE's transaction at its 200 (to free its memory, BENCHMARKS.md)
// and absorbs copies itself, before flood control: with a budget of one
// INVITE, a copy must not draw a 503 either.
func TestLateINVITECopyAbsorbed(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *vsip.Config) {
		c.Flood = vsip.FloodConfig{Limits: map[string]vsip.RateLimit{"INVITE": {Rate: 0.001, Burst: 1}}}
	})
	p := newPhone(t, ts.addr)
	body := p.sdp("sendrecv")
	invite := fmt.Sprintf("INVITE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKcopy%d;rport\r\n"+
		"From: <sip:2002@127.0.0.1>;tag=%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"+
		"Contact: <sip:2002@127.0.0.1:%d>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		p.user, p.server, p.port(), time.Now().UnixNano(), p.tag, p.user, p.server, p.callID, p.port(), len(body), body)
	write := func() {
		t.Helper()
		if _, err := p.conn.WriteToUDP([]byte(invite), p.server); err != nil {
			t.Fatal(err)
		}
	}
	write()
	ok := p.expect("SIP/2.0 200", 5*time.Second)
	tag := header(ok, "To", ";tag=")
	// quiet reads for d: only retransmissions of the same 200 may come.
	quiet := func(d time.Duration) {
		t.Helper()
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			m, got := p.read(time.Until(end))
			if !got {
				return
			}
			if !strings.HasPrefix(m, "SIP/2.0 200") || header(m, "To", ";tag=") != tag {
				t.Fatalf("answer to a copy of the INVITE:\n%s", m)
			}
		}
	}
	write() // before the ACK: our 200 is being retransmitted
	quiet(time.Second)
	p.send("ACK", 1, "")
	write() // after the ACK
	quiet(time.Second)
	if n := ts.srv.ActiveCalls(); n != 1 {
		t.Fatalf("%d calls, want 1", n)
	}
	p.send("BYE", 2, "")
	p.expect("SIP/2.0 200", 5*time.Second)
	write() // after the call: no second call
	quiet(time.Second)
	if n := ts.srv.ActiveCalls(); n != 0 {
		t.Fatalf("%d calls after the BYE, want 0", n)
	}
}

// TestCancelAfterAnswer: a CANCEL that crosses our 200 gets 200 and
// changes nothing (RFC 3261 §9.2): no 487, the call goes on. The INVITE's
// transaction ends at our 200, so the server answers it without one.
func TestCancelAfterAnswer(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	p := newPhone(t, ts.addr)
	p.branch = fmt.Sprint("cancel", time.Now().UnixNano())
	p.send("INVITE", 1, p.sdp("sendrecv"))
	p.expect("SIP/2.0 200", 5*time.Second)
	tag := p.toTag
	p.toTag = "" // a CANCEL's To is the INVITE's (§9.1)
	p.send("CANCEL", 1, "")
	for {
		m := p.expect("SIP/2.0 ", 5*time.Second)
		if strings.Contains(m, "CSeq: 1 CANCEL") {
			if !strings.HasPrefix(m, "SIP/2.0 200") {
				t.Fatalf("CANCEL after the 200 answered:\n%s", m)
			}
			break
		}
		if !strings.HasPrefix(m, "SIP/2.0 200") { // a 200 retransmitted is fine, a 487 not
			t.Fatalf("INVITE answered again after the CANCEL:\n%s", m)
		}
	}
	p.toTag, p.branch = tag, ""
	p.send("ACK", 1, "")
	time.Sleep(200 * time.Millisecond)
	if n := ts.srv.ActiveCalls(); n != 1 {
		t.Fatalf("%d calls after the CANCEL, want 1", n)
	}
	p.send("BYE", 2, "")
	p.expect("SIP/2.0 200", 5*time.Second)
}

// TestCancelDuringAnswerDelay: a CANCEL while the server rings gets 200,
// the INVITE 487 and never a 200 after it, and the call is over.
func TestCancelDuringAnswerDelay(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *vsip.Config) { c.AnswerDelay = 500 * time.Millisecond })
	p := newPhone(t, ts.addr)
	p.branch = fmt.Sprint("ring", time.Now().UnixNano())
	p.send("INVITE", 1, p.sdp("sendrecv"))
	p.expect("SIP/2.0 180", 5*time.Second)
	p.toTag = ""
	p.send("CANCEL", 1, "")
	var got []string
	end := time.Now().Add(1500 * time.Millisecond) // past the answer delay
	for time.Now().Before(end) {
		m, ok := p.read(time.Until(end))
		if !ok {
			break
		}
		got = append(got, strings.SplitN(m, "\r\n", 2)[0]+" / "+header(m, "CSeq", ""))
		if strings.HasPrefix(m, "SIP/2.0 200") && strings.Contains(m, "CSeq: 1 INVITE") {
			t.Fatalf("INVITE answered 200 after its CANCEL; got %q", got)
		}
	}
	if len(got) < 2 || !strings.HasPrefix(got[0], "SIP/2.0 200") || !strings.Contains(got[0], "CANCEL") ||
		!strings.HasPrefix(got[1], "SIP/2.0 487") {
		t.Fatalf("want 200 to the CANCEL then 487; got %q", got)
	}
	if n := ts.srv.ActiveCalls(); n != 0 {
		t.Fatalf("%d calls after the CANCEL, want 0", n)
	}
}
