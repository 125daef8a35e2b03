package testcalls

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/siptest"
)

// Trust boundaries (docs/sip.md, issue 15), end to end against the binary:
// the server trusts 127.0.0.1 (the harness's default, as a PBX) and the
// tests send from 127.0.0.2 as an untrusted caller or phone.

const (
	untrustedIP = "127.0.0.2"
	trustSecret = "tr0ub4dor&3-secret"
)

// trustServer starts a server that trusts 127.0.0.1 only, with mailboxes
// 1001 and 1002 set to skip the PIN (ask_password false); 1001 has a
// sip_secret (its caller is challenged), 1002 none.
func trustServer(t *testing.T, extra ...string) *server {
	t.Helper()
	s := startServer(t, "", append([]string{"--recording-min-seconds", "1", "--sip-trusted-proxies", "127.0.0.1/32"}, extra...)...)
	code, body, err := s.api("PATCH", "/api/v1/mailboxes/1001", map[string]any{"ask_password": false, "sip_secret": trustSecret}, nil)
	if err != nil || code != 200 {
		t.Fatalf("PATCH 1001: %d %s %v", code, body, err)
	}
	if strings.Contains(string(body), trustSecret) || !strings.Contains(string(body), `"sip_secret_set":true`) {
		t.Fatalf("PATCH answered %s", body)
	}
	// 1002 has no SIP secret here (the demo gives it one): a forged From
	// naming it cannot be challenged, only asked the PIN.
	if code, body, err := s.api("PATCH", "/api/v1/mailboxes/1002", map[string]any{"ask_password": false, "sip_secret": ""}, nil); err != nil || code != 200 {
		t.Fatalf("PATCH 1002: %d %s %v", code, body, err)
	}
	return s
}

// pinlessLogins counts the access logins that skipped the PIN.
func pinlessLogins(s *server) int {
	n := 0
	for _, l := range strings.Split(s.log.String(), "\n") {
		if strings.Contains(l, `"msg":"login"`) && strings.Contains(l, `"pin":false`) {
			n++
		}
	}
	return n
}

// accessCall dials the access number from ip with the given From and extra
// headers, and returns the call (any final status).
func accessCall(t *testing.T, s *server, ip, from string, hdrs ...string) *siptest.Call {
	t.Helper()
	c, err := siptest.Dial(t.Context(), siptest.Config{
		Server: s.sipAddr(), RequestURI: fmt.Sprintf("sip:5555@%s", s.sipAddr()),
		From: from, Headers: hdrs, LocalIP: ip,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if c.Status() == 200 {
			_, _ = c.Bye(ctx)
		}
		c.Close()
	})
	return c
}

// expectPIN checks that an answered access call did not log in on its own:
// no PIN-less login within 2.5 s.
func expectPIN(t *testing.T, s *server, c *siptest.Call, before int, what string) {
	t.Helper()
	if c.Status() != 200 {
		t.Fatalf("%s: answered %d", what, c.Status())
	}
	time.Sleep(2500 * time.Millisecond)
	if n := pinlessLogins(s); n != before {
		t.Fatalf("%s: the PIN was skipped (%d PIN-less logins, %d before)", what, n, before)
	}
}

// expectNoPIN checks that an answered access call logged in without a PIN.
func expectNoPIN(t *testing.T, s *server, c *siptest.Call, before int, what string) {
	t.Helper()
	if c.Status() != 200 {
		t.Fatalf("%s: answered %d", what, c.Status())
	}
	waitFor(t, what+": a PIN-less login", 5*time.Second, func() bool { return pinlessLogins(s) == before+1 })
}

func TestTrustForgedIdentity(t *testing.T) {
	s := trustServer(t)
	// 1002 skips the PIN for its own caller and has no sip_secret: an
	// untrusted caller claiming it is answered, and asked for the PIN.
	from1002 := func(ip string) string { return fmt.Sprintf(`"Owner" <sip:1002@%s>`, ip) }
	stranger := `"Stranger" <sip:+14155550100@127.0.0.2>`
	pai := "P-Asserted-Identity: <sip:1002@pbx.example>"

	n := pinlessLogins(s)
	expectPIN(t, s, accessCall(t, s, untrustedIP, from1002(untrustedIP)), n, "forged From from an untrusted address")
	expectPIN(t, s, accessCall(t, s, untrustedIP, stranger, pai), n, "forged P-Asserted-Identity from an untrusted address")
	if !strings.Contains(s.log.String(), `"verified":false`) {
		t.Error(`no "access call" line with "verified":false`)
	}
	expectNoPIN(t, s, accessCall(t, s, "127.0.0.1", from1002("127.0.0.1")), n, "From from the trusted proxy")
	expectNoPIN(t, s, accessCall(t, s, "127.0.0.1", `"x" <sip:+14155550100@127.0.0.1>`, pai), n+1, "P-Asserted-Identity from the trusted proxy")
	// 1001 has a secret: an untrusted caller claiming it must authenticate.
	if c := accessCall(t, s, untrustedIP, `<sip:1001@127.0.0.2>`); c.Status() != 401 {
		t.Errorf("forged From of a mailbox with a sip_secret: %d, want 401", c.Status())
	}

	// Redirection headers choose the mailbox only from the trusted proxy:
	// from elsewhere the Request-URI (an unknown mailbox here) decides.
	divert := "Diversion: <sip:1002@pbx.example>;reason=user-busy"
	for _, tc := range []struct {
		ip   string
		want int
	}{{untrustedIP, 404}, {"127.0.0.1", 200}} {
		c, err := siptest.Dial(t.Context(), siptest.Config{Server: s.sipAddr(), LocalIP: tc.ip,
			RequestURI: fmt.Sprintf("sip:9999@%s", s.sipAddr()), Headers: []string{divert}})
		if err != nil {
			t.Fatal(err)
		}
		if c.Status() != tc.want {
			t.Errorf("Diversion from %s: answered %d, want %d", tc.ip, c.Status(), tc.want)
		}
		if c.Status() == 200 {
			_, _ = c.Bye(t.Context())
		}
		c.Close()
	}
}

// ---------------------------------------------------------------------------
// Digest, computed here independently of package sipauth.

type challenge struct{ realm, nonce, algorithm string }

func parseChallenges(t *testing.T, m *siptest.Message) []challenge {
	t.Helper()
	var out []challenge
	for _, h := range m.Headers {
		if !strings.EqualFold(h.Name, "WWW-Authenticate") {
			continue
		}
		c := challenge{}
		v := strings.TrimPrefix(h.Value, "Digest ")
		for _, p := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
			val = strings.Trim(val, `"`)
			switch k {
			case "realm":
				c.realm = val
			case "nonce":
				c.nonce = val
			case "algorithm":
				c.algorithm = val
			}
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatalf("no WWW-Authenticate in\n%s", m)
	}
	return out
}

func pick(t *testing.T, cs []challenge, alg string) challenge {
	t.Helper()
	for _, c := range cs {
		if c.algorithm == alg {
			return c
		}
	}
	t.Fatalf("no %s challenge in %+v", alg, cs)
	return challenge{}
}

func hexOf(h func() hash.Hash, s string) string {
	d := h()
	d.Write([]byte(s))
	return hex.EncodeToString(d.Sum(nil))
}

// authorization answers c for user/secret (RFC 7616, qop=auth).
func authorization(c challenge, user, secret, method, uri string) string {
	h := md5.New
	if c.algorithm == "SHA-256" {
		h = sha256.New
	}
	ha1 := hexOf(h, user+":"+c.realm+":"+secret)
	ha2 := hexOf(h, method+":"+uri)
	cnonce, nc := siptest.RandHex(8), "00000001"
	resp := hexOf(h, ha1+":"+c.nonce+":"+nc+":"+cnonce+":auth:"+ha2)
	return fmt.Sprintf(`Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=%s, cnonce="%s"`,
		user, c.realm, c.nonce, uri, resp, c.algorithm, nc, cnonce)
}

func TestTrustDigestAccess(t *testing.T) {
	s := trustServer(t)
	from := fmt.Sprintf(`"Owner" <sip:1001@%s>`, untrustedIP)
	ruri := fmt.Sprintf("sip:5555@%s", s.sipAddr())

	// The mailbox skips the PIN and has a secret: an untrusted caller
	// claiming it is challenged.
	c := accessCall(t, s, untrustedIP, from)
	if c.Status() != 401 {
		t.Fatalf("INVITE without credentials: %d, want 401", c.Status())
	}
	chs := parseChallenges(t, c.Final())
	if chs[0].algorithm != "SHA-256" {
		t.Errorf("first challenge %+v: want SHA-256 first", chs[0])
	}
	wrong := accessCall(t, s, untrustedIP, from, authorization(pick(t, chs, "MD5"), "1001", "not the secret", "INVITE", ruri))
	if wrong.Status() != 403 {
		t.Fatalf("wrong secret: %d, want 403", wrong.Status())
	}
	// The same nonce answers another INVITE within its lifetime. (The
	// count is read before the call: its login may be logged before the
	// INVITE's answer reaches us.)
	n := pinlessLogins(s)
	other := accessCall(t, s, untrustedIP, from, authorization(pick(t, chs, "MD5"), "1001", trustSecret, "INVITE", ruri))
	expectNoPIN(t, s, other, n, "digest MD5 as 1001")
	sha := accessCall(t, s, untrustedIP, from, authorization(pick(t, chs, "SHA-256"), "1001", trustSecret, "INVITE", ruri))
	expectNoPIN(t, s, sha, n+1, "digest SHA-256 as 1001")
	if strings.Contains(s.log.String(), trustSecret) {
		t.Fatal("the secret is in the server log")
	}
}

// ---------------------------------------------------------------------------
// A tiny UDP user agent for SUBSCRIBE and REGISTER.

type udpUA struct {
	t       *testing.T
	conn    *net.UDPConn
	server  *net.UDPAddr
	ip      string
	resp    chan *siptest.Message
	mu      sync.Mutex
	notifys []*siptest.Message
}

func newUDPUA(t *testing.T, ip, server string) *udpUA {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	u := &udpUA{t: t, conn: conn, server: srv, ip: ip, resp: make(chan *siptest.Message, 16)}
	t.Cleanup(func() { conn.Close() })
	go u.read()
	return u
}

func (u *udpUA) port() int { return u.conn.LocalAddr().(*net.UDPAddr).Port }

func (u *udpUA) read() {
	buf := make([]byte, 65536)
	for {
		n, from, err := u.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		m, err := siptest.Parse(buf[:n])
		if err != nil {
			continue
		}
		if m.IsResponse() {
			if m.StatusCode >= 200 {
				u.resp <- m
			}
			continue
		}
		// A request (NOTIFY): 200, copying the transaction headers.
		if m.Method == "NOTIFY" {
			u.mu.Lock()
			u.notifys = append(u.notifys, m)
			u.mu.Unlock()
		}
		res := &siptest.Message{StatusCode: 200, Reason: "OK"}
		for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
			for _, v := range m.GetAll(h) {
				res.Headers = append(res.Headers, siptest.Header{Name: h, Value: v})
			}
		}
		_, _ = u.conn.WriteToUDP([]byte(res.String()), from)
	}
}

// notifies returns the NOTIFYs received so far.
func (u *udpUA) notifies() []*siptest.Message {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*siptest.Message(nil), u.notifys...)
}

// do sends a request and waits for its final response.
func (u *udpUA) do(method, ruri, user, callID string, cseq int, hdrs ...string) *siptest.Message {
	u.t.Helper()
	m := &siptest.Message{Method: method, RequestURI: ruri, Headers: []siptest.Header{
		{Name: "Via", Value: fmt.Sprintf("SIP/2.0/UDP %s:%d;branch=z9hG4bK%s;rport", u.ip, u.port(), siptest.RandHex(8))},
		{Name: "Max-Forwards", Value: "70"},
		{Name: "From", Value: fmt.Sprintf("<sip:%s@%s>;tag=%s", user, u.ip, siptest.RandHex(4))},
		{Name: "To", Value: fmt.Sprintf("<sip:%s@%s>", user, u.server.IP)},
		{Name: "Call-ID", Value: callID},
		{Name: "CSeq", Value: fmt.Sprintf("%d %s", cseq, method)},
		{Name: "Contact", Value: fmt.Sprintf("<sip:%s@%s:%d>", user, u.ip, u.port())},
	}}
	for _, h := range hdrs {
		name, val, _ := strings.Cut(h, ":")
		m.Headers = append(m.Headers, siptest.Header{Name: strings.TrimSpace(name), Value: strings.TrimSpace(val)})
	}
	if _, err := u.conn.WriteToUDP([]byte(m.String()), u.server); err != nil {
		u.t.Fatal(err)
	}
	select {
	case r := <-u.resp:
		return r
	case <-time.After(10 * time.Second):
		u.t.Fatalf("no final response to %s", method)
		return nil
	}
}

func TestTrustSubscribeNeedsDigest(t *testing.T) {
	s := trustServer(t)
	ruri := fmt.Sprintf("sip:1001@%s", s.sipAddr())
	sub := []string{"Event: message-summary", "Accept: application/simple-message-summary", "Expires: 600"}
	u := newUDPUA(t, untrustedIP, s.sipAddr())

	r := u.do("SUBSCRIBE", ruri, "1001", "sub1-"+siptest.RandHex(4), 1, sub...)
	if r.StatusCode != 401 {
		t.Fatalf("unauthenticated SUBSCRIBE: %d, want 401", r.StatusCode)
	}
	chs := parseChallenges(t, r)
	r = u.do("SUBSCRIBE", ruri, "1001", "sub2-"+siptest.RandHex(4), 1,
		append(sub, authorization(pick(t, chs, "MD5"), "1001", "guessed-secret", "SUBSCRIBE", ruri))...)
	if r.StatusCode != 403 {
		t.Fatalf("SUBSCRIBE with a wrong secret: %d, want 403", r.StatusCode)
	}
	// 1002 has no secret: authenticating as 1001 does not open 1002.
	r = u.do("SUBSCRIBE", fmt.Sprintf("sip:1002@%s", s.sipAddr()), "1001", "sub3-"+siptest.RandHex(4), 1,
		append(sub, authorization(pick(t, chs, "MD5"), "1001", trustSecret, "SUBSCRIBE", fmt.Sprintf("sip:1002@%s", s.sipAddr())))...)
	if r.StatusCode != 403 {
		t.Fatalf("SUBSCRIBE to 1002 as 1001: %d, want 403", r.StatusCode)
	}
	if len(u.notifies()) != 0 {
		t.Fatalf("refused subscriptions got NOTIFYs: %v", u.notifies())
	}
	r = u.do("SUBSCRIBE", ruri, "1001", "sub4-"+siptest.RandHex(4), 1,
		append(sub, authorization(pick(t, chs, "SHA-256"), "1001", trustSecret, "SUBSCRIBE", ruri))...)
	if r.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE with the secret: %d, want 200", r.StatusCode)
	}
	waitFor(t, "the first NOTIFY", 5*time.Second, func() bool { return len(u.notifies()) > 0 })

	// A mailbox that does not exist is challenged like one that does: an
	// untrusted source learns nothing of which exist.
	ghost := fmt.Sprintf("sip:9876@%s", s.sipAddr())
	if r := u.do("SUBSCRIBE", ghost, "9876", "sub6-"+siptest.RandHex(4), 1, sub...); r.StatusCode != 401 {
		t.Fatalf("unauthenticated SUBSCRIBE to an unknown mailbox: %d, want 401 as for a real one", r.StatusCode)
	}

	// The trusted proxy may subscribe without credentials, and learns
	// that an unknown mailbox is unknown.
	p := newUDPUA(t, "127.0.0.1", s.sipAddr())
	if r := p.do("SUBSCRIBE", ruri, "1001", "sub5-"+siptest.RandHex(4), 1, sub...); r.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE from the trusted proxy: %d, want 200", r.StatusCode)
	}
	if r := p.do("SUBSCRIBE", ghost, "9876", "sub7-"+siptest.RandHex(4), 1, sub...); r.StatusCode != 404 {
		t.Fatalf("SUBSCRIBE from the trusted proxy to an unknown mailbox: %d, want 404", r.StatusCode)
	}
}

func TestTrustRegisterNotify(t *testing.T) {
	s := trustServer(t)
	ruri := fmt.Sprintf("sip:%s", s.sipAddr())
	phone := newUDPUA(t, untrustedIP, s.sipAddr())
	callID := "reg-" + siptest.RandHex(6)

	r := phone.do("REGISTER", ruri, "1001", callID, 1, "Expires: 600")
	if r.StatusCode != 401 {
		t.Fatalf("REGISTER without credentials: %d, want 401", r.StatusCode)
	}
	chs := parseChallenges(t, r)
	r = phone.do("REGISTER", ruri, "1002", callID+"x", 1, "Expires: 600",
		authorization(pick(t, chs, "MD5"), "1001", trustSecret, "REGISTER", ruri))
	if r.StatusCode != 403 {
		t.Fatalf("REGISTER for 1002 with 1001's credentials: %d, want 403", r.StatusCode)
	}
	r = phone.do("REGISTER", ruri, "1001", callID, 2, "Expires: 600",
		authorization(pick(t, chs, "SHA-256"), "1001", trustSecret, "REGISTER", ruri))
	if r.StatusCode != 200 {
		t.Fatalf("REGISTER with the secret: %d, want 200", r.StatusCode)
	}
	contact := fmt.Sprintf("sip:1001@%s:%d", untrustedIP, phone.port())
	if got := r.Get("Contact"); !strings.Contains(got, contact) || !strings.Contains(got, "expires=") {
		t.Fatalf("200 Contact %q, want %s with expires", got, contact)
	}
	// Registered: the current state at once (no messages).
	waitFor(t, "the NOTIFY on registration", 5*time.Second, func() bool { return len(phone.notifies()) >= 1 })
	first := phone.notifies()[0]
	if !strings.Contains(string(first.Body), "Voice-Message: 0/0") || first.Get("Event") != "message-summary" {
		t.Fatalf("first NOTIFY:\n%s", first)
	}

	// A deposit (through the trusted proxy) lights the phone.
	quickDeposit(t, s.sipAddr(), "1001")
	waitFor(t, "the NOTIFY after the deposit", 15*time.Second, func() bool {
		for _, n := range phone.notifies() {
			if strings.Contains(string(n.Body), "Messages-Waiting: yes") && strings.Contains(string(n.Body), "Voice-Message: 1/0") {
				return true
			}
		}
		return false
	})
	if uri := phone.notifies()[len(phone.notifies())-1].RequestURI; uri != contact {
		t.Errorf("NOTIFY Request-URI %s, want the registered contact %s", uri, contact)
	}

	// Expires: 0 removes the binding: no more NOTIFYs.
	r = phone.do("REGISTER", ruri, "1001", callID, 3, "Expires: 0",
		authorization(pick(t, chs, "SHA-256"), "1001", trustSecret, "REGISTER", ruri))
	if r.StatusCode != 200 || r.Get("Contact") != "" {
		t.Fatalf("unREGISTER: %d, Contact %q", r.StatusCode, r.Get("Contact"))
	}
	before := len(phone.notifies())
	quickDeposit(t, s.sipAddr(), "1001")
	time.Sleep(3 * time.Second)
	if n := len(phone.notifies()); n != before {
		t.Fatalf("NOTIFY after the registration was removed:\n%s", phone.notifies()[n-1])
	}
}

func TestTrustDepositAuth(t *testing.T) {
	s := trustServer(t, "--sip-deposit-auth", "untrusted")
	ruri := fmt.Sprintf("sip:1002@%s", s.sipAddr())
	dial := func(ip string, hdrs ...string) *siptest.Call {
		c, err := siptest.Dial(t.Context(), siptest.Config{Server: s.sipAddr(), LocalIP: ip, RequestURI: ruri, Headers: hdrs})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if c.Status() == 200 {
				_, _ = c.Bye(context.Background())
			}
			c.Close()
		})
		return c
	}
	c := dial(untrustedIP)
	if c.Status() != 401 {
		t.Fatalf("deposit from an untrusted address without credentials: %d, want 401", c.Status())
	}
	if c := dial("127.0.0.1"); c.Status() != 200 {
		t.Fatalf("deposit from the trusted proxy: %d, want 200", c.Status())
	}
	// Any mailbox of the tenant may leave a message once authenticated.
	if c := dial(untrustedIP, authorization(pick(t, parseChallenges(t, c.Final()), "MD5"), "1001", trustSecret, "INVITE", ruri)); c.Status() != 200 {
		t.Fatalf("authenticated deposit: %d, want 200", c.Status())
	}
}

// TestTrustDemoSecrets: `make run` (--demo) gives 1001 and 1002 the SIP
// passwords it prints, so a softphone pointed at it subscribes with digest.
func TestTrustDemoSecrets(t *testing.T) {
	s := startServer(t, "")
	ruri := fmt.Sprintf("sip:1002@%s", s.sipAddr())
	sub := []string{"Event: message-summary", "Accept: application/simple-message-summary", "Expires: 600"}
	u := newUDPUA(t, untrustedIP, s.sipAddr())
	r := u.do("SUBSCRIBE", ruri, "1002", "demo1-"+siptest.RandHex(4), 1, sub...)
	if r.StatusCode != 401 {
		t.Fatalf("unauthenticated SUBSCRIBE: %d, want 401", r.StatusCode)
	}
	r = u.do("SUBSCRIBE", ruri, "1002", "demo2-"+siptest.RandHex(4), 1,
		append(sub, authorization(pick(t, parseChallenges(t, r), "MD5"), "1002", "bob-demo", "SUBSCRIBE", ruri))...)
	if r.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE with the demo password: %d, want 200", r.StatusCode)
	}
	// Printed once in the welcome text (a demo value, like its PIN 1234),
	// never logged.
	for _, line := range strings.Split(s.log.String(), "\n") {
		if strings.Contains(line, "bob-demo") && !strings.HasPrefix(line, "A softphone may register") {
			t.Errorf("the demo password is in a log line: %s", line)
		}
	}
}
