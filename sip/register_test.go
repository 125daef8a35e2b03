package sip_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vsip "github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/sipauth"
	"github.com/vmserver/voicemail/store"
)

const regSecret = "registrar-secret"

// failures records the AuthObserver calls.
type failures struct {
	mu  sync.Mutex
	got []string
}

func (f *failures) AuthFailed(source, tenant, user string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, source+" "+tenant+" "+user)
}

func (f *failures) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

// startRegistrar is a SIP server with digest and a real SQLite store where
// mailbox 1001 has a sip_secret (realm: the tenant's name, "default").
func startRegistrar(t *testing.T, ttl time.Duration) (*vsip.Server, *net.UDPAddr, store.Store, *failures, chan store.SIPRegistration) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "vm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateTenant(ctx, &store.Tenant{Name: "default"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateMailbox(ctx, &store.Mailbox{Tenant: "default", Number: "1001"}); err != nil {
		t.Fatal(err)
	}
	md5, _ := sipauth.HA1(sipauth.MD5, "1001", "default", regSecret)
	sha, _ := sipauth.HA1(sipauth.SHA256, "1001", "default", regSecret)
	if err := st.SetSIPCredentials(ctx, &store.SIPCredentials{Tenant: "default", Mailbox: "1001", Realm: "default", HA1MD5: md5, HA1SHA256: sha}); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().(*net.UDPAddr)
	pc.Close()
	fails := &failures{}
	srv, err := vsip.New(vsip.Config{
		Listeners: []vsip.Listener{{Transport: "udp", Addr: addr.String()}},
		PublicIP:  net.IPv4(127, 0, 0, 1), NonceKey: sipauth.DeriveKey([]byte("test")), NonceTTL: ttl,
	}, vsip.Deps{Store: st, Auth: st, Registrations: st, AuthObserver: fails,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	regs := make(chan store.SIPRegistration, 8)
	srv.HandleRegistered(func(r store.SIPRegistration) { regs <- r })
	lctx, cancel := context.WithCancel(context.Background())
	if err := srv.Listen(lctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); srv.Close() })
	return srv, addr, st, fails, regs
}

// digestFor answers the first challenge of alg in res.
func digestFor(t *testing.T, res, alg, user, secret, method, uri string) string {
	t.Helper()
	for _, line := range strings.Split(res, "\r\n") {
		if !strings.HasPrefix(line, "WWW-Authenticate:") || !strings.Contains(line, "algorithm="+alg+",") {
			continue
		}
		realm := between(line, `realm="`, `"`)
		nonce := between(line, `nonce="`, `"`)
		ha1, _ := sipauth.HA1(alg, user, realm, secret)
		resp, _ := sipauth.Response(alg, ha1, method, uri, nonce, "00000001", "c0ffee", "auth")
		return fmt.Sprintf(`Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=00000001, cnonce="c0ffee"`,
			user, realm, nonce, uri, resp, alg)
	}
	t.Fatalf("no %s challenge in\n%s", alg, res)
	return ""
}

func between(s, a, b string) string {
	_, rest, _ := strings.Cut(s, a)
	v, _, _ := strings.Cut(rest, b)
	return v
}

func TestRegisterDigest(t *testing.T) {
	_, addr, st, fails, regs := startRegistrar(t, 0)
	p := newPhone(t, addr)
	uri := fmt.Sprintf("sip:1001@%s", addr)
	register := func(cseq int, extra ...string) string {
		p.toTag = ""
		p.sendRaw("REGISTER", cseq, "", "", extra...)
		m := p.expect("SIP/2.0 ", 5*time.Second)
		p.toTag = ""
		return m
	}
	res := register(1, "Expires: 600")
	if !strings.HasPrefix(res, "SIP/2.0 401") || strings.Count(res, "WWW-Authenticate:") != 2 ||
		strings.Index(res, "algorithm=SHA-256") > strings.Index(res, "algorithm=MD5") {
		t.Fatalf("REGISTER without credentials:\n%s", res)
	}
	if got := register(2, "Expires: 600", digestFor(t, res, sipauth.MD5, "1001", "wrong", "REGISTER", uri)); !strings.HasPrefix(got, "SIP/2.0 403") {
		t.Fatalf("wrong secret:\n%s", got)
	}
	if f := fails.list(); len(f) != 1 || f[0] != "127.0.0.1 default 1001" {
		t.Fatalf("AuthObserver heard %q", f)
	}
	if got := register(3, "Expires: 30", digestFor(t, res, sipauth.MD5, "1001", regSecret, "REGISTER", uri)); !strings.HasPrefix(got, "SIP/2.0 423") ||
		!strings.Contains(got, "Min-Expires: 60") {
		t.Fatalf("Expires 30:\n%s", got)
	}
	ok := register(4, "Expires: 7200", "Path: <sip:edge.example;lr>", digestFor(t, res, sipauth.SHA256, "1001", regSecret, "REGISTER", uri))
	if !strings.HasPrefix(ok, "SIP/2.0 200") || !strings.Contains(ok, fmt.Sprintf("<sip:2002@127.0.0.1:%d>;expires=3600", p.port())) {
		t.Fatalf("REGISTER with the secret (expiry capped at 3600):\n%s", ok)
	}
	select {
	case r := <-regs:
		if r.Mailbox != "1001" || len(r.Path) != 1 || r.Path[0] != "<sip:edge.example;lr>" {
			t.Fatalf("HandleRegistered got %+v", r)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("HandleRegistered not called")
	}
	list, err := st.ListSIPRegistrations(context.Background(), "default", "1001", time.Now())
	if err != nil || len(list) != 1 || list[0].Source != fmt.Sprintf("127.0.0.1:%d", p.port()) || list[0].Transport != "udp" {
		t.Fatalf("stored bindings %+v %v", list, err)
	}
	if got := register(5, "Expires: 5", "Contact: *", digestFor(t, res, sipauth.MD5, "1001", regSecret, "REGISTER", uri)); !strings.HasPrefix(got, "SIP/2.0 400") {
		t.Fatalf("wildcard without Expires 0:\n%s", got)
	}
	// The phone's own Contact plus "*" is refused too; "*" alone with
	// Expires: 0 removes everything (sendRaw always adds a Contact, so
	// remove the one binding by its own Expires: 0 instead).
	if got := register(6, "Expires: 0", digestFor(t, res, sipauth.MD5, "1001", regSecret, "REGISTER", uri)); !strings.HasPrefix(got, "SIP/2.0 200") ||
		strings.Contains(got, "\r\nContact:") {
		t.Fatalf("unregister:\n%s", got)
	}
	if list, _ := st.ListSIPRegistrations(context.Background(), "default", "1001", time.Now()); len(list) != 0 {
		t.Fatalf("bindings after Expires 0: %+v", list)
	}
}

func TestDigestStaleNonce(t *testing.T) {
	_, addr, _, fails, _ := startRegistrar(t, time.Millisecond)
	p := newPhone(t, addr)
	uri := fmt.Sprintf("sip:1001@%s", addr)
	p.sendRaw("REGISTER", 1, "", "", "Expires: 600")
	res := p.expect("SIP/2.0 401", 5*time.Second)
	p.toTag = ""
	time.Sleep(10 * time.Millisecond)
	p.sendRaw("REGISTER", 2, "", "", "Expires: 600", digestFor(t, res, sipauth.MD5, "1001", regSecret, "REGISTER", uri))
	got := p.expect("SIP/2.0 ", 5*time.Second)
	if !strings.HasPrefix(got, "SIP/2.0 401") || !strings.Contains(got, "stale=true") {
		t.Fatalf("expired nonce:\n%s", got)
	}
	if f := fails.list(); len(f) != 0 {
		t.Fatalf("a stale nonce counted as a failure: %q", f)
	}
}
