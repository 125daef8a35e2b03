package store

import (
	"errors"
	"testing"
	"time"
)

func TestAPIStoreTokens(t *testing.T) { forEachBackend(t, testAPIStoreTokens) }

func testAPIStoreTokens(t *testing.T, b backend) {
	ctx := t.Context()
	s := b.open(t)
	if err := s.CreateTenant(ctx, &Tenant{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(ctx, &Token{Kind: TokenTenant, Tenant: "nope"}, "h0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("token of a missing tenant: %v", err)
	}
	tt := &Token{Kind: TokenTenant, Tenant: "acme"}
	if err := s.CreateToken(ctx, tt, "h1"); err != nil || tt.ID == "" || tt.CreatedAt.IsZero() {
		t.Fatalf("create: %v %+v", err, tt)
	}
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	ut := &Token{Kind: TokenUser, Tenant: "acme", Mailbox: "1001", ExpiresAt: exp}
	if err := s.CreateToken(ctx, ut, "h2"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(ctx, &Token{Kind: TokenUser, Tenant: "acme"}, "h2"); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate hash: %v", err)
	}
	got, err := s.TokenByHash(ctx, "h2")
	if err != nil || got.ID != ut.ID || got.Mailbox != "1001" || !got.ExpiresAt.Equal(exp) || got.Kind != TokenUser {
		t.Fatalf("by hash: %+v %v", got, err)
	}
	if _, err := s.TokenByHash(ctx, "zz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	if l, _ := s.ListTokens(ctx, "acme", TokenTenant); len(l) != 1 || l[0].ID != tt.ID {
		t.Fatalf("list tenant tokens: %+v", l)
	}
	if l, _ := s.ListTokens(ctx, "acme", ""); len(l) != 2 {
		t.Fatalf("list all tokens: %+v", l)
	}
	if err := s.DeleteToken(ctx, "default", tt.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete from another tenant: %v", err)
	}
	if err := s.DeleteToken(ctx, "acme", tt.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteToken(ctx, "acme", "h1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := s.DeleteTokens(ctx, "acme", "1002"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenByHash(ctx, "h2"); err != nil {
		t.Fatalf("another mailbox's revoke removed 1001's token: %v", err)
	}
	if err := s.DeleteTokens(ctx, "acme", "1001"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenByHash(ctx, "h2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("user token survived: %v", err)
	}
}

func TestAPIStoreWebhookQueue(t *testing.T) { forEachBackend(t, testAPIStoreWebhookQueue) }

func testAPIStoreWebhookQueue(t *testing.T, b backend) {
	ctx := t.Context()
	dsn := b.newDSN(t)
	s := openDSN(t, dsn)
	for _, n := range []string{"acme", "other"} {
		if err := s.CreateTenant(ctx, &Tenant{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	w := &Webhook{Tenant: "acme", URL: "http://x/y", Events: []string{"message_created"}, Secret: "k"}
	if err := s.CreateWebhook(ctx, w); err != nil || w.ID == "" {
		t.Fatal(err)
	}
	w2 := &Webhook{Tenant: "other", URL: "http://z", Secret: "k"}
	if err := s.CreateWebhook(ctx, w2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetWebhook(ctx, "other", w.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cross-tenant get: %v", err)
	}
	if got, err := s.GetWebhook(ctx, "acme", w.ID); err != nil || got.URL != w.URL || len(got.Events) != 1 || got.Secret != "k" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if l, _ := s.ListWebhooks(ctx, ""); len(l) != 2 {
		t.Fatalf("list all: %d", len(l))
	}
	if l, _ := s.ListWebhooks(ctx, "acme"); len(l) != 1 {
		t.Fatalf("list acme: %d", len(l))
	}
	if _, ok, _ := s.NextWebhookJobAt(ctx); ok {
		t.Fatal("empty queue has a next job")
	}
	later := time.Now().Add(time.Hour)
	jobs := []WebhookJob{
		{WebhookID: w.ID, EventID: "e1", EventType: "message_created", Body: []byte(`{"a":1}`)},
		{WebhookID: w.ID, EventID: "e2", EventType: "message_created", Body: []byte(`{"a":2}`), NextAt: later},
	}
	if err := s.EnqueueWebhookJobs(ctx, jobs); err != nil || jobs[0].ID == 0 || jobs[1].ID == 0 {
		t.Fatalf("enqueue: %v %+v", err, jobs)
	}
	due, err := s.DueWebhookJobs(ctx, time.Now(), 10)
	if err != nil || len(due) != 1 || string(due[0].Body) != `{"a":1}` || due[0].EventID != "e1" {
		t.Fatalf("due: %+v %v", due, err)
	}
	// A failed attempt reschedules the job and logs it.
	retryAt := time.Now().Add(time.Minute)
	if err := s.FinishWebhookJob(ctx, due[0].ID, WebhookDelivery{WebhookID: w.ID, EventID: "e1", EventType: "message_created",
		Attempt: 1, Status: 500, Error: "HTTP 500", Final: "retry"}, retryAt); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueWebhookJobs(ctx, time.Now(), 10); len(due) != 0 {
		t.Fatalf("rescheduled job is due: %+v", due)
	}
	if at, ok, _ := s.NextWebhookJobAt(ctx); !ok || at.Sub(retryAt).Abs() > time.Millisecond {
		t.Fatalf("next at %v %v, want %v", at, ok, retryAt)
	}

	// The queue survives a reopen.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDSN(t, dsn)
	due, err = s.DueWebhookJobs(ctx, time.Now().Add(2*time.Minute), 10)
	if err != nil || len(due) != 1 || due[0].Attempts != 1 {
		t.Fatalf("after reopen: %+v %v", due, err)
	}
	if err := s.FinishWebhookJob(ctx, due[0].ID, WebhookDelivery{WebhookID: w.ID, EventID: "e1", EventType: "message_created",
		Attempt: 2, Status: 204, Final: "delivered"}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	log, next, err := s.ListWebhookDeliveries(ctx, w.ID, 0, 1)
	if err != nil || len(log) != 1 || log[0].Final != "delivered" || next == 0 {
		t.Fatalf("log page 1: %+v %d %v", log, next, err)
	}
	log, next, err = s.ListWebhookDeliveries(ctx, w.ID, next, 1)
	if err != nil || len(log) != 1 || log[0].Status != 500 || next != 0 {
		t.Fatalf("log page 2: %+v %d %v", log, next, err)
	}
	if err := s.DeleteWebhook(ctx, "acme", w.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.NextWebhookJobAt(ctx); ok {
		t.Fatal("a deleted webhook's jobs remain")
	}
	if log, _, _ := s.ListWebhookDeliveries(ctx, w.ID, 0, 10); len(log) != 0 {
		t.Fatalf("a deleted webhook's log remains: %+v", log)
	}
	if err := s.DeleteWebhook(ctx, "acme", w.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}
