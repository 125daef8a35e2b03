package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmserver/voicemail/store"
)

const token = "secret-token"

type fixture struct {
	srv   *httptest.Server
	st    store.Store
	blobs store.Blobs
	api   *Server
}

// openStore opens a SQLite store and a media folder in dir, closed at the
// end of the test, with the given tenants created.
func openStore(t *testing.T, dir string, tenants ...string) (store.Store, *store.FSBlobs) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "vm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	blobs, err := store.NewFSBlobs(filepath.Join(dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range tenants {
		if err := st.CreateTenant(ctx, &store.Tenant{Name: tn}); err != nil {
			t.Fatal(err)
		}
	}
	return st, blobs
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, blobs := openStore(t, t.TempDir(), "default", "acme")
	changes := store.NewChanges()
	nst := store.Notifying(st, changes)
	loopback, _ := ParseWebhookAllow([]string{"127.0.0.0/8", "::1"}) // the test receivers listen there
	h := New(Config{Store: nst, Changes: changes, Blobs: blobs, AdminToken: token, WebhookPolicy: loopback,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), WebhookBackoff: 50 * time.Millisecond})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })
	return &fixture{srv: srv, st: nst, blobs: blobs, api: h}
}

func (f *fixture) do(t *testing.T, method, path, tok, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
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

type errBody struct {
	Error struct{ Code, Message, Field string } `json:"error"`
}

func TestMailboxCreateAndErrors(t *testing.T) {
	f := newFixture(t)
	res, b := f.do(t, "POST", "/api/v1/mailboxes", token, `{"number":"1001","name":"Alice","pin":"1234","timezone":"Europe/Paris"}`)
	if res.StatusCode != 201 || res.Header.Get("Location") != "/api/v1/mailboxes/1001" {
		t.Fatalf("create: %d %s", res.StatusCode, b)
	}
	if bytes.Contains(b, []byte("1234")) || bytes.Contains(b, []byte(`"pin"`)) {
		t.Errorf("PIN leaked in %s", b)
	}
	mb, err := f.st.GetMailbox(context.Background(), "default", "1001")
	if err != nil || !store.CheckPIN(mb.PINHash, "1234") || mb.Name != "Alice" {
		t.Fatalf("stored mailbox %+v %v", mb, err)
	}
	cases := []struct {
		name, tok, body string
		status          int
		field           string
	}{
		{"no token", "", `{"number":"1002"}`, 401, ""},
		{"bad token", "nope", `{"number":"1002"}`, 401, ""},
		{"duplicate", token, `{"number":"1001"}`, 409, "number"},
		{"bad number", token, `{"number":"10a1"}`, 400, "number"},
		{"short pin", token, `{"number":"1002","pin":"12"}`, 400, "pin"},
		{"bad type", token, `{"number":"1002","type":"shared"}`, 400, "type"},
		{"unknown field", token, `{"number":"1002","colour":"red"}`, 400, "colour"},
		{"wrong type", token, `{"number":1002}`, 400, "number"},
		{"bad tz", token, `{"number":"1002","timezone":"Mars/Olympus"}`, 400, "timezone"},
		{"members on personal", token, `{"number":"1002","members":["1001"]}`, 400, "members"},
		{"broken json", token, `{"number":`, 400, ""},
	}
	for _, c := range cases {
		res, b := f.do(t, "POST", "/api/v1/mailboxes", c.tok, c.body)
		var e errBody
		if err := json.Unmarshal(b, &e); err != nil || res.StatusCode != c.status || e.Error.Field != c.field || e.Error.Code == "" {
			t.Errorf("%s: %d %s", c.name, res.StatusCode, b)
		}
	}
	res, _ = f.do(t, "GET", "/api/v1/mailboxes/1001", token, "")
	if res.StatusCode != 200 {
		t.Errorf("get: %d", res.StatusCode)
	}
	// Another tenant does not see it.
	res, _ = f.do(t, "GET", "/api/v1/mailboxes/1001", token, "", "X-Tenant", "acme")
	if res.StatusCode != 404 {
		t.Errorf("other tenant get: %d", res.StatusCode)
	}
	res, _ = f.do(t, "GET", "/api/v1/mailboxes/1001/messages?tenant=acme", token, "")
	if res.StatusCode != 404 {
		t.Errorf("other tenant messages: %d", res.StatusCode)
	}
}

func TestMessagesListAndAudio(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.st.CreateMailbox(ctx, &store.Mailbox{Tenant: "default", Number: "1001"}); err != nil {
		t.Fatal(err)
	}
	audio := bytes.Repeat([]byte("RIFFdata"), 1000)
	var ids []string
	for i, caller := range []string{"+17815551212", "2002", "+17815551212"} {
		id := store.NewMessageID()
		key := store.MediaKey("default", "1001", id)
		if err := f.blobs.Put(key, bytes.NewReader(audio)); err != nil {
			t.Fatal(err)
		}
		m := &store.Message{ID: id, Tenant: "default", Mailbox: "1001", CallerID: caller, CallerE164: caller,
			ReceivedAt: time.Now().UTC(), DurationMS: int64(1000 * (i + 1)), Size: int64(len(audio)), MediaKey: key}
		if i == 1 {
			m.Folder = "work"
		}
		if err := f.st.CreateMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		time.Sleep(2 * time.Millisecond) // distinct UUIDv7 times
	}
	var page struct {
		Items []messageJSON
		Next  string
	}
	get := func(q string) {
		t.Helper()
		res, b := f.do(t, "GET", "/api/v1/mailboxes/1001/messages"+q, token, "")
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", q, res.StatusCode, b)
		}
		page.Items, page.Next = nil, ""
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
	}
	get("")
	if len(page.Items) != 3 || page.Items[0].ID != ids[0] || page.Next != "" {
		t.Fatalf("list: %+v", page)
	}
	get("?limit=2")
	if len(page.Items) != 2 || page.Next == "" {
		t.Fatalf("page 1: %+v", page)
	}
	get("?limit=2&cursor=" + page.Next)
	if len(page.Items) != 1 || page.Items[0].ID != ids[2] {
		t.Fatalf("page 2: %+v", page)
	}
	get("?folder=work")
	if len(page.Items) != 1 || page.Items[0].ID != ids[1] {
		t.Fatalf("folder: %+v", page)
	}
	get("?caller_id=%2B17815551212")
	if len(page.Items) != 2 {
		t.Fatalf("caller: %+v", page)
	}
	if res, _ := f.do(t, "GET", "/api/v1/mailboxes/1001/messages?folder=trash", token, ""); res.StatusCode != 400 {
		t.Errorf("bad folder: %d", res.StatusCode)
	}
	res, b := f.do(t, "GET", "/api/v1/mailboxes/1001/messages/"+ids[0]+"/audio", token, "")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "audio/wav" || !bytes.Equal(b, audio) {
		t.Fatalf("audio: %d %s %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(b))
	}
	res, b = f.do(t, "GET", "/api/v1/mailboxes/1001/messages/"+ids[0]+"/audio", token, "", "Range", "bytes=8-15")
	if res.StatusCode != 206 || string(b) != "RIFFdata" {
		t.Fatalf("range: %d %q", res.StatusCode, b)
	}
	if res, _ := f.do(t, "GET", "/api/v1/mailboxes/1001/messages/nope/audio", token, ""); res.StatusCode != 404 {
		t.Errorf("missing message: %d", res.StatusCode)
	}
	if res, _ := f.do(t, "GET", "/api/v1/mailboxes/9999/messages", token, ""); res.StatusCode != 404 {
		t.Errorf("missing mailbox: %d", res.StatusCode)
	}
}

func TestHealth(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if res, b := f.do(t, "GET", p, "", ""); res.StatusCode != 200 {
			t.Errorf("%s: %d %s", p, res.StatusCode, b)
		}
	}
	if res, _ := f.do(t, "GET", "/api/v1/nothing", token, ""); res.StatusCode != 404 {
		t.Errorf("unknown route: %d", res.StatusCode)
	}
}
