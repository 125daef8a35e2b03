// Package api is the REST API of SPEC §8 over the store: JSON under
// /api/v1, bearer tokens, one error shape, health endpoints.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/vmserver/voicemail/store"
)

// Config holds what the API serves from.
type Config struct {
	Store      store.Store    // wrapped by store.Notifying
	Changes    *store.Changes // committed changes (SSE and webhooks follow them)
	Blobs      store.Blobs
	AdminToken string
	Logger     *slog.Logger
}

// Server is the HTTP API.
type Server struct {
	cfg Config
	mux *http.ServeMux
}

// New builds the API and its routes.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.route("GET /api/v1/mailboxes", s.listMailboxes)
	s.route("POST /api/v1/mailboxes", s.createMailbox)
	s.route("GET /api/v1/mailboxes/{number}", s.getMailbox)
	s.route("GET /api/v1/mailboxes/{number}/messages", s.listMessages)
	s.route("GET /api/v1/mailboxes/{number}/messages/{id}", s.getMessage)
	s.route("GET /api/v1/mailboxes/{number}/messages/{id}/audio", s.getAudio)
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such route"})
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// handler is an API handler: it returns an error instead of writing one.
type handler func(w http.ResponseWriter, r *http.Request, p principal) error

// route registers an authenticated handler and turns its errors into the
// error shape of SPEC §8.
func (s *Server) route(pattern string, h handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err == nil {
			err = h(w, r, p)
		}
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				ae = s.internal(r, err)
			}
			writeError(w, ae)
		}
	})
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
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// principal is who a request acts as. Later token kinds (tenant, user)
// narrow Tenant and Mailboxes.
type principal struct {
	operator bool
	tenant   string
}

func (s *Server) authenticate(r *http.Request) (principal, error) {
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || token == "" {
		return principal{}, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "missing bearer token"}
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) != 1 {
		return principal{}, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "invalid token"}
	}
	// An operator token acts on tenant "default" unless the request names
	// another (SPEC §8).
	tenant := r.URL.Query().Get("tenant")
	if tenant == "" {
		tenant = r.Header.Get("X-Tenant")
	}
	if tenant == "" {
		tenant = store.DefaultTenant
	}
	return principal{operator: true, tenant: tenant}, nil
}

// apiError is the error body of SPEC §8.
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

func notFound(what string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: what + " not found"}
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
		}
		return invalid("", "invalid JSON body: "+err.Error())
	}
	return nil
}

// list is the list envelope of SPEC §8.
type list[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}
