package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/vmserver/voicemail/store"
)

// TestMWITargetStateAndResume: a stopped target shows its state and why;
// resuming it forgets the stop and publishes the mailbox again (the MWI
// notifier starts a target when it reappears in the list).
func TestMWITargetStateAndResume(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	res, b := f.do(t, "POST", "/api/v1/mailboxes", token, `{"number":"1001","mwi_targets":["sip:a@192.0.2.1","sip:b@192.0.2.2"]}`)
	if res.StatusCode != 201 {
		t.Fatalf("create: %d %s", res.StatusCode, b)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := f.st.StopMWITarget(ctx, store.MWITargetStop{Tenant: "default", Mailbox: "1001", Target: "sip:b@192.0.2.2", Reason: "481", At: at}); err != nil {
		t.Fatal(err)
	}
	var page struct{ Items []mwiTargetJSON }
	res, b = f.do(t, "GET", "/api/v1/mailboxes/1001/mwi_targets", token, "")
	if err := json.Unmarshal(b, &page); res.StatusCode != 200 || err != nil || len(page.Items) != 2 {
		t.Fatalf("list: %d %v %s", res.StatusCode, err, b)
	}
	if a, s := page.Items[0], page.Items[1]; a.State != "active" || s.State != "stopped" || s.Reason != "481" || s.StoppedAt == nil || !s.StoppedAt.Equal(at) {
		t.Errorf("states: %+v %+v", a, s)
	}

	var seen []store.Change
	cancel := f.api.cfg.Changes.Subscribe(func(c store.Change) { seen = append(seen, c) })
	defer cancel()
	for _, c := range []struct {
		body   string
		status int
	}{
		{`{}`, 400},
		{`{"target":"sip:nobody@192.0.2.9"}`, 404},
	} {
		if res, b := f.do(t, "POST", "/api/v1/mailboxes/1001/mwi_targets/resume", token, c.body); res.StatusCode != c.status {
			t.Errorf("resume %s: %d %s", c.body, res.StatusCode, b)
		}
	}
	res, b = f.do(t, "POST", "/api/v1/mailboxes/1001/mwi_targets/resume", token, `{"target":"sip:b@192.0.2.2"}`)
	if res.StatusCode != 200 {
		t.Fatalf("resume: %d %s", res.StatusCode, b)
	}
	stops, err := f.st.ListMWITargetStops(ctx)
	if err != nil || len(stops) != 0 {
		t.Errorf("stops after resume: %v %v", stops, err)
	}
	// Out of the list, then back in: what the notifier needs to start it.
	if len(seen) != 2 || len(seen[0].MailboxObj.MWITargets) != 1 || len(seen[1].MailboxObj.MWITargets) != 2 {
		t.Errorf("changes: %+v", seen)
	}
	mb, err := f.st.GetMailbox(ctx, "default", "1001")
	if err != nil || len(mb.MWITargets) != 2 || mb.MWITargets[1] != "sip:b@192.0.2.2" {
		t.Errorf("targets after resume: %v %v", mb, err)
	}
}

// TestUnknownTenantIs404: an operator request naming a tenant that does not
// exist is an error on every route, not an empty answer.
func TestUnknownTenantIs404(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/mailboxes?tenant=garbage", ""},
		{"POST", "/api/v1/mailboxes?tenant=garbage", `{"number":"1001"}`},
		{"GET", "/api/v1/webhooks?tenant=garbage", ""},
		{"GET", "/api/v1/users/1001/messages?tenant=garbage", ""},
	} {
		res, b := f.do(t, c.method, c.path, token, c.body)
		var e errBody
		if err := json.Unmarshal(b, &e); res.StatusCode != 404 || err != nil || e.Error.Message != "tenant garbage not found" {
			t.Errorf("%s %s: %d %s", c.method, c.path, res.StatusCode, b)
		}
	}
	res, b := f.do(t, "GET", "/api/v1/mailboxes", token, "", "X-Tenant", "garbage")
	if res.StatusCode != 404 {
		t.Errorf("X-Tenant garbage: %d %s", res.StatusCode, b)
	}
	if res, b := f.do(t, "GET", "/api/v1/mailboxes?tenant=acme", token, ""); res.StatusCode != 200 {
		t.Errorf("known tenant: %d %s", res.StatusCode, b)
	}
}
