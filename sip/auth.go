package sip

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/vmserver/voicemail/sipauth"
	"github.com/vmserver/voicemail/store"
)

// Deposit authentication modes (sip.deposit_auth, docs/sip.md).
const (
	DepositAuthNone      = "none"      // anyone may leave a message
	DepositAuthUntrusted = "untrusted" // digest unless a trusted proxy sent the call
	DepositAuthAll       = "all"       // digest for every deposit
)

// defaultNonceTTL bounds how long a challenge may be answered.
const defaultNonceTTL = 5 * time.Minute

// AuthStore is what digest authentication reads: the tenant (its realm)
// and the mailbox's HA1 values.
type AuthStore interface {
	GetTenant(ctx context.Context, name string) (*store.Tenant, error)
	GetSIPCredentials(ctx context.Context, tenant, mailbox string) (*store.SIPCredentials, error)
}

// AuthObserver is told of each failed digest authentication, so that a
// rate limiter can lock the source out (the SIP layer keeps no count).
type AuthObserver interface {
	AuthFailed(source, tenant, user string)
}

// authResult is the outcome of checking a request's credentials.
type authResult int

const (
	authNone   authResult = iota // no credentials for our realm: challenge
	authOK                       // the user proved the secret
	authStale                    // right realm, expired nonce: challenge with stale=true
	authFailed                   // wrong, malformed or unknown: 403
)

// realm is the digest realm of tenant: sip.auth_realm when set, else the
// tenant's first SIP domain, else its name.
func (s *Server) realm(ctx context.Context, tenant string) string {
	var domains []string
	if s.deps.Auth != nil {
		if t, err := s.deps.Auth.GetTenant(ctx, tenant); err == nil {
			domains = t.Domains
		}
	}
	return sipauth.Realm(s.cfg.AuthRealm, domains, tenant)
}

// authenticate checks the Authorization of req against the credentials of
// tenant's mailboxes; user is the authenticated mailbox number.
func (s *Server) authenticate(ctx context.Context, req *sip.Request, tenant string) (user string, res authResult) {
	if s.deps.Auth == nil || s.nonces == nil {
		return "", authNone
	}
	realm := s.realm(ctx, tenant)
	var cred *sipauth.Credentials
	for h := range Headers(req, "Authorization") {
		c, err := sipauth.ParseAuthorization(h.Value())
		if err != nil {
			s.authFailed(req, tenant, "")
			return "", authFailed
		}
		if c.Realm == realm {
			cred = &c
			break
		}
	}
	if cred == nil {
		return "", authNone
	}
	ip := sourceIP(req)
	switch err := s.nonces.Check(cred.Nonce, time.Now(), ip); {
	case errors.Is(err, sipauth.ErrStale):
		return "", authStale
	case err != nil:
		s.authFailed(req, tenant, cred.Username)
		return "", authFailed
	}
	ha1 := unknownHA1 // an unknown user costs the same check as a known one
	if c, err := s.deps.Auth.GetSIPCredentials(ctx, tenant, cred.Username); err == nil && c.Realm == realm {
		ha1 = c.HA1MD5
		if strings.EqualFold(cred.Algorithm, sipauth.SHA256) {
			ha1 = c.HA1SHA256
		}
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("sip credentials lookup", "tenant", tenant, "err", err)
	}
	if ha1 == unknownHA1 || !sipauth.Verify(*cred, string(req.Method), ha1) {
		s.authFailed(req, tenant, cred.Username)
		return "", authFailed
	}
	return cred.Username, authOK
}

// unknownHA1 stands in for a user without credentials: no response matches
// it (a hex HA1 never has this form).
const unknownHA1 = "-"

func (s *Server) authFailed(req *sip.Request, tenant, user string) {
	s.log.Info("sip digest authentication failed", "source", req.Source(), "tenant", tenant,
		"user", user, "method", string(req.Method))
	// Repeated failures lock the source out (blocklist.go).
	if a, ok := sourceAddr(req); ok {
		s.Blocklist().Failed(a)
	}
	if s.deps.AuthObserver != nil {
		s.deps.AuthObserver.AuthFailed(sourceIP(req), tenant, user)
	}
}

// challenge answers 401 with a fresh nonce, offering SHA-256 then MD5
// (RFC 8760 §2.4: the preferred algorithm first).
func (s *Server) challenge(ctx context.Context, tx sip.ServerTransaction, req *sip.Request, tenant string, stale bool, toTag string) int {
	if s.nonces == nil {
		return Reply(tx, req, ErrForbidden, toTag)
	}
	realm := s.realm(ctx, tenant)
	nonce := s.nonces.Issue(time.Now(), sourceIP(req))
	var hdrs []sip.Header
	for _, alg := range sipauth.Algorithms {
		hdrs = append(hdrs, sip.NewHeader("WWW-Authenticate", sipauth.Challenge(realm, nonce, alg, stale)))
	}
	return Reply(tx, req, Refuse(ErrUnauthorized, hdrs...), toTag)
}

// requireAuth answers a request that must authenticate as one of the
// mailboxes allow accepts (nil: any): it returns the user when it did;
// otherwise it has answered 401 (no or stale credentials) or 403 and
// returns that status.
func (s *Server) requireAuth(ctx context.Context, tx sip.ServerTransaction, req *sip.Request, tenant, toTag string,
	allow func(user string) bool) (user string, code int) {
	user, res := s.authenticate(ctx, req, tenant)
	switch res {
	case authOK:
		if allow == nil || allow(user) {
			return user, 0
		}
		s.log.Info("sip digest user not allowed here", "source", req.Source(), "tenant", tenant, "user", user,
			"method", string(req.Method))
		return "", Reply(tx, req, ErrForbidden, toTag)
	case authNone, authStale:
		return "", s.challenge(ctx, tx, req, tenant, res == authStale, toTag)
	}
	return "", Reply(tx, req, ErrForbidden, toTag)
}

// AuthorizeSubscribe decides a new SUBSCRIBE to mb's message-summary: a
// trusted proxy's is allowed; from elsewhere (when mwi.subscribe_auth is
// on) the subscriber must digest-authenticate as mb or, for a group, as
// one of its members. When it returns false it has answered (401 or 403)
// and returned that status.
func (s *Server) AuthorizeSubscribe(ctx context.Context, tx sip.ServerTransaction, req *sip.Request, mb *store.Mailbox, toTag string) (bool, int) {
	if !s.cfg.SubscribeAuth || s.Trusted(req) {
		return true, 0
	}
	user, res := s.authenticate(ctx, req, mb.Tenant)
	if res == authOK && mayWatch(user, mb) {
		return true, 0
	}
	switch res {
	case authNone, authStale:
		return false, s.challenge(ctx, tx, req, mb.Tenant, res == authStale, toTag)
	case authOK:
		s.log.Info("mwi subscribe: user may not watch this mailbox", "source", req.Source(), "tenant", mb.Tenant,
			"user", user, "mailbox", mb.Number)
	}
	return false, Reply(tx, req, ErrForbidden, toTag)
}

// mayWatch: a mailbox's own user, or a member of a group mailbox.
func mayWatch(user string, mb *store.Mailbox) bool {
	if user == mb.Number {
		return true
	}
	if mb.Type == store.TypeGroup {
		for _, m := range mb.Members {
			if m == user {
				return true
			}
		}
	}
	return false
}

// inviteAuth authenticates an initial INVITE when it must (docs/sip.md):
// a deposit per sip.deposit_auth; an access call from an untrusted source
// whose From names a mailbox that skips the PIN and has a sip_secret (the
// PIN is skipped only after digest). Credentials for our realm that were
// not asked for still count when right; wrong ones are only logged (a
// proxy may pass on its own). It returns false when it has answered.
func (s *Server) inviteAuth(ctx context.Context, tx sip.ServerTransaction, req *sip.Request, d *Dialog) bool {
	need := false
	switch {
	case !d.access:
		need = s.cfg.DepositAuth == DepositAuthAll || s.cfg.DepositAuth == DepositAuthUntrusted && !d.trusted
	case !d.trusted && s.deps.Auth != nil:
		if from, _ := callerOf(req, false); from != "" {
			if mb, err := s.deps.Store.GetMailbox(ctx, d.tenant, from); err == nil && mb.Type == store.TypePersonal && !mb.AskPassword {
				_, err := s.deps.Auth.GetSIPCredentials(ctx, d.tenant, from)
				need = err == nil
			}
		}
	}
	if !need {
		if Header(req, "Authorization") != nil {
			if user, res := s.authenticate(ctx, req, d.tenant); res == authOK {
				d.authUser = user
			}
		}
		return true
	}
	user, code := s.requireAuth(ctx, tx, req, d.tenant, d.localTag, nil)
	if code != 0 {
		s.metrics.call(d.access, strconv.Itoa(code))
		return false
	}
	d.authUser = user
	return true
}
