package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmserver/voicemail/store"
)

// TestWebhookRetryAndSSE: a receiver that fails twice gets the event on the
// third attempt with a valid signature; the log shows all three; an SSE
// client sees the same event.
func TestWebhookRetryAndSSE(t *testing.T) {
	f := newFixture(t)
	var (
		mu    sync.Mutex
		calls int
		got   = make(chan []byte, 10)
	)
	const secret = "a-long-enough-secret"
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n <= 2 {
			w.WriteHeader(503)
			return
		}
		if r.Header.Get(SignatureHeader) != Sign(secret, body) {
			t.Errorf("bad signature %q", r.Header.Get(SignatureHeader))
		}
		got <- body
	}))
	defer rcv.Close()
	res, b := f.do(t, "POST", "/api/v1/webhooks", token, `{"url":"`+rcv.URL+`","events":["mailbox_created"],"secret":"`+secret+`"}`)
	if res.StatusCode != 201 {
		t.Fatalf("webhook: %d %s", res.StatusCode, b)
	}
	var hook struct{ ID string }
	_ = json.Unmarshal(b, &hook)

	req, _ := http.NewRequest("GET", f.srv.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	sres, err := http.DefaultClient.Do(req)
	if err != nil || sres.StatusCode != 200 {
		t.Fatalf("events: %v", err)
	}
	defer sres.Body.Close()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(sres.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if l := <-lines; l != ": connected" {
		t.Fatalf("first SSE line %q", l)
	}

	if res, b := f.do(t, "POST", "/api/v1/mailboxes", token, `{"number":"1001","name":"Alice"}`); res.StatusCode != 201 {
		t.Fatalf("create: %d %s", res.StatusCode, b)
	}
	var sseData string
	for l := range lines {
		if strings.HasPrefix(l, "data: ") {
			sseData = strings.TrimPrefix(l, "data: ")
			break
		}
	}
	select {
	case body := <-got:
		if string(body) != sseData {
			t.Errorf("webhook body %s, SSE data %s", body, sseData)
		}
		var e eventJSON
		if err := json.Unmarshal(body, &e); err != nil || e.Type != "mailbox_created" || e.Mailbox != "1001" || e.MailboxType != "personal" {
			t.Errorf("event %s", body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook delivery")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ds, _, err := f.st.ListWebhookDeliveries(context.Background(), hook.ID, 0, 10)
		if err == nil && len(ds) == 3 {
			if ds[0].Final != "delivered" || ds[1].Final != "retry" || ds[1].Status != 503 || ds[2].Attempt != 1 {
				t.Errorf("log %+v", ds)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %+v %v", ds, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCloseKeepsPendingEvents: events still in memory at Close are in the
// durable queue afterwards.
func TestCloseKeepsPendingEvents(t *testing.T) {
	ctx := context.Background()
	st, blobs := openStore(t, t.TempDir(), "default")
	if err := st.CreateWebhook(ctx, &store.Webhook{Tenant: "default", URL: "http://127.0.0.1:1/x", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	changes := store.NewChanges()
	s := New(Config{Store: store.Notifying(st, changes), Changes: changes, Blobs: blobs, AdminToken: token,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), WebhookBackoff: time.Hour, BusWebhooks: true})
	for i := 0; i < 20; i++ {
		changes.Publish(store.Change{Kind: store.MailboxUpdated, Tenant: "default", Mailbox: "1001"})
	}
	_ = changes.Flush(ctx) // delivery is asynchronous; serve flushes before Close
	s.Close()
	jobs, err := st.DueWebhookJobs(ctx, time.Now().Add(2*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 20 {
		t.Errorf("%d jobs queued, want 20", len(jobs))
	}
}

// claimCounter counts the deliverer's claims of the job queue (a store
// write each) and how many returned jobs.
type claimCounter struct {
	store.Store
	mu             sync.Mutex
	claims, filled int
}

func (c *claimCounter) ClaimWebhookJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.WebhookJob, error) {
	jobs, err := c.Store.ClaimWebhookJobs(ctx, now, lease, limit)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.claims++
	if len(jobs) > 0 {
		c.filled++
	}
	return jobs, err
}

func (c *claimCounter) counts() (claims, filled int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.claims, c.filled
}

// TestDelivererWokenForJobsOnly: events that match no webhook queue no
// job and do not wake the deliverer (it would claim from an empty queue
// at every message); an event that queues a job does.
func TestDelivererWokenForJobsOnly(t *testing.T) {
	ctx := context.Background()
	st, blobs := openStore(t, t.TempDir(), "default")
	changes := store.NewChanges()
	counted := &claimCounter{Store: store.Notifying(st, changes)}
	s := New(Config{Store: counted, Changes: changes, Blobs: blobs, AdminToken: token,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), WebhookBackoff: time.Hour, BusWebhooks: true})
	defer s.Close()
	for range 20 {
		changes.Publish(store.Change{Kind: store.MailboxUpdated, Tenant: "default", Mailbox: "1001"})
		_ = changes.Flush(ctx)
	}
	if err := st.CreateWebhook(ctx, &store.Webhook{Tenant: "default", URL: "http://127.0.0.1:1/x", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	changes.Publish(store.Change{Kind: store.MailboxUpdated, Tenant: "default", Mailbox: "1001"})
	_ = changes.Flush(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for _, filled := counted.counts(); filled == 0; _, filled = counted.counts() {
		if time.Now().After(deadline) {
			t.Fatal("the job of the webhook's event was never claimed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// One claim at start-up, one for the job.
	if claims, _ := counted.counts(); claims != 2 {
		t.Errorf("%d claims of the job queue for 21 events, one of them with a webhook; want 2", claims)
	}
}
