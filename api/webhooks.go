package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/vmserver/voicemail/store"
)

// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the body keyed by
// the webhook's secret>".
const SignatureHeader = "X-Voicemail-Signature"

var eventTypes = []string{string(store.MessageCreated), string(store.MessageUpdated), string(store.MessageDeleted),
	string(store.MailboxCreated), string(store.MailboxUpdated), string(store.MailboxDeleted)}

type webhookJSON struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Secret    string    `json:"secret,omitempty"` // only in the create answer
	CreatedAt time.Time `json:"created_at"`
}

func toWebhookJSON(h *store.Webhook, withSecret bool) webhookJSON {
	j := webhookJSON{ID: h.ID, URL: h.URL, Events: nonNil(h.Events), CreatedAt: h.CreatedAt}
	if withSecret {
		j.Secret = h.Secret
	}
	return j
}

type webhookInput struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Secret string   `json:"secret"`
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	var in webhookInput
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := limitWebhookURL.checkLen(in.URL); err != nil {
		return err
	}
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("url", "url must be an absolute http or https URL")
	}
	if err := limitWebhookEvents.checkList(in.Events, nil); err != nil {
		return err
	}
	for _, e := range in.Events {
		ok := false
		for _, t := range eventTypes {
			ok = ok || e == t
		}
		if !ok {
			return invalid("events", "unknown event type "+strconv.Quote(e))
		}
	}
	generated := false
	if in.Secret == "" {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		in.Secret, generated = hex.EncodeToString(b), true
	} else if err := limitSecret.checkLen(in.Secret); err != nil {
		return err
	}
	// Last, as it may ask the DNS: the destination must be public or allowed.
	if err := s.cfg.WebhookPolicy.checkURL(r.Context(), u.Hostname()); err != nil {
		return invalid("url", err.Error())
	}
	h := &store.Webhook{Tenant: p.tenant, URL: in.URL, Events: in.Events, Secret: s.box.seal(p.tenant, in.Secret)}
	if err := s.cfg.Store.CreateWebhook(r.Context(), h); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("tenant " + p.tenant)
		}
		return err
	}
	out := toWebhookJSON(h, false)
	if generated {
		out.Secret = in.Secret
	}
	writeCreated(w, "/api/v1/webhooks/"+h.ID, out)
	return nil
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	hooks, err := s.cfg.Store.ListWebhooks(r.Context(), p.tenant)
	if err != nil {
		return err
	}
	out := list[webhookJSON]{Items: make([]webhookJSON, 0, len(hooks))}
	for i := range hooks {
		out.Items = append(out.Items, toWebhookJSON(&hooks[i], false))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) webhook(r *http.Request, p principal) (*store.Webhook, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	h, err := s.cfg.Store.GetWebhook(r.Context(), p.tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("webhook " + id)
	}
	return h, err
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request, p principal) error {
	h, err := s.webhook(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toWebhookJSON(h, false))
	return nil
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, p principal) error {
	h, err := s.webhook(r, p)
	if err != nil {
		return err
	}
	if err := s.cfg.Store.DeleteWebhook(r.Context(), p.tenant, h.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type deliveryJSON struct {
	ID         string    `json:"id"`
	EventID    string    `json:"event_id"`
	EventType  string    `json:"event_type"`
	Attempt    int       `json:"attempt"`
	Status     int       `json:"status"` // HTTP status; 0 = no response
	Error      string    `json:"error,omitempty"`
	Result     string    `json:"result"` // delivered | retry | failed
	DurationMS int64     `json:"duration_ms"`
	At         time.Time `json:"at"`
}

// listDeliveries is the delivery log, newest first.
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request, p principal) error {
	h, err := s.webhook(r, p)
	if err != nil {
		return err
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	var before int64
	if c := r.URL.Query().Get("cursor"); c != "" {
		if before, err = strconv.ParseInt(c, 10, 64); err != nil || before <= 0 {
			return invalid("cursor", "invalid cursor")
		}
	}
	items, next, err := s.cfg.Store.ListWebhookDeliveries(r.Context(), h.ID, before, limit)
	if err != nil {
		return err
	}
	out := list[deliveryJSON]{Items: make([]deliveryJSON, 0, len(items))}
	if next > 0 {
		out.Next = strconv.FormatInt(next, 10)
	}
	for _, d := range items {
		out.Items = append(out.Items, deliveryJSON{ID: strconv.FormatInt(d.ID, 10), EventID: d.EventID, EventType: d.EventType,
			Attempt: d.Attempt, Status: d.Status, Error: d.Error, Result: d.Final, DurationMS: d.DurationMS, At: d.At})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Sign returns the value of the X-Voicemail-Signature header for body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// deliver runs the webhook deliverer: due jobs are POSTed (up to 8 at
// once); failures are retried with exponential back-off; everything is in
// the store, so a restart resumes where it stopped.
// webhookJobLease outlasts the delivery attempts of one batch.
const webhookJobLease = 2 * time.Minute

func (s *Server) deliver(ctx context.Context) {
	const poll = 5 * time.Second
	for {
		// Claimed for a lease: instances sharing the queue never send one
		// job twice at once, and a dead instance's jobs come back.
		jobs, err := s.cfg.Store.ClaimWebhookJobs(ctx, time.Now(), webhookJobLease, 64)
		if err != nil && ctx.Err() == nil {
			s.cfg.Logger.Error("webhook queue", "err", err)
		}
		if len(jobs) > 0 {
			hooks := map[string]*store.Webhook{}
			if all, err := s.cfg.Store.ListWebhooks(ctx, ""); err == nil {
				for i := range all {
					hooks[all[i].ID] = &all[i]
				}
			}
			var wg sync.WaitGroup
			sem := make(chan struct{}, 8)
			for _, j := range jobs {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; wg.Done() }()
					s.deliverOne(ctx, hooks[j.WebhookID], j)
				}()
			}
			wg.Wait()
			if ctx.Err() != nil {
				return
			}
			if len(jobs) == 64 {
				continue
			}
		}
		wait := poll
		if at, ok, err := s.cfg.Store.NextWebhookJobAt(ctx); err == nil && ok {
			wait = min(max(time.Until(at), 10*time.Millisecond), poll)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.events.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

func (s *Server) deliverOne(ctx context.Context, h *store.Webhook, j store.WebhookJob) {
	d := store.WebhookDelivery{WebhookID: j.WebhookID, EventID: j.EventID, EventType: j.EventType, Attempt: j.Attempts + 1}
	if h == nil {
		// The webhook was deleted: drop the job (the log goes with the webhook).
		_ = s.cfg.Store.FinishWebhookJob(ctx, j.ID, d, time.Time{})
		return
	}
	start := time.Now()
	status, err := s.post(ctx, h, j)
	if ctx.Err() != nil {
		return // shutting down: the job stays queued as it was
	}
	d.Status, d.DurationMS = status, time.Since(start).Milliseconds()
	var next time.Time
	switch {
	case err == nil:
		d.Final = "delivered"
	case d.Attempt >= s.cfg.WebhookMaxAttempts:
		d.Final, d.Error = "failed", err.Error()
	default:
		backoff := s.cfg.WebhookBackoff << min(j.Attempts, 20)
		d.Final, d.Error, next = "retry", err.Error(), time.Now().Add(min(backoff, time.Hour))
	}
	s.metrics.deliveries.WithLabelValues(d.Final).Inc()
	if d.Final != "delivered" {
		s.cfg.Logger.Warn("webhook delivery failed", "webhook", h.ID, "event", j.EventID, "attempt", d.Attempt, "result", d.Final, "err", err)
	}
	if err := s.cfg.Store.FinishWebhookJob(context.WithoutCancel(ctx), j.ID, d, next); err != nil {
		s.cfg.Logger.Error("webhook queue", "err", err)
	}
}

func (s *Server) post(ctx context.Context, h *store.Webhook, j store.WebhookJob) (int, error) {
	secret, err := s.box.open(h.Tenant, h.Secret)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(j.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "voicemail-webhook/1")
	req.Header.Set("X-Voicemail-Event", j.EventType)
	req.Header.Set("X-Voicemail-Delivery", j.EventID)
	req.Header.Set(SignatureHeader, Sign(secret, j.Body))
	res, err := s.cfg.WebhookClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode/100 != 2 {
		return res.StatusCode, fmt.Errorf("HTTP %d", res.StatusCode)
	}
	return res.StatusCode, nil
}
