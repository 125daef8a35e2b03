// Package api is the REST API of docs/api.md over the store: JSON under
// /api/v1, bearer tokens (operator, tenant, user), one error shape,
// Server-Sent Events and webhooks that follow the store's change bus,
// Prometheus metrics and the health endpoints of docs/operations.md.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmserver/voicemail/gdpr"
	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/store"
)

// Config holds what the API serves from.
type Config struct {
	// SIPAuthRealm is sip.auth_realm: the realm a mailbox's sip_secret is
	// hashed for ("" = the tenant's first domain, as the SIP server does).
	SIPAuthRealm string
	Store        store.Store    // wrapped by store.Notifying
	Changes      *store.Changes // committed changes (SSE and webhooks follow them); nil = no events
	// BusWebhooks queues webhook jobs from Changes even when the store keeps
	// a change log (tests that publish changes by hand).
	BusWebhooks bool
	Blobs       store.Blobs
	AdminToken  string
	Logger      *slog.Logger

	// GreetingFormat is the WAV encoding uploaded greetings are stored in
	// (always 8000 Hz mono); the zero value is 16-bit PCM.
	GreetingFormat media.Format
	// MaxGreetingBytes bounds a greeting upload (413 beyond); 0 = 32 MiB.
	MaxGreetingBytes int64
	// MaxGreetingSeconds bounds the audio of a greeting (greeting.max_seconds,
	// 413 too_long beyond); 0 = 120.
	MaxGreetingSeconds int
	// UserTokenTTL is the lifetime of a login token; 0 = 12 h.
	UserTokenTTL time.Duration
	// Logins counts PIN failures per mailbox; nil = the store's AccessStore,
	// the same count and lock as the access IVR (docs/ivr.md: 5 failures in 15
	// minutes lock the mailbox for LoginLockout).
	Logins       LoginGuard
	LoginLockout time.Duration // login.lockout; 0 = 15m

	// Collectors are registered on the API's own /metrics registry (the SIP
	// layer's counters and gauges). ActiveCalls, when set, is exported as
	// voicemail_active_calls.
	Collectors  []prometheus.Collector
	ActiveCalls func() int

	// Webhook delivery: the client (nil = 10 s timeout), the first retry
	// delay (doubling up to an hour; 0 = 1 s) and the attempts before a
	// job is given up (0 = 15).
	// WebhookConsumerLease is how long the instance that queues webhook
	// jobs from the change log holds that role without renewing it: after
	// its death another takes over within it (0 = store.DefaultLease).
	WebhookConsumerLease time.Duration
	WebhookClient        *http.Client
	WebhookBackoff       time.Duration
	WebhookMaxAttempts   int
	// WebhookPolicy refuses webhook URLs on loopback, private, link-local
	// and multicast addresses unless webhooks.allow_hosts permits them, at
	// creation and (with the default client) on every delivery; nil = no
	// allow-list. WebhookKey encrypts webhook secrets at rest (the
	// data_dir/webhook_key file); nil = a key for this process only.
	WebhookPolicy *WebhookPolicy
	WebhookKey    []byte

	// Space refuses writes (507) and fails /readyz while the disk is below
	// media.min_free; nil = no check.
	Space SpaceMonitor

	// GDPR runs the requests of docs/gdpr.md and knows the retention default
	// (docs/gdpr.md); nil = the /api/v1/gdpr and /api/v1/retention routes answer 503.
	GDPR GDPR

	// Web serves every request outside /api/ (the web inbox and admin console,
	// package web); nil = those paths answer 404.
	Web http.Handler
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxGreetingBytes <= 0 {
		c.MaxGreetingBytes = 32 << 20
	}
	if c.MaxGreetingSeconds <= 0 {
		c.MaxGreetingSeconds = 120
	}
	if c.UserTokenTTL <= 0 {
		c.UserTokenTTL = 12 * time.Hour
	}
	if c.LoginLockout <= 0 {
		c.LoginLockout = 15 * time.Minute
	}
	if c.WebhookClient == nil {
		c.WebhookClient = c.WebhookPolicy.Client(10 * time.Second)
	}
	if c.WebhookBackoff <= 0 {
		c.WebhookBackoff = time.Second
	}
	if c.WebhookMaxAttempts <= 0 {
		c.WebhookMaxAttempts = 15
	}
	if c.Logins == nil {
		c.Logins = storeGuard{st: c.Store, lockout: c.LoginLockout}
	}
}

// Server is the HTTP API.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	routes  []string // "METHOD /path" of every registered route (the OpenAPI test reads it)
	metrics *metrics
	hub     *hub
	events  *eventQueue
	// durableHooks: webhook jobs come from the store's change log (one
	// consumer across instances), not from this instance's bus.
	durableHooks bool

	signer    urlSigner      // signed media links (websign.go)
	waveforms *waveformCache // rendered waveform pictures (waveform.go)

	done      chan struct{} // closed by Close: SSE streams end
	closeOnce sync.Once
	unsub     func()
	bg        sync.WaitGroup
	bgCancel  context.CancelFunc
	box       *secretBox // webhook secrets at rest
}

// New builds the API and its routes and, when cfg.Changes is set, starts
// following the change bus (SSE, the webhook queue and its deliverer).
// Close stops them.
func New(cfg Config) *Server {
	cfg.defaults()
	s := &Server{cfg: cfg, mux: http.NewServeMux(), done: make(chan struct{}),
		signer: newURLSigner(cfg.AdminToken), waveforms: newWaveformCache()}
	s.metrics = newMetrics(&s.cfg)
	s.hub = newHub()
	box, err := newSecretBox(cfg.WebhookKey)
	if err != nil {
		panic(err) // only when the system has no randomness
	}
	s.box = box
	s.metrics.attach(s.hub)

	s.plain("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.plain("GET /readyz", s.readyz)
	s.plain("GET /metrics", s.metrics.handler().ServeHTTP)
	s.plain("GET /api/v1/openapi.json", serveOpenAPI)
	s.public("POST /api/v1/login", s.login)

	s.route("GET /api/v1/tenants", s.listTenants)
	s.route("POST /api/v1/tenants", s.createTenant)
	s.route("GET /api/v1/tenants/{tenant}", s.getTenant)
	s.route("DELETE /api/v1/tenants/{tenant}", s.deleteTenant)
	s.route("GET /api/v1/tenants/{tenant}/tokens", s.listTokens)
	s.route("POST /api/v1/tenants/{tenant}/tokens", s.createToken)
	s.route("DELETE /api/v1/tenants/{tenant}/tokens/{token}", s.deleteToken)
	s.route("DELETE /api/v1/login", s.logout)
	s.clientRoutes() // API clients and /api/v1/oauth/token (api/clients.go)

	s.route("GET /api/v1/mailboxes", s.listMailboxes)
	s.route("POST /api/v1/mailboxes", s.createMailbox)
	s.route("GET /api/v1/mailboxes/{number}", s.getMailbox)
	s.route("PATCH /api/v1/mailboxes/{number}", s.patchMailbox)
	s.route("DELETE /api/v1/mailboxes/{number}", s.deleteMailbox)
	s.route("GET /api/v1/mailboxes/{number}/mwi_targets", s.mwiTargets)
	s.route("POST /api/v1/mailboxes/{number}/mwi_targets/resume", s.resumeMWITarget)

	s.route("GET /api/v1/mailboxes/{number}/greetings/{kind}", s.getGreeting)
	s.route("PUT /api/v1/mailboxes/{number}/greetings/{kind}", s.putGreeting)
	s.route("DELETE /api/v1/mailboxes/{number}/greetings/{kind}", s.deleteGreeting)

	s.route("GET /api/v1/mailboxes/{number}/messages", s.listMessages)
	s.route("GET /api/v1/mailboxes/{number}/messages/{id}", s.getMessage)
	s.route("PATCH /api/v1/mailboxes/{number}/messages/{id}", s.patchMessage)
	s.route("DELETE /api/v1/mailboxes/{number}/messages/{id}", s.deleteMessage)
	s.media("GET /api/v1/mailboxes/{number}/messages/{id}/audio", s.getAudio)
	s.media("GET /api/v1/mailboxes/{number}/messages/{id}/waveform.svg", s.getWaveform)
	s.route("GET /api/v1/mailboxes/{number}/messages/{id}/links", s.messageLinks)
	s.route("GET /api/v1/whoami", s.whoami)
	s.route("POST /api/v1/mailboxes/{number}/messages/{id}/forward", s.forwardMessage)
	s.route("GET /api/v1/users/{number}/messages", s.userMessages)

	s.route("GET /api/v1/events", s.sse)
	s.route("GET /api/v1/webhooks", s.listWebhooks)
	s.route("POST /api/v1/webhooks", s.createWebhook)
	s.route("GET /api/v1/webhooks/{id}", s.getWebhook)
	s.route("DELETE /api/v1/webhooks/{id}", s.deleteWebhook)
	s.route("GET /api/v1/webhooks/{id}/deliveries", s.listDeliveries)

	s.route("POST /api/v1/gdpr/export", s.gdprRun(gdpr.OpExport))
	s.route("POST /api/v1/gdpr/forget", s.gdprRun(gdpr.OpForget))
	s.route("POST /api/v1/gdpr/undo", s.gdprRun(gdpr.OpUndo))
	s.route("GET /api/v1/gdpr/exports/{id}", s.gdprArchive)
	s.route("GET /api/v1/gdpr/audit", s.gdprAudit)
	s.route("GET /api/v1/retention", s.getRetention)
	s.route("PUT /api/v1/retention", s.putRetention)

	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if cfg.Web != nil && !strings.HasPrefix(r.URL.Path, "/api/") {
			cfg.Web.ServeHTTP(w, r)
			return
		}
		writeError(w, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such route"})
	})

	if cfg.Changes != nil {
		ctx, cancel := context.WithCancel(context.Background())
		s.bgCancel = cancel
		s.events = newEventQueue(s)
		log, durable := cfg.Store.(store.ChangeLog)
		s.durableHooks = durable && !cfg.BusWebhooks
		s.unsub = cfg.Changes.Subscribe(s.onChange)
		s.bg.Add(2)
		go func() { defer s.bg.Done(); s.events.run() }()
		go func() { defer s.bg.Done(); s.deliver(ctx) }()
		if s.durableHooks {
			// A first start begins here, not at the start of the log.
			start, err := log.ChangeHead(ctx)
			if err != nil {
				cfg.Logger.Error("webhooks: change log head", "err", err)
			}
			s.bg.Add(1)
			go func() { defer s.bg.Done(); s.consumeWebhooks(ctx, log, start) }()
		}
	}
	return s
}

// Close ends the SSE streams, writes the events still in memory to the
// durable webhook queue and stops the deliverer (jobs in flight stay
// queued and are retried after the next start). Call it after the SIP side
// has drained, so that the last calls' events are kept.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if s.unsub != nil {
			s.unsub()
		}
		close(s.done)
		if s.events != nil {
			s.events.close()
		}
		if s.bgCancel != nil {
			s.bgCancel()
		}
		s.bg.Wait()
	})
}

// Routes lists the registered routes as "METHOD /path".
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.metrics.serve(s.mux, w, r)
}

// handler is an API handler: it returns an error instead of writing one.
type handler func(w http.ResponseWriter, r *http.Request, p principal) error

// plain registers an unauthenticated route that writes its own answer.
func (s *Server) plain(pattern string, h http.HandlerFunc) {
	s.routes = append(s.routes, pattern)
	s.mux.HandleFunc(pattern, h)
}

// public registers an unauthenticated handler with the error shape of docs/api.md.
func (s *Server) public(pattern string, h handler) {
	s.routes = append(s.routes, pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.finish(w, r, h(w, r, principal{}))
	})
}

// route registers an authenticated handler and turns its errors into the
// error shape of docs/api.md.
func (s *Server) route(pattern string, h handler) {
	s.routes = append(s.routes, pattern)
	if spaceRoutes[pattern] {
		h = s.needSpace(h)
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err == nil {
			err = s.checkTenantParam(r, p)
		}
		if err == nil {
			err = h(w, r, p)
		}
		s.finish(w, r, err)
	})
}

func (s *Server) finish(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		return
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		if ae = s.noSpace(err); ae == nil {
			ae = s.internal(r, err)
		}
	}
	writeError(w, ae)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "store unavailable"})
		return
	}
	if err := s.cfg.Blobs.Ping(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "media unavailable"})
		return
	}
	if s.cfg.Space != nil {
		if low, reason := s.cfg.Space.Low(); low {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "disk space low", "reason": reason})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// apiError is the error body of docs/api.md.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *apiError) Error() string { return e.Message }

func invalid(field, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_field", Message: msg, Field: field}
}

func unprocessable(field, msg string) *apiError {
	return &apiError{Status: http.StatusUnprocessableEntity, Code: "unprocessable", Message: msg, Field: field}
}

func notFound(what string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: what + " not found"}
}

func forbidden(msg string) *apiError {
	return &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: msg}
}

func conflict(field, msg string) *apiError {
	return &apiError{Status: http.StatusConflict, Code: "conflict", Message: msg, Field: field}
}

func (s *Server) internal(r *http.Request, err error) *apiError {
	s.cfg.Logger.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Status, map[string]*apiError{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeCreated(w http.ResponseWriter, location string, v any) {
	w.Header().Set("Location", location)
	writeJSON(w, http.StatusCreated, v)
}

// decode reads a JSON body strictly: unknown fields and wrong types are
// 400 errors that name the field.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "want application/json"}
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &te):
			return invalid(te.Field, "wrong type for "+te.Field)
		case errors.As(err, &mbe):
			return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: "body too large"}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return invalid(f, "unknown field "+f)
		case errors.Is(err, io.EOF):
			return invalid("", "empty body: want a JSON object")
		}
		return invalid("", "invalid JSON body: "+err.Error())
	}
	if dec.More() {
		return invalid("", "invalid JSON body: more than one value")
	}
	return nil
}

// list is the list envelope of docs/api.md.
type list[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}
