package api

import (
	"context"
	"errors"
	"net/http"
	"unicode"

	"github.com/vmserver/voicemail/sipauth"
	"github.com/vmserver/voicemail/store"
)

// The sip_secret of a mailbox (docs/sip.md) is write-only: it is stored as
// HA1 values for its realm and never returned; responses say
// "sip_secret_set" instead. "" removes it.

const (
	minSIPSecret = 8
	maxSIPSecret = 128
)

func checkSIPSecret(v *string) error {
	if v == nil || *v == "" {
		return nil
	}
	n := 0
	for _, r := range *v {
		n++
		if !unicode.IsPrint(r) {
			return invalid("sip_secret", "sip_secret must be printable characters")
		}
	}
	if n < minSIPSecret || n > maxSIPSecret {
		return invalid("sip_secret", "sip_secret must be 8 to 128 characters")
	}
	return nil
}

// sipCredentials computes the HA1 values of secret for the mailbox's
// realm (the same realm the SIP server challenges with).
func (s *Server) sipCredentials(ctx context.Context, tenant, number, secret string) (*store.SIPCredentials, error) {
	var domains []string
	if t, err := s.cfg.Store.GetTenant(ctx, tenant); err == nil {
		domains = t.Domains
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	realm := sipauth.Realm(s.cfg.SIPAuthRealm, domains, tenant)
	md5, err := sipauth.HA1(sipauth.MD5, number, realm, secret)
	if err != nil {
		return nil, err
	}
	sha, err := sipauth.HA1(sipauth.SHA256, number, realm, secret)
	if err != nil {
		return nil, err
	}
	return &store.SIPCredentials{Tenant: tenant, Mailbox: number, Realm: realm, HA1MD5: md5, HA1SHA256: sha}, nil
}

// applySIPSecret stores (or with "" removes) the mailbox's credentials.
func (s *Server) applySIPSecret(ctx context.Context, tenant, number string, secret *string) error {
	if secret == nil {
		return nil
	}
	if *secret == "" {
		return s.cfg.Store.DeleteSIPCredentials(ctx, tenant, number)
	}
	c, err := s.sipCredentials(ctx, tenant, number, *secret)
	if err != nil {
		return err
	}
	return s.cfg.Store.SetSIPCredentials(ctx, c)
}

// withSIPSecretSet is the mailbox on the wire with sip_secret_set.
func (s *Server) withSIPSecretSet(r *http.Request, m *store.Mailbox) (mailboxJSON, error) {
	j := toMailboxJSON(m)
	_, err := s.cfg.Store.GetSIPCredentials(r.Context(), m.Tenant, m.Number)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return j, err
	}
	set := err == nil
	j.SIPSecretSet = &set
	return j, nil
}
