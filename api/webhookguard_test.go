package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmserver/voicemail/store"
)

func TestBlockedKind(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1": "loopback", "::1": "loopback", "::ffff:127.0.0.1": "loopback",
		"10.1.2.3": "private", "172.16.0.1": "private", "192.168.1.1": "private", "fd00::1": "private",
		"169.254.169.254": "link-local", "fe80::1": "link-local",
		"224.0.0.1": "multicast", "ff02::1": "multicast",
		"0.0.0.0": "unspecified", "::": "unspecified",
		"100.64.0.1": "reserved", "255.255.255.255": "reserved", "0.1.2.3": "reserved",
		"93.184.215.14": "", "2606:4700::1111": "",
	} {
		if got := blockedKind(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
	if _, err := ParseWebhookAllow([]string{"10.0.0.0/8", "::1", "hooks.internal", "bad host/"}); err == nil {
		t.Error("a bad allow-list entry was accepted")
	}
}

// ssrfFixture is the API with no allow-list (the default) over a store the
// test can write to directly.
func ssrfFixture(t *testing.T, allow ...string) (*Server, store.Store, *httptest.Server) {
	t.Helper()
	st, blobs := openStore(t, t.TempDir(), "default")
	pol, err := ParseWebhookAllow(allow)
	if err != nil {
		t.Fatal(err)
	}
	changes := store.NewChanges()
	h := New(Config{Store: store.Notifying(st, changes), Changes: changes, Blobs: blobs, AdminToken: token,
		WebhookPolicy: pol, WebhookKey: []byte("0123456789abcdef0123456789abcdef"), WebhookBackoff: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })
	return h, st, srv
}

func postJSON(t *testing.T, url, body string) (int, errBody, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var e errBody
	_ = json.Unmarshal(b, &e)
	return res.StatusCode, e, b
}

func TestWebhookSSRFAtCreation(t *testing.T) {
	_, _, srv := ssrfFixture(t)
	for _, u := range []string{"http://127.0.0.1:9/h", "http://[::1]:9/h", "http://10.0.0.1/h", "http://169.254.169.254/latest/meta-data",
		"http://224.0.0.1/h", "http://0.0.0.0:80/", "http://[::ffff:127.0.0.1]/", "http://localhost:9/h", "http://no-such-host.invalid/h"} {
		code, e, b := postJSON(t, srv.URL+"/api/v1/webhooks", `{"url":"`+u+`"}`)
		if code != 400 || e.Error.Field != "url" {
			t.Errorf("%s: %d %s", u, code, b)
		}
	}
	// A public address needs no resolution and passes.
	if code, _, b := postJSON(t, srv.URL+"/api/v1/webhooks", `{"url":"https://93.184.215.14/h"}`); code != 201 {
		t.Errorf("public address: %d %s", code, b)
	}
	// The operator allow-list opens networks and names.
	_, _, srv2 := ssrfFixture(t, "10.0.0.0/8", "localhost")
	for _, u := range []string{"http://10.9.8.7/h", "http://localhost:9/h"} {
		if code, _, b := postJSON(t, srv2.URL+"/api/v1/webhooks", `{"url":"`+u+`"}`); code != 201 {
			t.Errorf("allowed %s: %d %s", u, code, b)
		}
	}
	if code, _, b := postJSON(t, srv2.URL+"/api/v1/webhooks", `{"url":"http://192.168.0.1/h"}`); code != 400 {
		t.Errorf("outside the allow-list: %d %s", code, b)
	}
}

// TestWebhookSSRFAtDelivery: a webhook whose destination became a loopback
// address after creation (DNS rebinding; here written into the store
// directly) is refused when the connection is made: the receiver never
// sees a request and the delivery log names the reason. The secret is
// stored encrypted.
func TestWebhookSSRFAtDelivery(t *testing.T) {
	var hits atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer rcv.Close()
	_, st, srv := ssrfFixture(t)
	ctx := context.Background()
	// Created while the name pointed elsewhere: the row holds the URL.
	hook := &store.Webhook{Tenant: "default", URL: rcv.URL, Events: []string{"mailbox_created"}, Secret: "plain-legacy-secret"}
	if err := st.CreateWebhook(ctx, hook); err != nil {
		t.Fatal(err)
	}
	if code, _, b := postJSON(t, srv.URL+"/api/v1/mailboxes", `{"number":"1001"}`); code != 201 {
		t.Fatalf("mailbox: %d %s", code, b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, _, err := st.ListWebhookDeliveries(ctx, hook.ID, 0, 10)
		if err == nil && len(ds) > 0 {
			if ds[0].Final != "retry" || !strings.Contains(ds[0].Error, "loopback address") {
				t.Errorf("delivery %+v", ds[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery attempt logged")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if hits.Load() != 0 {
		t.Errorf("the loopback receiver got %d requests", hits.Load())
	}

	// Secrets at rest.
	code, _, b := postJSON(t, srv.URL+"/api/v1/webhooks", `{"url":"https://93.184.215.14/h","secret":"0123456789abcdef-secret"}`)
	if code != 201 || strings.Contains(string(b), "0123456789abcdef-secret") {
		t.Fatalf("create: %d %s", code, b)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(b, &created)
	row, err := st.GetWebhook(ctx, "default", created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(row.Secret, sealPrefix) || strings.Contains(row.Secret, "0123456789abcdef") {
		t.Errorf("stored secret %q is not encrypted", row.Secret)
	}
	box, _ := newSecretBox([]byte("0123456789abcdef0123456789abcdef"))
	if got, err := box.open("default", row.Secret); err != nil || got != "0123456789abcdef-secret" {
		t.Errorf("open: %q %v", got, err)
	}
	if _, err := box.open("other", row.Secret); err == nil {
		t.Error("a sealed secret opened under another tenant")
	}
	other, _ := newSecretBox([]byte("another key, another key, 32 by"))
	if _, err := other.open("default", row.Secret); err == nil {
		t.Error("a sealed secret opened with another key")
	}
	// A generated secret is shown once, in clear, and stored sealed.
	code, _, b = postJSON(t, srv.URL+"/api/v1/webhooks", `{"url":"https://93.184.215.14/g"}`)
	var gen struct{ ID, Secret string }
	_ = json.Unmarshal(b, &gen)
	row, _ = st.GetWebhook(ctx, "default", gen.ID)
	if code != 201 || len(gen.Secret) < 16 || row == nil || strings.Contains(row.Secret, gen.Secret) {
		t.Errorf("generated secret: %d %s", code, b)
	}
}

// TestWebhookClientRebinding: the delivery client checks the address it
// connects to, whatever name was used; an allowed name skips the check.
func TestWebhookClientRebinding(t *testing.T) {
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer rcv.Close()
	port := rcv.URL[strings.LastIndexByte(rcv.URL, ':'):]
	deny, _ := ParseWebhookAllow(nil)
	if _, err := deny.Client(2 * time.Second).Get("http://localhost" + port + "/"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("loopback through a name: %v", err)
	}
	allow, _ := ParseWebhookAllow([]string{"localhost"})
	res, err := allow.Client(2 * time.Second).Get("http://localhost" + port + "/")
	if err != nil {
		t.Fatalf("allowed name: %v", err)
	}
	res.Body.Close()
	// No redirects: a public hook cannot bounce the delivery inward.
	redir := httptest.NewServer(http.RedirectHandler("http://127.0.0.1:9/", http.StatusFound))
	defer redir.Close()
	pol, _ := ParseWebhookAllow([]string{"127.0.0.1"})
	res, err = pol.Client(2 * time.Second).Get(redir.URL)
	if err != nil || res.StatusCode != http.StatusFound {
		t.Errorf("redirect followed: %v", err)
	}
	if res != nil {
		res.Body.Close()
	}
}
