package api

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmserver/voicemail/gdpr"
	"github.com/vmserver/voicemail/store"
)

const gdprRequest = `{"requests":[
 {"requestcase":"C-1","type":"FORGET","accountid":"A1","contacts":[{"phone":"+1 781 555 1212"},{"phone":"617 555 1313"},{"email":"jane@example.com"}]},
 {"requestcase":"C-2","type":"FORGET","contacts":[{"phone":"+44 20 7946 0958"},{"ipaddr":"192.0.2.7"}]}]}`

// newGDPRFixture is newFixture with the GDPR service, mailboxes 1001
// (default) and 2001 (acme), and messages from +17815551212 in both.
func newGDPRFixture(t *testing.T) (*fixture, map[string]store.Message) {
	t.Helper()
	dir := t.TempDir()
	ctx := t.Context()
	raw, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "vm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	blobs, err := store.NewFSBlobs(filepath.Join(dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	changes := store.NewChanges()
	st := store.Notifying(raw, changes)
	for _, tn := range []string{"default", "acme"} {
		if err := st.CreateTenant(ctx, &store.Tenant{Name: tn}); err != nil {
			t.Fatal(err)
		}
	}
	msgs := map[string]store.Message{}
	for _, x := range []struct{ tenant, mb, caller, name string }{
		{"default", "1001", "+17815551212", "us"}, {"acme", "2001", "+17815551212", "acme"}, {"default", "1001", "+16175551414", "other"},
	} {
		if err := st.CreateMailbox(ctx, &store.Mailbox{Tenant: x.tenant, Number: x.mb}); err != nil && !strings.Contains(err.Error(), "exists") {
			t.Fatal(err)
		}
		m := store.Message{ID: store.NewMessageID(), Tenant: x.tenant, Mailbox: x.mb, CallerID: x.caller, CallerE164: x.caller}
		if err := blobs.Put(store.MediaKey(x.tenant, x.mb, m.ID), strings.NewReader("RIFF"+x.name)); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateMessage(ctx, &m); err != nil {
			t.Fatal(err)
		}
		msgs[x.name] = m
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := gdpr.New(gdpr.Config{Store: st, Blobs: blobs, DataDir: dir, Logger: log, RetentionDays: 90})
	if err != nil {
		t.Fatal(err)
	}
	h := New(Config{Store: st, Changes: changes, Blobs: blobs, AdminToken: token, Logger: log, GDPR: svc})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })
	return &fixture{srv: srv, st: st, blobs: blobs, api: h}, msgs
}

// gdprAnswer is the API's answer: the contact-center result file plus
// the run's summary.
type gdprAnswer struct {
	Requests []struct {
		RequestCase string `json:"requestcase"`
		AccountID   string `json:"accountid"`
	} `json:"requests"`
	Result []struct {
		RequestCase string `json:"requestcase"`
		AccountID   string `json:"accountid"`
		Contacts    []struct {
			Phone     string   `json:"phone"`
			Email     string   `json:"email"`
			Response  string   `json:"response"`
			Messages  int      `json:"messages"`
			Mailboxes []string `json:"mailboxes"`
		} `json:"contacts"`
	} `json:"result"`
	DryRun     bool   `json:"dry_run"`
	ArchiveURL string `json:"archive_url"`
	Messages   int    `json:"messages"`
	Errors     int    `json:"errors"`
}

func (a gdprAnswer) responses() []string {
	var out []string
	for _, r := range a.Result {
		for _, x := range r.Contacts {
			out = append(out, x.Response)
		}
	}
	return out
}

func gdprCall(t *testing.T, f *fixture, op, tok, body string, hdr ...string) gdprAnswer {
	t.Helper()
	res, b := f.do(t, "POST", "/api/v1/gdpr/"+op, tok, body, hdr...)
	if res.StatusCode != 200 {
		t.Fatalf("POST gdpr/%s: %d %s", op, res.StatusCode, b)
	}
	var a gdprAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func tenantToken(t *testing.T, f *fixture, tenant string) string {
	t.Helper()
	res, b := f.do(t, "POST", "/api/v1/tenants/"+tenant+"/tokens", token, "")
	if res.StatusCode != 201 {
		t.Fatalf("tenant token: %d %s", res.StatusCode, b)
	}
	var tok struct{ Token string }
	json.Unmarshal(b, &tok)
	return tok.Token
}

func TestGDPRExportAPI(t *testing.T) {
	f, msgs := newGDPRFixture(t)
	a := gdprCall(t, f, "export", token, gdprRequest)
	want := []string{"SUCCESS", "ERROR: incorrect device format", "SUCCESS: not found", "SUCCESS: not found", "SUCCESS: not found"}
	if got := a.responses(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("responses %q", got)
	}
	if a.Requests[0].AccountID != "A1" || a.Result[0].AccountID != "A1" || a.Result[0].Contacts[0].Phone != "+1 781 555 1212" ||
		a.Result[0].Contacts[0].Messages != 2 || a.Errors != 1 {
		t.Errorf("echo %+v", a)
	}
	if !strings.HasPrefix(a.ArchiveURL, "/api/v1/gdpr/exports/") {
		t.Fatalf("archive_url %q", a.ArchiveURL)
	}
	res, b := f.do(t, "GET", a.ArchiveURL, token, "")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("archive: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, zf := range zr.File {
		names[zf.Name] = true
	}
	for _, n := range []string{msgs["us"].ID + ".wav", msgs["acme"].ID + ".wav", "export.json"} {
		if !names[n] {
			t.Errorf("archive lacks %s: %v", n, names)
		}
	}
	if names[msgs["other"].ID+".wav"] {
		t.Error("another caller's message was exported")
	}

	// A tenant token (and the operator naming a tenant) see one tenant.
	acme := tenantToken(t, f, "acme")
	a2 := gdprCall(t, f, "export", acme, gdprRequest)
	if a2.Messages != 1 {
		t.Errorf("acme export: %d messages", a2.Messages)
	}
	if a3 := gdprCall(t, f, "export", token, gdprRequest, "X-Tenant", "default"); a3.Messages != 1 {
		t.Errorf("operator with X-Tenant: %d messages", a3.Messages)
	}
	// acme cannot fetch the operator's archive.
	if res, _ := f.do(t, "GET", a.ArchiveURL, acme, ""); res.StatusCode != 404 {
		t.Errorf("acme fetched the operator's archive: %d", res.StatusCode)
	}
	if res, _ := f.do(t, "GET", a2.ArchiveURL, acme, ""); res.StatusCode != 200 {
		t.Errorf("acme cannot fetch its archive: %d", res.StatusCode)
	}
}

func TestGDPRForgetUndoAPI(t *testing.T) {
	f, msgs := newGDPRFixture(t)
	a := gdprCall(t, f, "forget", token, gdprRequest)
	if a.Messages != 2 || a.Result[0].Contacts[0].Response != "SUCCESS" {
		t.Fatalf("forget %+v", a)
	}
	if res, _ := f.do(t, "GET", "/api/v1/mailboxes/1001/messages/"+msgs["us"].ID, token, ""); res.StatusCode != 404 {
		t.Errorf("forgotten message still served: %d", res.StatusCode)
	}
	res, b := f.do(t, "GET", "/api/v1/mailboxes/1001/messages", token, "")
	if res.StatusCode != 200 || strings.Contains(string(b), msgs["us"].ID) || !strings.Contains(string(b), msgs["other"].ID) {
		t.Errorf("list after forget: %s", b)
	}
	a = gdprCall(t, f, "undo", token, gdprRequest)
	if a.Messages != 2 {
		t.Fatalf("undo %+v", a)
	}
	if res, _ := f.do(t, "GET", "/api/v1/mailboxes/1001/messages/"+msgs["us"].ID, token, ""); res.StatusCode != 200 {
		t.Errorf("restored message: %d", res.StatusCode)
	}

	// The audit trail: operator only, no number in clear.
	res, b = f.do(t, "GET", "/api/v1/gdpr/audit?limit=3", token, "")
	if res.StatusCode != 200 {
		t.Fatalf("audit: %d %s", res.StatusCode, b)
	}
	var page struct {
		Items []struct {
			Operation   string `json:"operation"`
			Actor       string `json:"actor"`
			ContactHash string `json:"contact_hash"`
		} `json:"items"`
		Next string `json:"next"`
	}
	json.Unmarshal(b, &page)
	if len(page.Items) != 3 || page.Next == "" || page.Items[0].Operation != "forget" || page.Items[0].Actor != "operator" || len(page.Items[0].ContactHash) != 64 {
		t.Errorf("audit page %s", b)
	}
	res, b = f.do(t, "GET", "/api/v1/gdpr/audit?limit=1000", token, "")
	for _, clear := range []string{"7815551212", "781 555", "617 555", "6175551313", "jane@", "192.0.2.7"} {
		if strings.Contains(string(b), clear) {
			t.Errorf("audit shows %q in clear", clear)
		}
	}
	if res, _ := f.do(t, "GET", "/api/v1/gdpr/audit", tenantToken(t, f, "acme"), ""); res.StatusCode != 403 {
		t.Errorf("tenant token read the audit: %d", res.StatusCode)
	}
}

func TestGDPRAPIErrors(t *testing.T) {
	f, _ := newGDPRFixture(t)
	for _, tc := range []struct {
		name, op, tok, body string
		status              int
		hdr                 []string
	}{
		{"no token", "forget", "", gdprRequest, 401, nil},
		{"bad JSON", "forget", token, `{"requests": [`, 400, nil},
		{"no requests", "export", token, `{"x": 1}`, 400, nil},
		{"unknown tenant", "export", token, gdprRequest, 404, []string{"X-Tenant", "nope"}},
		{"not JSON", "export", token, gdprRequest, 415, []string{"Content-Type", "text/plain"}},
	} {
		res, b := f.do(t, "POST", "/api/v1/gdpr/"+tc.op, tc.tok, tc.body, tc.hdr...)
		if res.StatusCode != tc.status || !bytes.Contains(b, []byte(`"error"`)) {
			t.Errorf("%s: %d %s, want %d", tc.name, res.StatusCode, b, tc.status)
		}
	}
	// A user token may not.
	pin, _ := store.HashPIN("1234")
	mb, _ := f.st.GetMailbox(t.Context(), "default", "1001")
	mb.PINHash = pin
	if err := f.st.UpdateMailbox(t.Context(), mb); err != nil {
		t.Fatal(err)
	}
	res, b := f.do(t, "POST", "/api/v1/login", "", `{"mailbox":"1001","pin":"1234"}`)
	var tok struct{ Token string }
	json.Unmarshal(b, &tok)
	if res, _ := f.do(t, "POST", "/api/v1/gdpr/export", tok.Token, gdprRequest); res.StatusCode != 403 {
		t.Errorf("user token: %d", res.StatusCode)
	}
	if res.StatusCode != 200 {
		t.Fatalf("login %d %s", res.StatusCode, b)
	}
	if res, _ := f.do(t, "GET", "/api/v1/gdpr/exports/"+strings.Repeat("0", 8), token, ""); res.StatusCode != 404 {
		t.Errorf("unknown archive: %d", res.StatusCode)
	}
	// Without the service the routes say so.
	plain := newFixture(t)
	if res, _ := plain.do(t, "POST", "/api/v1/gdpr/export", token, gdprRequest); res.StatusCode != 503 {
		t.Errorf("no GDPR service: %d", res.StatusCode)
	}
}

func TestRetentionAPI(t *testing.T) {
	f, _ := newGDPRFixture(t)
	res, b := f.do(t, "GET", "/api/v1/retention", token, "")
	if res.StatusCode != 200 || !bytes.Contains(b, []byte(`"days":null`)) || !bytes.Contains(b, []byte(`"default_days":90`)) {
		t.Fatalf("GET retention: %d %s", res.StatusCode, b)
	}
	acme := tenantToken(t, f, "acme")
	res, b = f.do(t, "PUT", "/api/v1/retention", acme, `{"days": 7}`)
	if res.StatusCode != 200 || !bytes.Contains(b, []byte(`"days":7`)) || !bytes.Contains(b, []byte(`"tenant":"acme"`)) {
		t.Fatalf("PUT retention: %d %s", res.StatusCode, b)
	}
	if d, ok, _ := f.st.TenantRetention(t.Context(), "acme"); d != 7 || !ok {
		t.Errorf("stored %d %v", d, ok)
	}
	res, b = f.do(t, "GET", "/api/v1/retention?tenant=acme", token, "")
	if !bytes.Contains(b, []byte(`"default_days":7`)) {
		t.Errorf("operator view of acme: %s", b)
	}
	if res, _ = f.do(t, "PUT", "/api/v1/retention", acme, `{"days": -1}`); res.StatusCode != 400 {
		t.Errorf("negative days: %d", res.StatusCode)
	}
	if res, b = f.do(t, "PUT", "/api/v1/retention", acme, `{"days": null}`); res.StatusCode != 200 || !bytes.Contains(b, []byte(`"days":null`)) {
		t.Errorf("unset: %d %s", res.StatusCode, b)
	}
	if res, _ = f.do(t, "PUT", "/api/v1/retention?tenant=nope", token, `{"days": 1}`); res.StatusCode != 404 {
		t.Errorf("unknown tenant: %d", res.StatusCode)
	}
	_ = time.Second
}
