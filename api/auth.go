package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/vmserver/voicemail/store"
)

// Principal kinds.
const (
	kindOperator = "operator"
	kindTenant   = "tenant"
	kindUser     = "user"
)

// principal is who a request acts as.
type principal struct {
	kind    string // kindOperator | kindTenant | kindUser
	tenant  string
	mailbox string          // user tokens: the mailbox that logged in
	groups  map[string]bool // user tokens: the group mailboxes it belongs to
	tokenID string          // for API clients: the client id
	scopes  map[string]bool // API clients: their scopes (api/clients.go)
}

func (p principal) operator() bool { return p.kind == kindOperator }

// admin: an operator or a tenant token (full rights within the tenant),
// or an API client, whose scopes checkClientScope already enforced.
func (p principal) admin() bool {
	return p.kind == kindOperator || p.kind == kindTenant || p.kind == kindClient
}

// canSee reports whether p may act on mailbox number of its tenant: a user
// token sees its mailbox and its groups only.
func (p principal) canSee(number string) bool {
	return p.admin() || number == p.mailbox || p.groups[number]
}

func requireOperator(p principal) error {
	if !p.operator() {
		return forbidden("this route needs the operator token")
	}
	return nil
}

func requireAdmin(p principal) error {
	if !p.admin() {
		return forbidden("this route needs an operator or tenant token")
	}
	return nil
}

func unauthorized(msg string) *apiError {
	return &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: msg}
}

func (s *Server) authenticate(r *http.Request) (principal, error) {
	p, err := s.authenticateToken(r)
	if err == nil {
		err = checkClientScope(r, p)
	}
	return p, err
}

func (s *Server) authenticateToken(r *http.Request) (principal, error) {
	auth := r.Header.Get("Authorization")
	if id, secret, ok := r.BasicAuth(); ok {
		// An API client's id and secret, for scripts that cannot do the
		// token step (api/clients.go).
		return s.clientBasic(r, id, secret)
	}
	token, ok := strings.CutPrefix(auth, "Bearer ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		return principal{}, unauthorized("missing bearer token")
	}
	if s.cfg.AdminToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) == 1 {
		// An operator token acts on tenant "default" unless the request
		// names another (docs/api.md). A named tenant must exist, on every
		// route: an unknown one is 404, never an empty answer.
		tenant := r.URL.Query().Get("tenant")
		if tenant == "" {
			tenant = r.Header.Get("X-Tenant")
		}
		if tenant == "" {
			return principal{kind: kindOperator, tenant: store.DefaultTenant}, nil
		}
		p := principal{kind: kindOperator, tenant: tenant}
		if err := s.checkTenantParam(r, p); err != nil {
			return principal{}, err // 400 for a malformed name, 404 for an unknown tenant
		}
		return p, nil
	}
	if strings.HasPrefix(token, clientTokenPrefix) {
		return s.clientBearer(r, token)
	}
	t, err := s.cfg.Store.TokenByHash(r.Context(), hashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return principal{}, unauthorized("invalid token")
	}
	if err != nil {
		return principal{}, err
	}
	if !t.ExpiresAt.IsZero() && time.Now().After(t.ExpiresAt) {
		return principal{}, unauthorized("token expired")
	}
	p := principal{kind: t.Kind, tenant: t.Tenant, mailbox: t.Mailbox, tokenID: t.ID}
	if t.Kind == store.TokenUser {
		groups, err := s.cfg.Store.GroupsOf(r.Context(), t.Tenant, t.Mailbox)
		if err != nil {
			return principal{}, err
		}
		p.groups = make(map[string]bool, len(groups))
		for _, g := range groups {
			p.groups[g.Number] = true
		}
	}
	return p, nil
}

// newToken returns a random secret with a readable prefix and its hash.
func newToken(prefix string) (token, hash string) {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	token = prefix + hex.EncodeToString(b)
	return token, hashToken(token)
}

func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// ---- login (user tokens) ----

// LoginGuard counts PIN failures per mailbox across the IVR and the API, so
// that docs/ivr.md's lockout covers both.
type LoginGuard interface {
	// LoginLocked reports whether the mailbox is locked now, and until when.
	LoginLocked(ctx context.Context, tenant, mailbox string) (until time.Time, locked bool, err error)
	// LoginFailed records one failed PIN (and locks the mailbox when it is one too many).
	LoginFailed(ctx context.Context, tenant, mailbox string) error
	// LoginSucceeded clears the failures.
	LoginSucceeded(ctx context.Context, tenant, mailbox string) error
}

// storeGuard is LoginGuard over the access IVR's store.AccessStore.
type storeGuard struct {
	st      store.AccessStore
	lockout time.Duration
}

func (g storeGuard) LoginLocked(ctx context.Context, tenant, mailbox string) (time.Time, bool, error) {
	until, err := g.st.LoginLockedUntil(ctx, tenant, mailbox)
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, false, nil
	}
	return until, err == nil && time.Now().Before(until), err
}

func (g storeGuard) LoginFailed(ctx context.Context, tenant, mailbox string) error {
	_, err := store.FailLogin(ctx, g.st, tenant, mailbox, time.Now(), g.lockout)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

func (g storeGuard) LoginSucceeded(ctx context.Context, tenant, mailbox string) error {
	return g.st.ClearLoginFailures(ctx, tenant, mailbox)
}

type loginInput struct {
	Tenant  string `json:"tenant"`
	Mailbox string `json:"mailbox"`
	PIN     string `json:"pin"`
}

type tokenJSON struct {
	ID        string     `json:"id"`
	Token     string     `json:"token,omitempty"` // only when created
	Kind      string     `json:"kind"`
	Tenant    string     `json:"tenant"`
	Mailbox   string     `json:"mailbox,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func toTokenJSON(t *store.Token, secret string) tokenJSON {
	out := tokenJSON{ID: t.ID, Token: secret, Kind: t.Kind, Tenant: t.Tenant, Mailbox: t.Mailbox, CreatedAt: t.CreatedAt}
	if !t.ExpiresAt.IsZero() {
		e := t.ExpiresAt
		out.ExpiresAt = &e
	}
	return out
}

// login trades mailbox + PIN for a user token (docs/api.md), with the IVR's lockout.
func (s *Server) login(w http.ResponseWriter, r *http.Request, _ principal) error {
	var in loginInput
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Tenant == "" {
		in.Tenant = store.DefaultTenant
	}
	if in.Mailbox == "" {
		return invalid("mailbox", "mailbox is required")
	}
	if in.PIN == "" {
		return invalid("pin", "pin is required")
	}
	ctx := r.Context()
	bad := unauthorized("wrong mailbox or PIN")
	if until, locked, err := s.cfg.Logins.LoginLocked(ctx, in.Tenant, in.Mailbox); err != nil {
		return err
	} else if locked {
		return &apiError{Status: http.StatusForbidden, Code: "locked",
			Message: "mailbox locked after too many failed logins until " + until.UTC().Format(time.RFC3339)}
	}
	mb, err := s.cfg.Store.GetMailbox(ctx, in.Tenant, in.Mailbox)
	if errors.Is(err, store.ErrNotFound) || (err == nil && mb.PINHash == "") {
		// No hint whether the mailbox exists, not even in the time taken:
		// the same bcrypt work as a wrong PIN.
		store.CheckPIN(store.DummyPINHash, in.PIN)
		s.metrics.logins.WithLabelValues("failed").Inc()
		return bad
	}
	if err != nil {
		return err
	}
	if !store.CheckPIN(mb.PINHash, in.PIN) {
		if err := s.cfg.Logins.LoginFailed(ctx, in.Tenant, in.Mailbox); err != nil {
			return err
		}
		s.metrics.logins.WithLabelValues("failed").Inc()
		return bad
	}
	if err := s.cfg.Logins.LoginSucceeded(ctx, in.Tenant, in.Mailbox); err != nil {
		return err
	}
	secret, hash := newToken("vmu_")
	t := &store.Token{Kind: store.TokenUser, Tenant: in.Tenant, Mailbox: in.Mailbox,
		ExpiresAt: time.Now().Add(s.cfg.UserTokenTTL).UTC()}
	if err := s.cfg.Store.CreateToken(ctx, t, hash); err != nil {
		return err
	}
	s.metrics.logins.WithLabelValues("ok").Inc()
	writeJSON(w, http.StatusOK, toTokenJSON(t, secret))
	return nil
}

// logout revokes the user or tenant token of the request.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, p principal) error {
	if p.tokenID == "" {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "unprocessable", Message: "the operator token cannot be revoked through the API"}
	}
	if err := s.cfg.Store.DeleteToken(r.Context(), p.tenant, p.tokenID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- tenant tokens ----

func (s *Server) tenantParam(r *http.Request) (*store.Tenant, error) {
	name := r.PathValue("tenant")
	t, err := s.cfg.Store.GetTenant(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("tenant " + name)
	}
	return t, err
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := requireOperator(p); err != nil {
		return err
	}
	tn, err := s.tenantParam(r)
	if err != nil {
		return err
	}
	if r.ContentLength != 0 {
		var in struct{}
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	secret, hash := newToken("vmt_")
	t := &store.Token{Kind: store.TokenTenant, Tenant: tn.Name}
	if err := s.cfg.Store.CreateToken(r.Context(), t, hash); err != nil {
		return err
	}
	writeCreated(w, "/api/v1/tenants/"+tn.Name+"/tokens/"+t.ID, toTokenJSON(t, secret))
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := requireOperator(p); err != nil {
		return err
	}
	tn, err := s.tenantParam(r)
	if err != nil {
		return err
	}
	kind := r.URL.Query().Get("kind")
	if kind != "" && kind != store.TokenTenant && kind != store.TokenUser {
		return invalid("kind", "kind must be tenant or user")
	}
	ts, err := s.cfg.Store.ListTokens(r.Context(), tn.Name, kind)
	if err != nil {
		return err
	}
	out := list[tokenJSON]{Items: make([]tokenJSON, 0, len(ts))}
	for i := range ts {
		out.Items = append(out.Items, toTokenJSON(&ts[i], ""))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deleteToken revokes a token named by its id or by the token itself.
func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := requireOperator(p); err != nil {
		return err
	}
	tn, err := s.tenantParam(r)
	if err != nil {
		return err
	}
	id := r.PathValue("token")
	err = s.cfg.Store.DeleteToken(r.Context(), tn.Name, id)
	if errors.Is(err, store.ErrNotFound) {
		err = s.cfg.Store.DeleteToken(r.Context(), tn.Name, hashToken(id))
	}
	if errors.Is(err, store.ErrNotFound) {
		return notFound("token")
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
