package store

import (
	"context"
	"time"
)

// SIPCredentials are a mailbox's SIP digest credentials: the HA1 values of
// its sip_secret (docs/sip.md), never the secret. Realm is the realm they
// were computed for: a change of realm needs the secret set again.
type SIPCredentials struct {
	Tenant, Mailbox   string
	Realm             string
	HA1MD5, HA1SHA256 string
	UpdatedAt         time.Time
}

// SIPRegistration is one contact a phone registered for its mailbox
// (RFC 3261 §10): where unsolicited MWI NOTIFYs go until ExpiresAt.
type SIPRegistration struct {
	Tenant, Mailbox string
	Contact         string   // the Contact URI, as registered
	Source          string   // host:port the REGISTER came from
	Transport       string   // udp, tcp, tls
	Path            []string // RFC 3327 Path header values, in order
	CallID          string
	CSeq            uint32
	ExpiresAt       time.Time
	UpdatedAt       time.Time
}

// SIPAuthStore keeps digest credentials, registrations and the key of the
// digest nonces, shared by every instance of a cluster.
type SIPAuthStore interface {
	// SetSIPCredentials stores (or replaces) c and sets UpdatedAt.
	// ErrNotFound if the mailbox does not exist.
	SetSIPCredentials(ctx context.Context, c *SIPCredentials) error
	// GetSIPCredentials returns a mailbox's credentials. ErrNotFound when
	// it has none.
	GetSIPCredentials(ctx context.Context, tenant, mailbox string) (*SIPCredentials, error)
	// DeleteSIPCredentials removes them (no error when there are none).
	DeleteSIPCredentials(ctx context.Context, tenant, mailbox string) error
	// SIPAuthKey returns the cluster's random nonce key, created by the
	// first caller.
	SIPAuthKey(ctx context.Context) ([]byte, error)

	// SaveSIPRegistration stores or refreshes the binding of r.Contact.
	// ErrNotFound if the mailbox does not exist.
	SaveSIPRegistration(ctx context.Context, r *SIPRegistration) error
	// DeleteSIPRegistration removes one binding; contact "" removes all of
	// the mailbox's. No error when there is none.
	DeleteSIPRegistration(ctx context.Context, tenant, mailbox, contact string) error
	// ListSIPRegistrations returns the mailbox's bindings that have not
	// expired at now, ordered by contact.
	ListSIPRegistrations(ctx context.Context, tenant, mailbox string, now time.Time) ([]SIPRegistration, error)
	// ClaimSIPRegistrationNotify reports whether this caller is the first
	// to claim the NOTIFY of change eventID to the binding: every instance
	// of a cluster hears every change, one of them sends.
	ClaimSIPRegistrationNotify(ctx context.Context, tenant, mailbox, contact, eventID string) (bool, error)
}
