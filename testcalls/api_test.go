package testcalls

// This file is over 600 lines on purpose: the REST API end to end is one
// story (tokens, mailboxes, messages, events, webhooks) over one server
// per test, and its helpers are shared by every step.

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// helpers for the REST API tests (docs/api.md)

// call does one request with tok ("" = none). body may be a string, []byte
// or any JSON value; ctype defaults to application/json when there is a body.
func (s *server) call(t *testing.T, method, path, tok string, body any, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.url(path), rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// want checks the status and, for errors, the error shape and field.
func want(t *testing.T, what string, res *http.Response, b []byte, status int, field string) {
	t.Helper()
	if res.StatusCode != status {
		t.Errorf("%s: status %d, want %d: %s", what, res.StatusCode, status, b)
		return
	}
	if status < 400 {
		return
	}
	var e struct {
		Error struct{ Code, Message, Field string } `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Errorf("%s: error body %q is not {\"error\":{code,message}}", what, b)
		return
	}
	if e.Error.Field != field {
		t.Errorf("%s: error field %q, want %q (%s)", what, e.Error.Field, field, b)
	}
}

func decodeJSON[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

type apiList[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

type apiToken struct {
	ID, Token, Kind, Tenant, Mailbox string
}

// login returns a user token.
func (s *server) login(t *testing.T, mailbox, pin string) string {
	t.Helper()
	res, b := s.call(t, "POST", "/api/v1/login", "", map[string]string{"mailbox": mailbox, "pin": pin})
	if res.StatusCode != 200 {
		t.Fatalf("login %s: %d %s", mailbox, res.StatusCode, b)
	}
	return decodeJSON[apiToken](t, b).Token
}

// apiEvent is an event of SSE and webhooks.
type apiEvent struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Tenant      string          `json:"tenant"`
	Mailbox     string          `json:"mailbox"`
	MailboxType string          `json:"mailbox_type"`
	Object      json.RawMessage `json:"object"`
}

func (e apiEvent) objectID() string {
	var o struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(e.Object, &o)
	return o.ID
}

// eventLog collects events and lets a test wait for one.
type eventLog struct {
	mu     sync.Mutex
	events []apiEvent
	bad    []string
	signal chan struct{}
}

func newEventLog() *eventLog { return &eventLog{signal: make(chan struct{}, 1)} }

func (l *eventLog) add(e apiEvent) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	select {
	case l.signal <- struct{}{}:
	default:
	}
}

func (l *eventLog) wait(t *testing.T, what string, timeout time.Duration, match func(apiEvent) bool) apiEvent {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		for _, e := range l.events {
			if match(e) {
				l.mu.Unlock()
				return e
			}
		}
		n, bad := len(l.events), append([]string(nil), l.bad...)
		l.mu.Unlock()
		select {
		case <-l.signal:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s: no matching event within %v (%d events; problems %v)", what, timeout, n, bad)
		}
	}
}

// sseClient follows /api/v1/events until the test ends.
func (s *server) sseClient(t *testing.T, tok, query string) *eventLog {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url("/api/v1/events"+query), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	t.Cleanup(func() { res.Body.Close() })
	l := newEventLog()
	connected := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var typ, id string
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, ": connected"):
				once.Do(func() { close(connected) })
			case strings.HasPrefix(line, "event: "):
				typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				var e apiEvent
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e); err != nil || e.Type != typ || e.ID != id {
					l.mu.Lock()
					l.bad = append(l.bad, "bad SSE event: "+line)
					l.mu.Unlock()
					continue
				}
				l.add(e)
			}
		}
	}()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("SSE stream did not start")
	}
	return l
}

// hookReceiver is a webhook endpoint that checks the signature of every
// request against secret.
type hookReceiver struct {
	*eventLog
	secret string
	ln     net.Listener
	srv    *http.Server
}

func startHookReceiver(t *testing.T, addr, secret string) *hookReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("webhook receiver on %s: %v", addr, err)
	}
	h := &hookReceiver{eventLog: newEventLog(), secret: secret, ln: ln}
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		wantSig := "sha256=" + hex.EncodeToString(m.Sum(nil))
		var e apiEvent
		err := json.Unmarshal(body, &e)
		switch {
		case r.Header.Get("X-Voicemail-Signature") != wantSig:
			h.mu.Lock()
			h.bad = append(h.bad, "bad signature "+r.Header.Get("X-Voicemail-Signature"))
			h.mu.Unlock()
			w.WriteHeader(400)
			return
		case err != nil || r.Header.Get("X-Voicemail-Event") != e.Type || r.Header.Get("X-Voicemail-Delivery") != e.ID:
			h.mu.Lock()
			h.bad = append(h.bad, "bad body or headers: "+string(body))
			h.mu.Unlock()
			w.WriteHeader(400)
			return
		}
		h.add(e)
		w.WriteHeader(204)
	})}
	go h.srv.Serve(ln)
	t.Cleanup(func() { h.srv.Close() })
	return h
}

func (s *server) addWebhook(t *testing.T, url, secret string, events ...string) string {
	t.Helper()
	res, b := s.call(t, "POST", "/api/v1/webhooks", s.token, map[string]any{"url": url, "secret": secret, "events": events})
	if res.StatusCode != 201 {
		t.Fatalf("create webhook: %d %s", res.StatusCode, b)
	}
	return decodeJSON[struct{ ID string }](t, b).ID
}

type apiDelivery struct {
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	Attempt   int    `json:"attempt"`
	Status    int    `json:"status"`
	Result    string `json:"result"`
}

func (s *server) deliveries(t *testing.T, hook string) []apiDelivery {
	t.Helper()
	res, b := s.call(t, "GET", "/api/v1/webhooks/"+hook+"/deliveries", s.token, nil)
	if res.StatusCode != 200 {
		t.Fatalf("deliveries: %d %s", res.StatusCode, b)
	}
	return decodeJSON[apiList[apiDelivery]](t, b).Items
}

// depositOne leaves one PCMU message for mailbox with sipp.
func depositOne(t *testing.T, s *server, mailbox string) {
	t.Helper()
	runSipp(t, s, "uac_deposit.xml", mailbox, "codec_pt", "0", "codec_name", "PCMU",
		"pcap", pcapPath("audio_pcmu.pcap"), "pause_ms", pauseFor("audio_pcmu.pcap"))
}

// ---------------------------------------------------------------------------
// tests

// TestAPITenantsTokensAuth: tenants, tenant tokens, user logins and the
// isolation between tenants and mailboxes, with the failures of every kind.
func TestAPITenantsTokensAuth(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	op := s.token

	// No token, a bad token: 401 on every kind of route.
	for _, r := range [][2]string{{"GET", "/api/v1/mailboxes"}, {"GET", "/api/v1/tenants"}, {"GET", "/api/v1/mailboxes/1001/messages"},
		{"GET", "/api/v1/events"}, {"GET", "/api/v1/webhooks"}, {"GET", "/api/v1/users/1001/messages"},
		{"DELETE", "/api/v1/mailboxes/1001"}, {"PUT", "/api/v1/mailboxes/1001/greetings/busy"}} {
		res, b := s.call(t, r[0], r[1], "", nil)
		want(t, "no token "+r[1], res, b, 401, "")
		res, b = s.call(t, r[0], r[1], "wrong", nil)
		want(t, "bad token "+r[1], res, b, 401, "")
	}

	// Tenants.
	res, b := s.call(t, "POST", "/api/v1/tenants", op, map[string]any{"name": "acme", "domains": []string{"acme.example.com"}})
	want(t, "create tenant", res, b, 201, "")
	if res.Header.Get("Location") != "/api/v1/tenants/acme" {
		t.Errorf("tenant Location %q", res.Header.Get("Location"))
	}
	res, b = s.call(t, "POST", "/api/v1/tenants", op, map[string]any{"name": "acme"})
	want(t, "duplicate tenant", res, b, 409, "name")
	res, b = s.call(t, "POST", "/api/v1/tenants", op, map[string]any{"name": "other", "domains": []string{"ACME.example.com"}})
	want(t, "taken domain", res, b, 409, "domains")
	res, b = s.call(t, "POST", "/api/v1/tenants", op, map[string]any{"name": "bad/name"})
	want(t, "bad tenant name", res, b, 400, "name")
	res, b = s.call(t, "POST", "/api/v1/tenants", op, map[string]any{"name": "x", "domains": "acme"})
	want(t, "domains not a list", res, b, 400, "domains")
	res, b = s.call(t, "GET", "/api/v1/tenants", op, nil)
	want(t, "list tenants", res, b, 200, "")
	if l := decodeJSON[apiList[struct{ Name string }]](t, b); len(l.Items) != 2 || l.Items[0].Name != "acme" {
		t.Errorf("tenants %s", b)
	}
	res, b = s.call(t, "GET", "/api/v1/tenants/nope", op, nil)
	want(t, "missing tenant", res, b, 404, "")

	// A tenant token acts on its tenant only.
	res, b = s.call(t, "POST", "/api/v1/tenants/acme/tokens", op, nil)
	want(t, "tenant token", res, b, 201, "")
	tt := decodeJSON[apiToken](t, b)
	res, b = s.call(t, "POST", "/api/v1/tenants/nope/tokens", op, nil)
	want(t, "token of a missing tenant", res, b, 404, "")
	res, b = s.call(t, "POST", "/api/v1/mailboxes", tt.Token, map[string]any{"number": "2001", "name": "Ann", "pin": "2468"})
	want(t, "tenant creates a mailbox", res, b, 201, "")
	res, b = s.call(t, "GET", "/api/v1/mailboxes/1001", tt.Token, nil)
	want(t, "another tenant's mailbox", res, b, 404, "")
	res, b = s.call(t, "GET", "/api/v1/mailboxes/1001/messages?tenant=default", tt.Token, nil)
	want(t, "another tenant's messages, even when named", res, b, 404, "")
	res, b = s.call(t, "GET", "/api/v1/mailboxes/2001", op, nil)
	want(t, "operator on default does not see acme", res, b, 404, "")
	res, b = s.call(t, "GET", "/api/v1/mailboxes/2001", op, nil, "X-Tenant", "acme")
	want(t, "operator with X-Tenant", res, b, 200, "")
	res, b = s.call(t, "GET", "/api/v1/mailboxes/2001?tenant=acme", op, nil)
	want(t, "operator with ?tenant=", res, b, 200, "")
	res, b = s.call(t, "GET", "/api/v1/tenants", tt.Token, nil)
	want(t, "tenant token lists tenants", res, b, 403, "")
	res, b = s.call(t, "POST", "/api/v1/tenants/acme/tokens", tt.Token, nil)
	want(t, "tenant token creates tokens", res, b, 403, "")
	res, b = s.call(t, "GET", "/api/v1/tenants/acme/tokens", op, nil)
	want(t, "list tokens", res, b, 200, "")
	if bytes.Contains(b, []byte(tt.Token)) {
		t.Error("the token list shows a secret")
	}
	res, b = s.call(t, "DELETE", "/api/v1/tenants/acme", op, nil)
	want(t, "delete a tenant with mailboxes", res, b, 409, "tenant")

	// Logins: user tokens, same lockout as the IVR.
	res, b = s.call(t, "POST", "/api/v1/login", "", map[string]string{"mailbox": "1001"})
	want(t, "login without pin", res, b, 400, "pin")
	res, b = s.call(t, "POST", "/api/v1/login", "", map[string]any{"mailbox": "1001", "pin": 1234})
	want(t, "login with a numeric pin", res, b, 400, "pin")
	res, b = s.call(t, "POST", "/api/v1/login", "", map[string]string{"mailbox": "1001", "pin": "9999"})
	want(t, "wrong pin", res, b, 401, "")
	res, b = s.call(t, "POST", "/api/v1/login", "", map[string]string{"tenant": "acme", "mailbox": "2001", "pin": "2468"})
	want(t, "login in acme", res, b, 200, "")
	if tok := decodeJSON[apiToken](t, b); tok.Tenant != "acme" || tok.Mailbox != "2001" || tok.Token == "" {
		t.Errorf("acme login: %s", b)
	}
	user := s.login(t, "1001", "1234")
	for _, c := range []struct {
		method, path string
		body         any
		status       int
		field        string
	}{
		{"GET", "/api/v1/mailboxes/1001", nil, 200, ""},
		{"GET", "/api/v1/mailboxes/8000", nil, 200, ""}, // its group
		{"GET", "/api/v1/mailboxes/8000/messages", nil, 200, ""},
		{"GET", "/api/v1/mailboxes/1002", nil, 403, ""},
		{"GET", "/api/v1/mailboxes/1002/messages", nil, 403, ""},
		{"GET", "/api/v1/mailboxes/9999", nil, 403, ""},
		{"GET", "/api/v1/users/1001/messages", nil, 200, ""},
		{"GET", "/api/v1/users/1002/messages", nil, 403, ""},
		{"GET", "/api/v1/events?mailbox=1002", nil, 403, ""},
		{"POST", "/api/v1/mailboxes", map[string]string{"number": "1010"}, 403, ""},
		{"DELETE", "/api/v1/mailboxes/1001", nil, 403, ""},
		{"GET", "/api/v1/webhooks", nil, 403, ""},
		{"GET", "/api/v1/tenants", nil, 403, ""},
		{"PATCH", "/api/v1/mailboxes/1001", map[string]any{"max_messages": 5}, 403, "max_messages"},
		{"PATCH", "/api/v1/mailboxes/8000", map[string]any{"name": "x"}, 403, ""},
		{"PATCH", "/api/v1/mailboxes/1001", map[string]any{"email": "alice@example.com", "pin": "4321"}, 200, ""},
	} {
		res, b := s.call(t, c.method, c.path, user, c.body)
		want(t, "user token "+c.method+" "+c.path, res, b, c.status, c.field)
	}
	res, b = s.call(t, "GET", "/api/v1/mailboxes", user, nil)
	if l := decodeJSON[apiList[struct{ Number string }]](t, b); len(l.Items) != 2 || l.Items[0].Number != "1001" || l.Items[1].Number != "8000" {
		t.Errorf("user's mailbox list: %s", b)
	}
	s.login(t, "1001", "4321") // the PIN changed through the API
	res, b = s.call(t, "DELETE", "/api/v1/login", user, nil)
	want(t, "logout", res, b, 204, "")
	res, b = s.call(t, "GET", "/api/v1/mailboxes/1001", user, nil)
	want(t, "after logout", res, b, 401, "")

	// 5 failures lock the mailbox, even for the right PIN.
	for i := 0; i < 5; i++ {
		res, b = s.call(t, "POST", "/api/v1/login", "", map[string]string{"mailbox": "1002", "pin": "0000"})
		want(t, "failure", res, b, 401, "")
	}
	res, b = s.call(t, "POST", "/api/v1/login", "", map[string]string{"mailbox": "1002", "pin": "1234"})
	want(t, "locked mailbox", res, b, 403, "")
	if !bytes.Contains(b, []byte(`"locked"`)) {
		t.Errorf("lockout body %s", b)
	}

	// Revoking the tenant token.
	res, b = s.call(t, "DELETE", "/api/v1/tenants/acme/tokens/"+tt.ID, op, nil)
	want(t, "revoke", res, b, 204, "")
	res, b = s.call(t, "GET", "/api/v1/mailboxes", tt.Token, nil)
	want(t, "revoked token", res, b, 401, "")
	res, b = s.call(t, "DELETE", "/api/v1/tenants/acme/tokens/"+tt.ID, op, nil)
	want(t, "revoke twice", res, b, 404, "")
	res, b = s.call(t, "DELETE", "/api/v1/mailboxes/2001", op, nil, "X-Tenant", "acme")
	want(t, "delete acme's mailbox", res, b, 204, "")
	res, b = s.call(t, "DELETE", "/api/v1/tenants/acme", op, nil)
	want(t, "delete tenant", res, b, 204, "")
	res, b = s.call(t, "DELETE", "/api/v1/tenants/default", op, nil)
	want(t, "delete default", res, b, 409, "tenant")
}

// TestAPIMailboxesValidation: create, patch, delete with a 400 naming the
// field for every kind of bad value, 415 for a wrong media type, 422 for
// unknown members; the OpenAPI document, /metrics and /readyz.
func TestAPIMailboxesValidation(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	op := s.token
	res, b := s.call(t, "POST", "/api/v1/mailboxes", op, map[string]any{"number": "1003", "name": "Carol", "pin": "4321",
		"email": "carol@example.com", "timezone": "Europe/Paris", "language": "fr", "mwi_targets": []string{"sip:1003@192.0.2.1"}})
	want(t, "create", res, b, 201, "")
	if res.Header.Get("Location") != "/api/v1/mailboxes/1003" || bytes.Contains(b, []byte(`"pin"`)) || bytes.Contains(b, []byte("4321")) {
		t.Errorf("create answer: %v %s", res.Header, b)
	}
	for _, c := range []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"duplicate", map[string]any{"number": "1003"}, 409, "number"},
		{"no number", map[string]any{"name": "x"}, 400, "number"},
		{"bad number", map[string]any{"number": "12a"}, 400, "number"},
		{"short pin", map[string]any{"number": "1004", "pin": "12"}, 400, "pin"},
		{"bad type", map[string]any{"number": "1004", "type": "shared"}, 400, "type"},
		{"bad email", map[string]any{"number": "1004", "email": "not-an-address"}, 400, "email"},
		{"negative max", map[string]any{"number": "1004", "max_messages": -1}, 400, "max_messages"},
		{"bad tz", map[string]any{"number": "1004", "timezone": "Mars/Olympus"}, 400, "timezone"},
		{"bad operator", map[string]any{"number": "1004", "operator": "bob"}, 400, "operator"},
		{"bad mwi target", map[string]any{"number": "1004", "mwi_targets": []string{"http://x"}}, 400, "mwi_targets"},
		{"unknown field", map[string]any{"number": "1004", "colour": "red"}, 400, "colour"},
		{"wrong json type", map[string]any{"number": "1004", "review": "yes"}, 400, "review"},
		{"members on personal", map[string]any{"number": "1004", "members": []string{"1001"}}, 400, "members"},
		{"unknown member", map[string]any{"number": "8001", "type": "group", "members": []string{"1001", "7777"}}, 422, "members"},
		{"broken json", `{"number":`, 400, ""},
	} {
		res, b := s.call(t, "POST", "/api/v1/mailboxes", op, c.body)
		want(t, c.name, res, b, c.status, c.field)
	}
	res, b = s.call(t, "POST", "/api/v1/mailboxes", op, `{"number":"1004"}`, "Content-Type", "text/plain")
	want(t, "text/plain body", res, b, 415, "")

	res, b = s.call(t, "PATCH", "/api/v1/mailboxes/1003", op, map[string]any{"name": "Caroline", "max_messages": 50, "review": true})
	want(t, "patch", res, b, 200, "")
	if m := decodeJSON[struct {
		Name        string
		MaxMessages int `json:"max_messages"`
		Email       string
		Review      bool
	}](t, b); m.Name != "Caroline" || m.MaxMessages != 50 || m.Email != "carol@example.com" || !m.Review {
		t.Errorf("patched mailbox %s", b)
	}
	res, b = s.call(t, "PATCH", "/api/v1/mailboxes/1003", op, map[string]any{"number": "1005"})
	want(t, "patch number", res, b, 400, "number")
	res, b = s.call(t, "PATCH", "/api/v1/mailboxes/1003", op, map[string]any{"language": "not a tag"})
	want(t, "patch language", res, b, 400, "language")
	res, b = s.call(t, "PATCH", "/api/v1/mailboxes/9999", op, map[string]any{"name": "x"})
	want(t, "patch missing", res, b, 404, "")
	res, b = s.call(t, "PATCH", "/api/v1/mailboxes/8000", op, map[string]any{"members": []string{"1001", "1003"}})
	want(t, "patch group members", res, b, 200, "")
	res, b = s.call(t, "GET", "/api/v1/mailboxes?limit=2", op, nil)
	page := decodeJSON[apiList[struct{ Number string }]](t, b)
	if len(page.Items) != 2 || page.Next == "" {
		t.Fatalf("page 1: %s", b)
	}
	res, b = s.call(t, "GET", "/api/v1/mailboxes?limit=2&cursor="+page.Next, op, nil)
	if page := decodeJSON[apiList[struct{ Number string }]](t, b); len(page.Items) != 2 || page.Items[1].Number != "8000" || page.Next != "" {
		t.Fatalf("page 2: %s", b)
	}
	res, b = s.call(t, "GET", "/api/v1/mailboxes?limit=0", op, nil)
	want(t, "bad limit", res, b, 400, "limit")
	res, b = s.call(t, "DELETE", "/api/v1/mailboxes/1003", op, nil)
	want(t, "delete", res, b, 204, "")
	res, b = s.call(t, "DELETE", "/api/v1/mailboxes/1003", op, nil)
	want(t, "delete again", res, b, 404, "")

	// Webhook validation.
	res, b = s.call(t, "POST", "/api/v1/webhooks", op, map[string]any{"url": "ftp://x"})
	want(t, "webhook url", res, b, 400, "url")
	res, b = s.call(t, "POST", "/api/v1/webhooks", op, map[string]any{"url": "http://127.0.0.1:1/h", "events": []string{"message_exploded"}})
	want(t, "webhook events", res, b, 400, "events")
	res, b = s.call(t, "POST", "/api/v1/webhooks", op, map[string]any{"url": "http://127.0.0.1:1/h", "secret": "short"})
	want(t, "webhook secret", res, b, 400, "secret")
	res, b = s.call(t, "POST", "/api/v1/webhooks", op, map[string]any{"url": "http://127.0.0.1:1/h"})
	want(t, "webhook with a generated secret", res, b, 201, "")
	hook := decodeJSON[struct{ ID, Secret string }](t, b)
	if len(hook.Secret) < 16 {
		t.Errorf("generated secret missing: %s", b)
	}
	res, b = s.call(t, "GET", "/api/v1/webhooks/"+hook.ID, op, nil)
	if want(t, "get webhook", res, b, 200, ""); bytes.Contains(b, []byte(hook.Secret)) {
		t.Error("GET shows the webhook secret")
	}
	res, b = s.call(t, "GET", "/api/v1/webhooks/"+hook.ID, op, nil, "X-Tenant", "other")
	want(t, "webhook of another tenant", res, b, 404, "")
	res, b = s.call(t, "DELETE", "/api/v1/webhooks/"+hook.ID, op, nil)
	want(t, "delete webhook", res, b, 204, "")
	res, b = s.call(t, "GET", "/api/v1/webhooks/"+hook.ID+"/deliveries", op, nil)
	want(t, "deliveries of a deleted webhook", res, b, 404, "")

	// Operations.
	res, b = s.call(t, "GET", "/api/v1/openapi.json", "", nil)
	want(t, "openapi", res, b, 200, "")
	if doc := decodeJSON[struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}](t, b); !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Paths["/api/v1/login"] == nil {
		t.Errorf("openapi document: %.200s", b)
	}
	res, b = s.call(t, "GET", "/metrics", "", nil)
	want(t, "metrics", res, b, 200, "")
	for _, m := range []string{"voicemail_api_requests_total{", `code="400"`, "voicemail_active_calls 0", "go_goroutines"} {
		if !bytes.Contains(b, []byte(m)) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		res, b = s.call(t, "GET", p, "", nil)
		want(t, p, res, b, 200, "")
	}
}

// makeSoxWAV writes a 1.5 s tone in the given sox format options.
func makeSoxWAV(t *testing.T, dir, name string, opts ...string) []byte {
	t.Helper()
	p := filepath.Join(dir, name)
	args := append(append([]string{"-n"}, opts...), p, "synth", "1.5", "sine", "440", "vol", "0.5")
	if out, err := exec.Command("sox", args...).CombinedOutput(); err != nil {
		t.Fatalf("sox %v: %v\n%s", args, err, out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAPIGreetings uploads greetings in many WAV kinds (made with sox) and
// checks that they are stored as 8 kHz mono; other files get 415, big ones 413.
func TestAPIGreetings(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sox"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sox is not installed: apt-get install sox (.ci/run does)")
		}
		t.Skip("sox is not installed: apt-get install sox")
	}
	s := startServer(t, "")
	dir := t.TempDir()
	put := func(kind string, body []byte, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("PUT", s.url("/api/v1/mailboxes/1001/greetings/"+kind), bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.token)
		req.Header.Set("Content-Type", "audio/wav")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	kinds := []struct {
		name string
		opts []string
	}{
		{"pcm16-8k-mono.wav", []string{"-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"}},
		{"pcm16-16k-mono.wav", []string{"-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer"}},
		{"pcm16-44k-stereo.wav", []string{"-r", "44100", "-c", "2", "-b", "16", "-e", "signed-integer"}},
		{"pcm8-22k-mono.wav", []string{"-r", "22050", "-c", "1", "-b", "8", "-e", "unsigned-integer"}},
		{"pcm16-48k-stereo.wav", []string{"-r", "48000", "-c", "2", "-b", "16", "-e", "signed-integer"}},
		{"ulaw-8k-mono.wav", []string{"-r", "8000", "-c", "1", "-e", "u-law"}},
		{"alaw-8k-stereo.wav", []string{"-r", "8000", "-c", "2", "-e", "a-law"}},
	}
	for _, k := range kinds {
		in := makeSoxWAV(t, dir, k.name, k.opts...)
		res, b := put("unavailable", in)
		want(t, "upload "+k.name, res, b, 200, "")
		res, got := s.call(t, "GET", "/api/v1/mailboxes/1001/greetings/unavailable", s.token, nil)
		want(t, "download "+k.name, res, got, 200, "")
		w, err := parseWAV(got)
		if err != nil {
			t.Errorf("%s: stored greeting: %v", k.name, err)
			continue
		}
		if w.rate != 8000 || w.channels != 1 || w.bits != 16 || w.formatTag != 1 {
			t.Errorf("%s: stored as %d Hz, %d channels, %d bits, tag %d", k.name, w.rate, w.channels, w.bits, w.formatTag)
		}
		if n := len(w.samples); n < 11900 || n > 12100 {
			t.Errorf("%s: %d samples, want 1.5 s = 12000", k.name, n)
		}
		if mean := meanAbs16(w.samples); mean < 3000 {
			t.Errorf("%s: converted audio is nearly silent (mean |x| %.0f)", k.name, mean)
		}
	}
	// The file is where the IVR reads it.
	if _, err := os.Stat(filepath.Join(s.dataDir, "media", "default", "1001", "greetings", "unavailable.wav")); err != nil {
		t.Errorf("greeting file: %v", err)
	}
	// Range.
	res, b := s.call(t, "GET", "/api/v1/mailboxes/1001/greetings/unavailable", s.token, nil, "Range", "bytes=0-3")
	if res.StatusCode != 206 || string(b) != "RIFF" {
		t.Errorf("greeting range: %d %q", res.StatusCode, b)
	}
	// Not WAV: 415.
	aiff := makeSoxWAV(t, dir, "tone.aiff", "-r", "8000", "-c", "1")
	res, b = put("busy", aiff)
	want(t, "AIFF", res, b, 415, "")
	res, b = put("busy", []byte("hello"))
	want(t, "text as WAV", res, b, 415, "")
	wav := makeSoxWAV(t, dir, "ok.wav", "-r", "8000", "-c", "1", "-b", "16")
	res, b = put("busy", wav, "Content-Type", "text/plain")
	want(t, "text/plain type", res, b, 415, "")
	float := makeSoxWAV(t, dir, "float.wav", "-r", "8000", "-c", "1", "-b", "32", "-e", "floating-point")
	res, b = put("busy", float)
	want(t, "float WAV", res, b, 415, "")
	// Too big: 413.
	res, b = put("busy", make([]byte, 33<<20))
	want(t, "oversized", res, b, 413, "")
	res, b = put("weird", wav)
	want(t, "bad kind", res, b, 400, "kind")
	res, b = put("busy", wav)
	want(t, "busy", res, b, 200, "")
	// Other mailboxes and tokens.
	user := s.login(t, "1002", "1234")
	req, _ := http.NewRequest("PUT", s.url("/api/v1/mailboxes/1001/greetings/name"), bytes.NewReader(wav))
	req.Header.Set("Authorization", "Bearer "+user)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 403 {
		t.Errorf("user token on another mailbox's greeting: %v %v", res.StatusCode, err)
	}
	res, b = s.call(t, "GET", "/api/v1/mailboxes/1001/greetings/busy", s.token, nil, "X-Tenant", "other")
	want(t, "greeting in another tenant", res, b, 404, "")
	res, b = s.call(t, "DELETE", "/api/v1/mailboxes/1001/greetings/busy", s.token, nil)
	want(t, "delete greeting", res, b, 204, "")
	res, b = s.call(t, "GET", "/api/v1/mailboxes/1001/greetings/busy", s.token, nil)
	want(t, "deleted greeting", res, b, 404, "")
	res, b = s.call(t, "DELETE", "/api/v1/mailboxes/1001/greetings/busy", s.token, nil)
	want(t, "delete again", res, b, 404, "")
	// Deleting the mailbox deletes its greetings.
	res, b = s.call(t, "DELETE", "/api/v1/mailboxes/1001", s.token, nil)
	want(t, "delete mailbox", res, b, 204, "")
	if _, err := os.Stat(filepath.Join(s.dataDir, "media", "default", "1001", "greetings", "unavailable.wav")); !os.IsNotExist(err) {
		t.Errorf("greeting survived its mailbox: %v", err)
	}
}

func meanAbs16(x []int16) float64 {
	if len(x) == 0 {
		return 0
	}
	var sum float64
	for _, v := range x {
		if v < 0 {
			sum -= float64(v)
		} else {
			sum += float64(v)
		}
	}
	return sum / float64(len(x))
}

// TestAPIMessagesAndEvents: a sipp deposit reaches an SSE client and two
// webhooks (one down at first) as message_created with a valid signature;
// the message routes (Range, patch, forward, users/…, delete) work and their
// changes are events too.
func TestAPIMessagesAndEvents(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	s := depositServer(t)
	const secret = "0123456789abcdef-secret"
	up := startHookReceiver(t, "127.0.0.1:0", secret)
	upID := s.addWebhook(t, "http://"+up.ln.Addr().String()+"/hook", secret)
	downAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	downID := s.addWebhook(t, "http://"+downAddr+"/hook", secret, "message_created")
	sse := s.sseClient(t, s.token, "?mailbox=1001")
	all := s.sseClient(t, s.token, "")
	user2 := s.login(t, "1002", "1234")
	sse2 := s.sseClient(t, user2, "")

	depositOne(t, s, "1001")
	created := sse.wait(t, "SSE message_created", 20*time.Second, func(e apiEvent) bool { return e.Type == "message_created" })
	id := created.objectID()
	if created.Mailbox != "1001" || created.Tenant != "default" || created.MailboxType != "personal" || id == "" {
		t.Fatalf("SSE event %+v", created)
	}
	hooked := up.wait(t, "webhook message_created", 20*time.Second, func(e apiEvent) bool { return e.Type == "message_created" })
	if hooked.ID != created.ID || hooked.objectID() != id {
		t.Errorf("webhook event %+v, SSE event %+v", hooked, created)
	}

	// Message routes.
	res, b := s.call(t, "GET", "/api/v1/mailboxes/1001/messages/"+id, s.token, nil)
	want(t, "get message", res, b, 200, "")
	res, b = s.call(t, "GET", "/api/v1/mailboxes/1001/messages?caller_id=%2B14155550100", s.token, nil)
	if l := decodeJSON[apiList[apiMessage]](t, b); len(l.Items) != 1 {
		t.Errorf("caller filter: %s", b)
	}
	res, b = s.call(t, "GET", "/api/v1/mailboxes/1001/messages?caller_id=%2B100", s.token, nil)
	if l := decodeJSON[apiList[apiMessage]](t, b); len(l.Items) != 0 {
		t.Errorf("caller filter, other caller: %s", b)
	}
	full := s.audio(t, "1001", id)
	res, b = s.call(t, "GET", "/api/v1/mailboxes/1001/messages/"+id+"/audio", s.token, nil, "Range", "bytes=44-143")
	if res.StatusCode != 206 || !bytes.Equal(b, full[44:144]) || res.Header.Get("Content-Range") != fmt.Sprintf("bytes 44-143/%d", len(full)) {
		t.Errorf("range: %d %q %d bytes", res.StatusCode, res.Header.Get("Content-Range"), len(b))
	}
	res, b = s.call(t, "GET", "/api/v1/mailboxes/1001/messages/"+id+"/audio", s.token, nil, "Range", "bytes=-10")
	if res.StatusCode != 206 || !bytes.Equal(b, full[len(full)-10:]) {
		t.Errorf("suffix range: %d", res.StatusCode)
	}
	res, _ = s.call(t, "GET", "/api/v1/mailboxes/1001/messages/"+id+"/audio", s.token, nil, "Range", fmt.Sprintf("bytes=%d-", len(full)+10))
	if res.StatusCode != 416 {
		t.Errorf("unsatisfiable range: %d", res.StatusCode)
	}
	res, b = s.call(t, "GET", "/api/v1/mailboxes/1001/messages/"+id, user2, nil)
	want(t, "user token on another mailbox's message", res, b, 403, "")
	res, b = s.call(t, "GET", "/api/v1/mailboxes/1001/messages/"+id, s.token, nil, "X-Tenant", "other")
	want(t, "message in another tenant", res, b, 404, "")
	res, b = s.call(t, "GET", "/api/v1/mailboxes/1001/messages/0190f0f0-0000-7000-8000-000000000000", s.token, nil)
	want(t, "missing message", res, b, 404, "")

	res, b = s.call(t, "PATCH", "/api/v1/mailboxes/1001/messages/"+id, s.token, map[string]any{"folder": "work", "read": true, "urgent": true})
	want(t, "patch message", res, b, 200, "")
	if m := decodeJSON[apiMessage](t, b); m.Folder != "work" || !m.Read || !m.Urgent {
		t.Errorf("patched message %s", b)
	}
	sse.wait(t, "SSE message_updated", 10*time.Second, func(e apiEvent) bool {
		return e.Type == "message_updated" && e.objectID() == id && strings.Contains(string(e.Object), `"folder":"work"`)
	})
	for _, c := range []struct {
		body  any
		field string
	}{{map[string]any{"folder": "trash"}, "folder"}, {map[string]any{"read": "yes"}, "read"}, {map[string]any{"id": "x"}, "id"}} {
		res, b = s.call(t, "PATCH", "/api/v1/mailboxes/1001/messages/"+id, s.token, c.body)
		want(t, "bad patch", res, b, 400, c.field)
	}
	res, b = s.call(t, "GET", "/api/v1/mailboxes/1001/messages?folder=work", s.token, nil)
	if l := decodeJSON[apiList[apiMessage]](t, b); len(l.Items) != 1 {
		t.Errorf("folder filter: %s", b)
	}

	// Forward a copy to 1002 and to the group.
	res, b = s.call(t, "POST", "/api/v1/mailboxes/1001/messages/"+id+"/forward", s.token, map[string]string{"to": "1002"})
	want(t, "forward", res, b, 201, "")
	fwd := decodeJSON[apiMessage](t, b)
	if fwd.Mailbox != "1002" || fwd.ID == id || fwd.Folder != "new" || res.Header.Get("Location") != "/api/v1/mailboxes/1002/messages/"+fwd.ID {
		t.Errorf("forwarded %s (Location %q)", b, res.Header.Get("Location"))
	}
	if got := s.audio(t, "1002", fwd.ID); !bytes.Equal(got, full) {
		t.Errorf("forwarded audio differs (%d vs %d bytes)", len(got), len(full))
	}
	sse2.wait(t, "user 1002 sees the forwarded message", 10*time.Second, func(e apiEvent) bool {
		return e.Type == "message_created" && e.Mailbox == "1002" && e.objectID() == fwd.ID
	})
	res, b = s.call(t, "POST", "/api/v1/mailboxes/1001/messages/"+id+"/forward", s.token, map[string]string{"to": "8000"})
	want(t, "forward to the group", res, b, 201, "")
	res, b = s.call(t, "POST", "/api/v1/mailboxes/1001/messages/"+id+"/forward", s.token, map[string]string{"to": "9999"})
	want(t, "forward to nowhere", res, b, 422, "to")
	res, b = s.call(t, "POST", "/api/v1/mailboxes/1001/messages/"+id+"/forward", s.token, map[string]any{})
	want(t, "forward without to", res, b, 400, "to")

	// users/{n}/messages: personal, global (groups), all.
	count := func(q string) int {
		t.Helper()
		res, b := s.call(t, "GET", "/api/v1/users/1002/messages"+q, user2, nil)
		if res.StatusCode != 200 {
			t.Fatalf("users messages %s: %d %s", q, res.StatusCode, b)
		}
		return len(decodeJSON[apiList[apiMessage]](t, b).Items)
	}
	if p, g, a := count("?voicemail_type=personal"), count("?voicemail_type=global"), count(""); p != 1 || g != 1 || a != 2 {
		t.Errorf("users/1002/messages: personal %d, global %d, all %d; want 1, 1, 2", p, g, a)
	}
	res, b = s.call(t, "GET", "/api/v1/users/1002/messages?limit=1", user2, nil)
	if l := decodeJSON[apiList[apiMessage]](t, b); len(l.Items) != 1 || l.Next == "" {
		t.Errorf("users page: %s", b)
	}
	res, b = s.call(t, "GET", "/api/v1/users/1002/messages?voicemail_type=both", user2, nil)
	want(t, "bad voicemail_type", res, b, 400, "voicemail_type")

	// Delete: message_deleted on SSE and the webhook, audio gone.
	res, b = s.call(t, "DELETE", "/api/v1/mailboxes/1001/messages/"+id, s.token, nil)
	want(t, "delete message", res, b, 204, "")
	sse.wait(t, "SSE message_deleted", 10*time.Second, func(e apiEvent) bool { return e.Type == "message_deleted" && e.objectID() == id })
	up.wait(t, "webhook message_deleted", 10*time.Second, func(e apiEvent) bool { return e.Type == "message_deleted" && e.objectID() == id })
	if _, err := os.Stat(filepath.Join(s.dataDir, "media", "default", "1001", id+".wav")); !os.IsNotExist(err) {
		t.Errorf("deleted message's audio: %v", err)
	}
	res, b = s.call(t, "DELETE", "/api/v1/mailboxes/1001/messages/"+id, s.token, nil)
	want(t, "delete again", res, b, 404, "")
	all.wait(t, "the unfiltered stream saw 8000", 10*time.Second, func(e apiEvent) bool { return e.Mailbox == "8000" && e.MailboxType == "group" })
	sse.mu.Lock()
	for _, e := range sse.events {
		if e.Mailbox != "1001" {
			t.Errorf("?mailbox=1001 stream got an event of %s", e.Mailbox)
		}
	}
	sse.mu.Unlock()

	// The receiver that was down gets the event once it is up.
	if d := s.deliveries(t, downID); len(d) == 0 || d[0].Result != "retry" || d[0].Status != 0 {
		t.Errorf("down receiver's delivery log: %+v", d)
	}
	down := startHookReceiver(t, downAddr, secret)
	got := down.wait(t, "late webhook", 60*time.Second, func(e apiEvent) bool { return e.Type == "message_created" && e.objectID() == id })
	if got.ID != created.ID {
		t.Errorf("late event id %s, want %s", got.ID, created.ID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := s.deliveries(t, downID)
		if len(d) > 0 && d[0].Result == "delivered" && d[0].Status == 204 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery log after recovery: %+v", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := s.deliveries(t, upID); len(d) < 2 {
		t.Errorf("up receiver's log: %+v", d)
	}

	// Deleting a mailbox deletes its messages' audio.
	res, b = s.call(t, "DELETE", "/api/v1/mailboxes/1002", s.token, nil)
	want(t, "delete 1002", res, b, 204, "")
	if _, err := os.Stat(filepath.Join(s.dataDir, "media", "default", "1002", fwd.ID+".wav")); !os.IsNotExist(err) {
		t.Errorf("audio of a deleted mailbox: %v", err)
	}
	all.wait(t, "mailbox_deleted", 10*time.Second, func(e apiEvent) bool { return e.Type == "mailbox_deleted" && e.Mailbox == "1002" })
}

// TestWebhookQueueSurvivesRestart: an event queued for a receiver that is
// down is delivered by the next server process on the same data.
func TestWebhookQueueSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir)
	const secret = "restart-secret-0123456789"
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	hook := s.addWebhook(t, "http://"+addr+"/hook", secret, "mailbox_created")
	res, b := s.call(t, "POST", "/api/v1/mailboxes", s.token, map[string]any{"number": "4242", "name": "Dora"})
	want(t, "create", res, b, 201, "")
	deadline := time.Now().Add(10 * time.Second)
	for len(s.deliveries(t, hook)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no delivery attempt logged")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()

	rcv := startHookReceiver(t, addr, secret)
	s2 := startServer(t, dir)
	e := rcv.wait(t, "event after restart", 30*time.Second, func(e apiEvent) bool { return e.Type == "mailbox_created" && e.Mailbox == "4242" })
	if !strings.Contains(string(e.Object), `"name":"Dora"`) {
		t.Errorf("event object %s", e.Object)
	}
	_ = s2
}
