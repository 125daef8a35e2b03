package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/vmserver/voicemail/sipauth"
	"github.com/vmserver/voicemail/store"
)

func TestMailboxSIPSecret(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const secret = "correct horse battery"
	res, b := f.do(t, "POST", "/api/v1/mailboxes", token, `{"number":"1001","sip_secret":"`+secret+`"}`)
	if res.StatusCode != 201 {
		t.Fatalf("create: %d %s", res.StatusCode, b)
	}
	if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(`"sip_secret"`)) || !bytes.Contains(b, []byte(`"sip_secret_set":true`)) {
		t.Fatalf("create answered %s", b)
	}
	c, err := f.st.GetSIPCredentials(ctx, "default", "1001")
	if err != nil {
		t.Fatal(err)
	}
	// The default tenant has no domain: the realm is its name.
	wantMD5, _ := sipauth.HA1(sipauth.MD5, "1001", "default", secret)
	wantSHA, _ := sipauth.HA1(sipauth.SHA256, "1001", "default", secret)
	if c.Realm != "default" || c.HA1MD5 != wantMD5 || c.HA1SHA256 != wantSHA {
		t.Fatalf("stored %+v", c)
	}

	for _, tc := range []struct{ name, body string }{
		{"too short", `{"sip_secret":"short"}`},
		{"control character", `{"sip_secret":"abcdefgh\u0001"}`},
		{"not a string", `{"sip_secret":12345678}`},
	} {
		res, b := f.do(t, "PATCH", "/api/v1/mailboxes/1001", token, tc.body)
		var e errBody
		if err := json.Unmarshal(b, &e); err != nil || res.StatusCode != 400 || e.Error.Field != "sip_secret" {
			t.Errorf("%s: %d %s", tc.name, res.StatusCode, b)
		}
	}
	if c2, _ := f.st.GetSIPCredentials(ctx, "default", "1001"); c2 == nil || c2.HA1MD5 != wantMD5 {
		t.Fatalf("a refused patch changed the credentials: %+v", c2)
	}
	// A refused create leaves no mailbox and no credentials.
	res, _ = f.do(t, "POST", "/api/v1/mailboxes", token, `{"number":"1003","sip_secret":"x"}`)
	if res.StatusCode != 400 {
		t.Fatalf("bad secret on create: %d", res.StatusCode)
	}
	if _, err := f.st.GetMailbox(ctx, "default", "1003"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("mailbox 1003 half-made: %v", err)
	}

	res, b = f.do(t, "GET", "/api/v1/mailboxes", token, "")
	if res.StatusCode != 200 || !bytes.Contains(b, []byte(`"sip_secret_set":true`)) || bytes.Contains(b, []byte(wantMD5)) {
		t.Fatalf("list: %d %s", res.StatusCode, b)
	}
	res, b = f.do(t, "PATCH", "/api/v1/mailboxes/1001", token, `{"sip_secret":""}`)
	if res.StatusCode != 200 || !bytes.Contains(b, []byte(`"sip_secret_set":false`)) {
		t.Fatalf("remove: %d %s", res.StatusCode, b)
	}
	if _, err := f.st.GetSIPCredentials(ctx, "default", "1001"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("credentials after removal: %v", err)
	}
}
