package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vmserver/voicemail/store"
)

// API clients are machine credentials (docs/gdpr.md): a tenant's cron job
// or pipeline authenticates with a client id and secret, either directly
// with HTTP Basic on any route or by trading them for a short-lived bearer
// token (RFC 6749 §4.4, client credentials grant).

const (
	kindClient        = "client"
	clientIDPrefix    = "vmc_"
	clientSecretPref  = "vms_"
	clientTokenPrefix = "vma_"
	// clientTokenTTL is the lifetime of a token from /api/v1/oauth/token:
	// short, since a script asks for a new one at each run.
	clientTokenTTL = 15 * time.Minute
)

// clientKey keys the hashes of client secrets and client tokens. It is
// derived from the server's GDPR key (data_dir/gdpr_key), so that no new
// secret file has to be kept with the backups.
//
// Why HMAC-SHA256 and not a password KDF: secrets and tokens are 256
// random bits, so no dictionary or brute force applies to them; a slow KDF
// would only make every HTTP Basic request cost tens of milliseconds of
// CPU (a denial-of-service lever). The server key still means a copy of
// the database alone cannot even confirm a guessed secret.
func (s *Server) clientKey() ([]byte, error) {
	if s.cfg.GDPR == nil {
		return nil, &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "API clients need the server key (GDPR service) on this server"}
	}
	return s.cfg.GDPR.DeriveKey("api-clients"), nil
}

func keyedHash(key []byte, secret string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(secret))
	return hex.EncodeToString(m.Sum(nil))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}

// validScopes checks a scope list: non-empty, known, no duplicates.
func validScopes(scopes []string) (string, bool) {
	if len(scopes) == 0 {
		return "scopes must name at least one of gdpr, read, admin", false
	}
	seen := map[string]bool{}
	for _, sc := range scopes {
		if !slices.Contains(store.Scopes, sc) {
			return "unknown scope " + sc + " (want gdpr, read or admin)", false
		}
		if seen[sc] {
			return "scope " + sc + " given twice", false
		}
		seen[sc] = true
	}
	return "", true
}

// ---- authentication ----

// clientBasic checks a client id and secret (HTTP Basic on an API call).
func (s *Server) clientBasic(r *http.Request, id, secret string) (principal, error) {
	c, err := s.checkClientSecret(r, id, secret)
	if err != nil {
		return principal{}, err
	}
	return clientPrincipal(c, c.Scopes), nil
}

// checkClientSecret returns the active client whose id and secret these are.
func (s *Server) checkClientSecret(r *http.Request, id, secret string) (*store.APIClient, error) {
	key, err := s.clientKey()
	if err != nil {
		return nil, err
	}
	bad := unauthorized("invalid client credentials")
	if !strings.HasPrefix(id, clientIDPrefix) || secret == "" {
		return nil, bad
	}
	c, err := s.cfg.Store.GetAPIClient(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, bad
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(keyedHash(key, secret)), []byte(c.SecretHash)) != 1 {
		return nil, bad
	}
	if !c.RevokedAt.IsZero() {
		return nil, unauthorized("client revoked")
	}
	return c, nil
}

// clientBearer checks a token issued by /api/v1/oauth/token.
func (s *Server) clientBearer(r *http.Request, token string) (principal, error) {
	key, err := s.clientKey()
	if err != nil {
		return principal{}, err
	}
	t, c, err := s.cfg.Store.ClientByToken(r.Context(), keyedHash(key, token))
	if errors.Is(err, store.ErrNotFound) {
		return principal{}, unauthorized("invalid token")
	}
	if err != nil {
		return principal{}, err
	}
	if !c.RevokedAt.IsZero() {
		return principal{}, unauthorized("client revoked")
	}
	if time.Now().After(t.ExpiresAt) {
		return principal{}, unauthorized("token expired")
	}
	return clientPrincipal(c, t.Scopes), nil
}

func clientPrincipal(c *store.APIClient, scopes []string) principal {
	p := principal{kind: kindClient, tenant: c.Tenant, tokenID: c.ID, scopes: map[string]bool{}}
	for _, sc := range scopes {
		p.scopes[sc] = true
	}
	return p
}

// checkClientScope limits a client to its scopes and its tenant: the GDPR
// routes need gdpr, other reads need read, anything else admin (which
// covers all). Handlers then treat the client as a tenant token.
func checkClientScope(r *http.Request, p principal) error {
	if p.kind != kindClient {
		return nil
	}
	for _, t := range []string{r.URL.Query().Get("tenant"), r.Header.Get("X-Tenant")} {
		if t != "" && t != p.tenant {
			return forbidden("this API client acts on tenant " + p.tenant + " only")
		}
	}
	if p.scopes[store.ScopeAdmin] {
		return nil
	}
	_, path, _ := strings.Cut(r.Pattern, " ")
	need := store.ScopeAdmin
	switch {
	case strings.HasPrefix(path, "/api/v1/gdpr/"):
		need = store.ScopeGDPR
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		need = store.ScopeRead
	}
	if !p.scopes[need] {
		return forbidden("this API client lacks the " + need + " scope")
	}
	return nil
}

// ---- client management ----

type clientJSON struct {
	ClientID     string     `json:"client_id"`
	ClientSecret string     `json:"client_secret,omitempty"` // only when created
	Tenant       string     `json:"tenant"`
	Name         string     `json:"name"`
	Scopes       []string   `json:"scopes"`
	CreatedAt    time.Time  `json:"created_at"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
}

func toClientJSON(c *store.APIClient, secret string) clientJSON {
	out := clientJSON{ClientID: c.ID, ClientSecret: secret, Tenant: c.Tenant, Name: c.Name, Scopes: c.Scopes, CreatedAt: c.CreatedAt}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	if !c.RevokedAt.IsZero() {
		at := c.RevokedAt
		out.RevokedAt = &at
	}
	return out
}

// clientRoutes registers the API client routes and the token endpoint.
func (s *Server) clientRoutes() {
	s.route("GET /api/v1/tenants/{tenant}/clients", s.listClients)
	s.route("POST /api/v1/tenants/{tenant}/clients", s.createClient)
	s.route("GET /api/v1/tenants/{tenant}/clients/{id}", s.getClient)
	s.route("DELETE /api/v1/tenants/{tenant}/clients/{id}", s.revokeClient)
	s.plain("POST /api/v1/oauth/token", s.oauthToken)
}

// clientAdmin: the operator, or an admin of the tenant named in the path
// (its tenant token, or one of its clients with the admin scope).
func (s *Server) clientAdmin(r *http.Request, p principal) (*store.Tenant, error) {
	tn, err := s.tenantParam(r)
	if err != nil {
		if !p.operator() {
			return nil, forbidden("API clients are managed by the operator or the tenant's admin")
		}
		return nil, err
	}
	if p.kind == kindClient && !p.scopes[store.ScopeAdmin] {
		return nil, forbidden("this API client lacks the admin scope")
	}
	if !p.operator() && (!p.admin() || p.tenant != tn.Name) {
		return nil, forbidden("API clients are managed by the operator or the tenant's admin")
	}
	return tn, nil
}

func (s *Server) createClient(w http.ResponseWriter, r *http.Request, p principal) error {
	tn, err := s.clientAdmin(r, p)
	if err != nil {
		return err
	}
	var in struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if len(in.Name) > 100 {
		return invalid("name", "name is longer than 100 characters")
	}
	if msg, ok := validScopes(in.Scopes); !ok {
		return invalid("scopes", msg)
	}
	key, err := s.clientKey()
	if err != nil {
		return err
	}
	secret := clientSecretPref + randomHex(32)
	c := &store.APIClient{ID: clientIDPrefix + randomHex(12), Tenant: tn.Name, Name: in.Name, Scopes: in.Scopes,
		SecretHash: keyedHash(key, secret)}
	if err := s.cfg.Store.CreateAPIClient(r.Context(), c); err != nil {
		return err
	}
	s.cfg.Logger.Info("api client created", "tenant", c.Tenant, "client_id", c.ID, "scopes", c.Scopes, "by", actorOf(p))
	writeCreated(w, "/api/v1/tenants/"+tn.Name+"/clients/"+c.ID, toClientJSON(c, secret))
	return nil
}

func (s *Server) listClients(w http.ResponseWriter, r *http.Request, p principal) error {
	tn, err := s.clientAdmin(r, p)
	if err != nil {
		return err
	}
	cs, err := s.cfg.Store.ListAPIClients(r.Context(), tn.Name)
	if err != nil {
		return err
	}
	out := list[clientJSON]{Items: make([]clientJSON, 0, len(cs))}
	for i := range cs {
		out.Items = append(out.Items, toClientJSON(&cs[i], ""))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getClient(w http.ResponseWriter, r *http.Request, p principal) error {
	tn, err := s.clientAdmin(r, p)
	if err != nil {
		return err
	}
	c, err := s.cfg.Store.GetAPIClient(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.Tenant != tn.Name) {
		return notFound("client " + r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toClientJSON(c, ""))
	return nil
}

// revokeClient revokes a client at once: its secret and its tokens stop
// working (401); the record stays, so the audit trail keeps its meaning.
func (s *Server) revokeClient(w http.ResponseWriter, r *http.Request, p principal) error {
	tn, err := s.clientAdmin(r, p)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	err = s.cfg.Store.RevokeAPIClient(r.Context(), tn.Name, id, time.Now())
	if errors.Is(err, store.ErrNotFound) {
		return notFound("client " + id)
	}
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("api client revoked", "tenant", tn.Name, "client_id", id, "by", actorOf(p))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// actorOf names a principal in logs and the audit trail.
func actorOf(p principal) string {
	switch p.kind {
	case kindOperator:
		return "operator"
	case kindClient:
		return "client:" + p.tenant + ":" + p.tokenID
	}
	return p.kind + ":" + p.tenant + ":" + p.tokenID
}

// ---- the token endpoint (RFC 6749 §4.4) ----

// oauthError is the error body of RFC 6749 §5.2.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func writeOAuth(w http.ResponseWriter, status int, v any) {
	// RFC 6749 §5.1: token responses must not be cached.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, status, v)
}

// oauthToken trades a client's credentials (HTTP Basic, or client_id and
// client_secret in the form) for a bearer token limited to the client's
// tenant and the requested scopes (default: all of the client's).
func (s *Server) oauthToken(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, desc string) {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="voicemail"`)
		}
		writeOAuth(w, status, oauthError{Error: code, Description: desc})
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		fail(http.StatusBadRequest, "invalid_request", "want an application/x-www-form-urlencoded body")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "invalid_request", "unreadable form body")
		return
	}
	form := r.PostForm
	for k, v := range form {
		if len(v) > 1 {
			fail(http.StatusBadRequest, "invalid_request", "parameter "+k+" given more than once")
			return
		}
	}
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		fail(http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	default:
		fail(http.StatusBadRequest, "unsupported_grant_type", "only grant_type=client_credentials is supported")
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: both are form-encoded before Basic encoding.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			fail(http.StatusUnauthorized, "invalid_client", "malformed client credentials")
			return
		}
		if form.Has("client_secret") {
			fail(http.StatusBadRequest, "invalid_request", "use one client authentication method, not HTTP Basic and client_secret")
			return
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
		if id == "" || secret == "" {
			fail(http.StatusUnauthorized, "invalid_client", "client authentication required (HTTP Basic or client_id and client_secret)")
			return
		}
	}
	c, err := s.checkClientSecret(r, id, secret)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			fail(http.StatusUnauthorized, "invalid_client", ae.Message)
			return
		}
		if errors.As(err, &ae) {
			fail(ae.Status, "temporarily_unavailable", ae.Message)
			return
		}
		s.internal(r, err)
		fail(http.StatusInternalServerError, "server_error", "internal error")
		return
	}
	scopes := c.Scopes
	if sc := strings.Fields(form.Get("scope")); len(sc) > 0 {
		for _, x := range sc {
			if !slices.Contains(c.Scopes, x) {
				fail(http.StatusBadRequest, "invalid_scope", "scope "+x+" is not granted to this client")
				return
			}
		}
		scopes = sc
	}
	key, err := s.clientKey()
	if err != nil {
		fail(http.StatusServiceUnavailable, "temporarily_unavailable", err.Error())
		return
	}
	token := clientTokenPrefix + randomHex(32)
	exp := time.Now().Add(clientTokenTTL)
	if err := s.cfg.Store.CreateClientToken(r.Context(), store.ClientToken{Hash: keyedHash(key, token), ClientID: c.ID,
		Scopes: scopes, ExpiresAt: exp}); err != nil {
		s.internal(r, err)
		fail(http.StatusInternalServerError, "server_error", "internal error")
		return
	}
	s.cfg.Logger.Info("api client token issued", "tenant", c.Tenant, "client_id", c.ID, "scopes", scopes)
	writeOAuth(w, http.StatusOK, map[string]any{
		"access_token": token,
		"token_type":   "Bearer",
		"expires_in":   int(clientTokenTTL / time.Second),
		"scope":        strings.Join(scopes, " "),
		"tenant":       c.Tenant,
	})
}
