package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/vmserver/voicemail/store"
)

// eventJSON is one event of docs/api.md, the same for SSE and webhooks.
type eventJSON struct {
	ID          string    `json:"id"` // UUIDv7, also the SSE id and the webhook X-Voicemail-Delivery
	Type        string    `json:"type"`
	Tenant      string    `json:"tenant"`
	Mailbox     string    `json:"mailbox"`
	MailboxType string    `json:"mailbox_type"`
	Members     []string  `json:"members,omitempty"` // a group mailbox's members
	CreatedAt   time.Time `json:"created_at"`
	Object      any       `json:"object"` // the message or the mailbox
}

// event is a built event: its routing keys and its JSON.
type event struct {
	id, typ, tenant, mailbox string
	members                  []string
	body                     []byte
}

func buildEvent(c store.Change) event {
	// The change's own id is the same on every instance, so a receiver
	// can drop a redelivery; changes published outside the log have none.
	id := c.EventID
	if id == "" {
		id = uuid.Must(uuid.NewV7()).String()
	}
	e := eventJSON{ID: id, Type: string(c.Kind), Tenant: c.Tenant,
		Mailbox: c.Mailbox, MailboxType: c.MailboxType, Members: c.Members, CreatedAt: c.At}
	if e.MailboxType == "" {
		e.MailboxType = store.TypePersonal
	}
	switch {
	case c.Message != nil:
		j := toMessageJSON(c.Message)
		j.MailboxType = e.MailboxType
		e.Object = j
	case c.MailboxObj != nil:
		e.Object = toMailboxJSON(c.MailboxObj)
	}
	body, _ := json.Marshal(e) // plain structs always marshal
	return event{id: e.ID, typ: e.Type, tenant: c.Tenant, mailbox: c.Mailbox, members: c.Members, body: body}
}

// onChange feeds this instance's SSE streams from the change bus; it must
// not block. Webhook jobs come from the durable consumer (consumeWebhooks)
// when the store keeps a change log, so that N instances queue each event
// once; without one they follow the bus.
func (s *Server) onChange(c store.Change) {
	ev := buildEvent(c)
	s.metrics.events.WithLabelValues(ev.typ).Inc()
	s.hub.publish(ev)
	if !s.durableHooks {
		s.events.add(ev)
	}
}

// consumeWebhooks queues a job per matching webhook for every change of the
// log, as the one consumer "webhooks" across all instances (a lease moves
// it to another instance when its holder dies). Delivery is at least once:
// a change whose cursor was not saved before a crash is queued again, with
// the same event id. A first start begins at start (the head of the log
// when the API was built), so that history (a migration's copies) is not
// sent.
func (s *Server) consumeWebhooks(ctx context.Context, log store.ChangeLog, start store.Cursor) {
	store.ConsumeFrom(ctx, log, "webhooks", s.cfg.WebhookConsumerLease, start, func(ctx context.Context, c store.Change) error {
		n, err := s.events.persist([]event{buildEvent(c)})
		if err != nil {
			return err
		}
		if n > 0 {
			s.events.kickDeliverer()
		}
		return nil
	})
}

// ---- Server-Sent Events ----

type sseClient struct {
	tenant string
	allow  map[string]bool // nil = every mailbox of the tenant
	ch     chan event
	gone   chan struct{} // closed when the hub drops a slow client
}

type hub struct {
	mu      sync.Mutex
	clients map[*sseClient]struct{}
}

func newHub() *hub { return &hub{clients: map[*sseClient]struct{}{}} }

func (h *hub) add(c *sseClient) {
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.mu.Unlock()
}

func (h *hub) remove(c *sseClient) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

func (h *hub) publish(ev event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if c.tenant != ev.tenant || (c.allow != nil && !c.allow[ev.mailbox]) {
			continue
		}
		select {
		case c.ch <- ev:
		default:
			// A client that does not read is dropped rather than slowing
			// the store; it reconnects.
			delete(h.clients, c)
			close(c.gone)
		}
	}
}

// sse streams the tenant's events (a user token: its mailbox and groups),
// optionally only those of ?mailbox=.
func (s *Server) sse(w http.ResponseWriter, r *http.Request, p principal) error {
	c := &sseClient{tenant: p.tenant, ch: make(chan event, 256), gone: make(chan struct{})}
	if !p.admin() {
		c.allow = map[string]bool{p.mailbox: true}
		for g := range p.groups {
			c.allow[g] = true
		}
	}
	if mb := r.URL.Query().Get("mailbox"); mb != "" {
		if !isNumber(mb, 1, 32) {
			return invalid("mailbox", "mailbox must be a mailbox number")
		}
		if !p.canSee(mb) {
			return forbidden("this token may not follow mailbox " + mb)
		}
		c.allow = map[string]bool{mb: true}
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s.hub.add(c)
	defer s.hub.remove(c)
	// The comment tells the client the subscription is live.
	if _, err := fmt.Fprint(w, ": connected\nretry: 2000\n\n"); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return nil
	}
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case ev := <-c.ch:
			if _, err := fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", ev.id, ev.typ, ev.body); err != nil {
				return nil
			}
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return nil
			}
		case <-c.gone:
			return nil
		case <-s.done:
			return nil
		case <-r.Context().Done():
			return nil
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}

// ---- the path to the durable webhook queue ----

// eventQueue takes events from the bus (without blocking it) and writes a
// job per matching webhook into the store's queue.
type eventQueue struct {
	s       *Server
	mu      sync.Mutex
	pending []event
	wake    chan struct{}
	closing chan struct{}
	stopped chan struct{}
	kick    chan struct{} // wakes the deliverer
}

func newEventQueue(s *Server) *eventQueue {
	return &eventQueue{s: s, wake: make(chan struct{}, 1), closing: make(chan struct{}),
		stopped: make(chan struct{}), kick: make(chan struct{}, 1)}
}

func (q *eventQueue) add(ev event) {
	q.mu.Lock()
	q.pending = append(q.pending, ev)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) run() {
	defer close(q.stopped)
	for {
		select {
		case <-q.wake:
			q.flush()
		case <-q.closing:
			q.flush()
			return
		}
	}
}

// close persists what is pending and stops.
func (q *eventQueue) close() {
	close(q.closing)
	<-q.stopped
}

func (q *eventQueue) flush() {
	for {
		q.mu.Lock()
		batch := q.pending
		q.pending = nil
		q.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		queued := 0
		for attempt := 0; ; attempt++ {
			n, err := q.persist(batch)
			if err == nil {
				queued = n
				break
			}
			q.s.cfg.Logger.Error("webhook queue: cannot persist events", "events", len(batch), "err", err)
			if attempt == 5 {
				break // the store is gone; nothing more can be done
			}
			time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
		}
		if queued > 0 {
			q.kickDeliverer()
		}
	}
}

// kickDeliverer wakes the deliverer for jobs just queued. Without one it
// would claim from an empty queue at every message (a store write each).
func (q *eventQueue) kickDeliverer() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// persist queues a job per matching webhook and returns how many.
func (q *eventQueue) persist(batch []event) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hooks, err := q.s.cfg.Store.ListWebhooks(ctx, "")
	if err != nil {
		return 0, err
	}
	var jobs []store.WebhookJob
	for _, ev := range batch {
		for _, h := range hooks {
			if h.Tenant == ev.tenant && (len(h.Events) == 0 || slices.Contains(h.Events, ev.typ)) {
				jobs = append(jobs, store.WebhookJob{WebhookID: h.ID, EventID: ev.id, EventType: ev.typ, Body: ev.body})
			}
		}
	}
	return len(jobs), q.s.cfg.Store.EnqueueWebhookJobs(ctx, jobs)
}
