package testcalls

// Flood control against the real binary (docs/sip.md "Rate limits and
// lock-out", docs/mwi.md "Caps"): per-source rate limits, the lock-out of a
// source that keeps failing PINs, caps on MWI subscriptions, and the
// NOTIFY packets a silent subscriber costs. Sources are told apart by
// their loopback address: 127.0.0.1 is the attacker, 127.0.0.2 another
// phone.

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/siptest"
)

// rawSIP is a UDP socket that sends hand-written requests and collects
// every message it receives; requests (NOTIFYs) are answered 200 unless
// silent is set.
type rawSIP struct {
	conn   *net.UDPConn
	server *net.UDPAddr
	mu     sync.Mutex
	got    []string
	silent bool
}

func newRawSIP(t *testing.T, ip, server string) *rawSIP {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatalf("bind %s: %v", ip, err)
	}
	sa, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	r := &rawSIP{conn: c, server: sa}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			msg := string(buf[:n])
			r.mu.Lock()
			r.got = append(r.got, msg)
			silent := r.silent
			r.mu.Unlock()
			if !strings.HasPrefix(msg, "SIP/2.0") && !silent {
				_, _ = c.WriteToUDP([]byte(replyTo(msg, 200)), from)
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return r
}

func (r *rawSIP) addr() *net.UDPAddr { return r.conn.LocalAddr().(*net.UDPAddr) }

func (r *rawSIP) setSilent(v bool) { r.mu.Lock(); r.silent = v; r.mu.Unlock() }

func (r *rawSIP) send(t *testing.T, msg string) {
	t.Helper()
	if _, err := r.conn.WriteToUDP([]byte(msg), r.server); err != nil {
		t.Fatal(err)
	}
}

func (r *rawSIP) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// request is an out-of-dialog INVITE (no body) or SUBSCRIBE from r to
// user, with Call-ID callID.
func (r *rawSIP) request(method, user, callID string) string {
	a := r.addr()
	extra := ""
	if method == "SUBSCRIBE" {
		extra = "Event: message-summary\r\nExpires: 3600\r\n"
	}
	return fmt.Sprintf("%s sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n"+
		"From: <sip:%s@%s>;tag=%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: 1 %s\r\nMax-Forwards: 70\r\n"+
		"Contact: <sip:%s@%s>\r\n%sContent-Length: 0\r\n\r\n",
		method, user, r.server, a, randToken(), user, a.IP, randToken()[:8], user, r.server, callID, method,
		user, a, extra)
}

// finals maps each Call-ID to the status line of its final response, and
// returns also the responses themselves.
func (r *rawSIP) finals() (map[string]string, map[string]string) {
	status, msgs := map[string]string{}, map[string]string{}
	for _, m := range r.messages() {
		if !strings.HasPrefix(m, "SIP/2.0 ") || strings.HasPrefix(m, "SIP/2.0 1") {
			continue
		}
		id := header(m, "Call-ID")
		status[id] = strings.SplitN(m, "\r\n", 2)[0][8:11]
		msgs[id] = m
	}
	return status, msgs
}

// header is the value of a header of a SIP message ("" when absent).
func header(msg, name string) string {
	for _, line := range strings.Split(msg, "\r\n")[1:] {
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// metric reads one sample of /metrics (0 when absent).
func metric(t *testing.T, s *server, sample string) float64 {
	t.Helper()
	code, body, err := s.api("GET", "/metrics", nil, nil)
	if err != nil || code != 200 {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// untrustedLoopback makes the test's own address an ordinary source: the
// harness trusts 127.0.0.1 as the PBX, and a trusted proxy is exempt from
// the per-source limits, the lock-out and the subscription caps. The
// SUBSCRIBEs here test the caps, not digest (trust_test.go does).
var untrustedLoopback = []string{"--sip-trusted-proxies", "192.0.2.1", "--mwi-subscribe-auth", "false"}

// TestFloodRateLimit: 40 INVITEs then 40 SUBSCRIBEs at once from one
// source get their burst answered, then 503 with Retry-After, then
// silence; a phone at another address is answered meanwhile.
func TestFloodRateLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", append(untrustedLoopback,
		// 6/m: no token comes back while the flood is read, even on a
		// busy machine.
		"--sip-rate-limit-invite", "6/m burst 5",
		"--sip-rate-limit-subscribe", "6/m burst 5",
		"--sip-rate-limit-drop-after", "10")...)
	for _, method := range []string{"INVITE", "SUBSCRIBE"} {
		t.Run(method, func(t *testing.T) {
			flood := newRawSIP(t, "127.0.0.1", s.sipAddr())
			var ids []string
			for i := range 40 {
				id := fmt.Sprintf("flood-%s-%d-%s", method, i, randToken()[:6])
				ids = append(ids, id)
				// 9999 is no mailbox: answered 404 when admitted.
				flood.send(t, flood.request(method, "9999", id))
			}
			// Meanwhile another source is served.
			other := newRawSIP(t, "127.0.0.2", s.sipAddr())
			otherID := "other-" + randToken()
			other.send(t, other.request(method, "9999", otherID))
			waitFor(t, "the other source answered", 10*time.Second, func() bool {
				st, _ := other.finals()
				return st[otherID] != ""
			})
			if st, _ := other.finals(); st[otherID] != "404" {
				t.Fatalf("the other source got %s, want 404 (not limited)", st[otherID])
			}
			time.Sleep(2 * time.Second) // the flood's answers are in
			status, msgs := flood.finals()
			count := map[string]int{}
			for _, id := range ids {
				count[status[id]]++
				if status[id] == "503" {
					ra, err := strconv.Atoi(header(msgs[id], "Retry-After"))
					if err != nil || ra < 10 || ra > 120 { // (1 + debt ≤ 11) / 0.1 per s
						t.Errorf("503 with Retry-After %q", header(msgs[id], "Retry-After"))
					}
				}
			}
			t.Logf("%s flood: %v (\"\" = no answer)", method, count)
			// The burst of 5, then 503s up to the drop threshold of 10,
			// then silence.
			if count["404"] < 5 || count["404"] > 6 {
				t.Errorf("%d admitted (404), want the burst of 5 (+ a refill)", count["404"])
			}
			if count["503"] < 9 || count["503"] > 11 {
				t.Errorf("%d answered 503, want about drop_after (10)", count["503"])
			}
			if count[""] < 20 {
				t.Errorf("%d dropped without an answer, want the rest (>= 20)", count[""])
			}
			if v := metric(t, s, fmt.Sprintf(`voicemail_sip_rate_limited_total{action="dropped",method=%q}`, method)); v != float64(count[""]) {
				t.Errorf("dropped metric %v, want %d", v, count[""])
			}
		})
	}
}

// TestFloodPINLockout: eight wrong PINs from one address, over two calls
// and two mailboxes, lock that address out: its next INVITE gets 403,
// while a phone at another address still logs in. The lock-out is logged
// once, with its expiry and without the PINs, and counted in /metrics.
func TestFloodPINLockout(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", append(untrustedLoopback, "--sip-lockout-failures", "8", "--sip-lockout-duration", "15m", "--login-max-attempts", "4")...)
	pins := []string{"1357", "2468", "9753", "8642"}
	for _, mb := range []string{"1001", "1002"} { // 4 per mailbox: neither mailbox locks (5)
		c := accessDial(t, s, mb)
		for _, pin := range pins {
			login(t, c, pin)
		}
		waitEnded(t, c, 15*time.Second)
	}
	waitFor(t, "the lock-out", 10*time.Second, func() bool {
		return strings.Contains(s.log.String(), `"msg":"source locked out after repeated authentication failures"`)
	})
	log := s.log.String()
	if n := strings.Count(log, `"msg":"source locked out after repeated authentication failures"`); n != 1 {
		t.Errorf("lock-out logged %d times, want once", n)
	}
	line := log[strings.Index(log, `"msg":"source locked out`):]
	line = line[:strings.Index(line, "\n")]
	if !strings.Contains(line, `"until":"`) || !strings.Contains(line, `"source":"127.0.0.1"`) {
		t.Errorf("lock-out line lacks source or expiry: %s", line)
	}
	for _, pin := range pins {
		// As a value of its own: the log's random tokens, tags, ports and
		// fractions of seconds contain any four digits now and then.
		if regexp.MustCompile(`(^|[^0-9A-Za-z.])` + pin + `([^0-9A-Za-z]|$)`).MatchString(log) {
			t.Errorf("PIN %s appears in the log", pin)
		}
	}
	if v := metric(t, s, "voicemail_sip_blocked_sources"); v != 1 {
		t.Errorf("voicemail_sip_blocked_sources = %v, want 1", v)
	}

	c, err := siptest.Dial(t.Context(), siptest.Config{Server: s.sipAddr(),
		RequestURI: fmt.Sprintf("sip:5555@%s", s.sipAddr()), From: `<sip:1001@127.0.0.1>`})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Status() != 403 {
		t.Fatalf("INVITE from the locked-out address answered %d, want 403", c.Status())
	}
	// Another address is not affected; the right PIN still works there.
	other := accessDial(t, s, "1001", func(c *siptest.Config) { c.LocalIP = "127.0.0.2" })
	logins := strings.Count(s.log.String(), `"msg":"login"`)
	login(t, other, "1234")
	waitFor(t, "1001 logged in from 127.0.0.2", 5*time.Second, func() bool {
		return strings.Count(s.log.String(), `"msg":"login"`) == logins+1
	})
}

// TestFloodSubscribeCaps: 1,000 SUBSCRIBEs at once from one socket get
// exactly the per-source cap (50) accepted and 403 for the rest; another
// source then fills a mailbox up to the per-mailbox cap (30) and no more.
func TestFloodSubscribeCaps(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", append(untrustedLoopback, "--sip-rate-limit-subscribe", "0",
		"--mwi-max-subscriptions-per-source", "50", "--mwi-max-subscriptions-per-mailbox", "30")...)
	flood := newRawSIP(t, "127.0.0.1", s.sipAddr())
	mbOf, sent := map[string]string{}, map[string]string{}
	for i := range 1000 {
		mb := []string{"1001", "1002"}[i%2]
		id := fmt.Sprintf("cap-%d-%s", i, randToken()[:6])
		mbOf[id] = mb
		sent[id] = flood.request("SUBSCRIBE", mb, id)
		flood.send(t, sent[id])
		if i%20 == 19 {
			time.Sleep(10 * time.Millisecond) // UDP: keep within the socket buffers
		}
	}
	// A UAC retransmits what got no answer (RFC 3261 Timer E): a busy
	// machine may drop a datagram.
	deadline := time.Now().Add(60 * time.Second)
	for st, _ := flood.finals(); len(st) < 1000; st, _ = flood.finals() {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 1,000 SUBSCRIBEs answered in 60 s", len(st))
		}
		time.Sleep(2 * time.Second)
		st, _ = flood.finals()
		for id, msg := range sent {
			if st[id] == "" {
				flood.send(t, msg)
			}
		}
	}
	status, _ := flood.finals()
	count := map[string]int{}
	on1001 := 0
	for id, st := range status {
		count[st]++
		if st == "200" && mbOf[id] == "1001" {
			on1001++
		}
	}
	if count["200"] != 50 || count["403"] != 950 {
		t.Fatalf("answers %v, want 50 × 200 (the per-source cap) and 950 × 403", count)
	}
	if v := metric(t, s, `voicemail_mwi_subscribe_total{status="403"}`); v != 950 {
		t.Errorf(`voicemail_mwi_subscribe_total{status="403"} = %v, want 950`, v)
	}

	other := newRawSIP(t, "127.0.0.2", s.sipAddr())
	var ids []string
	for i := range 40 {
		id := fmt.Sprintf("cap-other-%d-%s", i, randToken()[:6])
		ids = append(ids, id)
		other.send(t, other.request("SUBSCRIBE", "1001", id))
	}
	waitFor(t, "40 answers", 30*time.Second, func() bool { st, _ := other.finals(); return len(st) >= 40 })
	st, msgs := other.finals()
	ok := 0
	for _, id := range ids {
		switch st[id] {
		case "200":
			ok++
		case "403":
			if !strings.Contains(header(msgs[id], "Warning"), "mailbox") {
				t.Errorf("403 without the mailbox Warning: %q", header(msgs[id], "Warning"))
			}
		default:
			t.Errorf("SUBSCRIBE answered %q", st[id])
		}
	}
	if ok != 30-on1001 {
		t.Errorf("%d accepted from the other source, want %d (30 per mailbox, %d already)", ok, 30-on1001, on1001)
	}
}

// TestFloodSilentSubscriber: a subscriber that stops answering costs one
// NOTIFY transaction after a deposit (at most 11 packets over UDP, Timer
// F), and its subscription is ended and deleted.
func TestFloodSilentSubscriber(t *testing.T) {
	t.Parallel()
	s := mwiServer(t, "") // keeps quickDeposit's short message
	sub := newRawSIP(t, "127.0.0.1", s.sipAddr())
	id := "silent-" + randToken()
	sub.send(t, sub.request("SUBSCRIBE", "1001", id))
	notifies := func() []string {
		var out []string
		for _, m := range sub.messages() {
			if strings.HasPrefix(m, "NOTIFY ") {
				out = append(out, m)
			}
		}
		return out
	}
	waitFor(t, "the first NOTIFY", 10*time.Second, func() bool { return len(notifies()) > 0 })
	time.Sleep(500 * time.Millisecond) // its 200 is out
	sub.setSilent(true)
	before := len(notifies())
	db := openDB(t, s)
	subs := func() int {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM mwi_subscriptions`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := subs(); n != 1 {
		t.Fatalf("%d stored subscriptions, want 1", n)
	}

	quickDeposit(t, s.sipAddr(), "1001")
	// Timer F is 32 s; the subscription ends with the transaction.
	waitFor(t, "the subscription ended", 60*time.Second, func() bool { return subs() == 0 })
	time.Sleep(5 * time.Second) // nothing more may come
	after := notifies()[before:]
	cseqs := map[string]bool{}
	for _, m := range after {
		cseqs[header(m, "CSeq")] = true
	}
	t.Logf("%d NOTIFY packets to the silent subscriber, CSeqs %v", len(after), cseqs)
	if len(after) < 2 || len(after) > 11 {
		t.Errorf("%d NOTIFY packets after the deposit, want 2..11 (one transaction and its retransmissions)", len(after))
	}
	if len(cseqs) != 1 {
		t.Errorf("NOTIFYs with CSeqs %v, want one transaction", cseqs)
	}
	if !strings.Contains(s.log.String(), `"reason":"timeout"`) {
		t.Error("no subscription ended with reason timeout in the log")
	}
}
