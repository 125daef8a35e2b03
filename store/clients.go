package store

import (
	"context"
	"time"
)

// API client scopes (docs/gdpr.md): what a machine credential may do
// within its tenant.
const (
	ScopeGDPR  = "gdpr"  // the GDPR routes: export, forget, undo, their dry runs, archives
	ScopeRead  = "read"  // GET routes of the tenant's data
	ScopeAdmin = "admin" // everything a tenant token may do
)

// Scopes lists the valid scopes.
var Scopes = []string{ScopeGDPR, ScopeRead, ScopeAdmin}

// APIClient is a machine credential of one tenant (an OAuth 2.0
// confidential client, RFC 6749 §2): cron jobs and pipelines
// authenticate with its ID and secret instead of a person's token.
type APIClient struct {
	ID         string // client_id (public)
	Tenant     string
	Name       string
	Scopes     []string
	SecretHash string    // keyed hash of the secret; the secret itself is never stored
	CreatedAt  time.Time // set by CreateAPIClient
	RevokedAt  time.Time // zero while the client is active
}

// ClientToken is a short-lived bearer token issued to a client by the
// client-credentials grant. Only a hash of the token is stored.
type ClientToken struct {
	Hash      string
	ClientID  string
	Scopes    []string // a subset of the client's scopes
	ExpiresAt time.Time
}

// ClientStore keeps API clients and their tokens.
type ClientStore interface {
	// CreateAPIClient stores c and sets CreatedAt. ErrNotFound if the
	// tenant does not exist; ErrExists if the ID is taken.
	CreateAPIClient(ctx context.Context, c *APIClient) error
	// GetAPIClient returns the client, revoked or not. ErrNotFound.
	GetAPIClient(ctx context.Context, id string) (*APIClient, error)
	// ListAPIClients returns a tenant's clients, revoked ones too, oldest first.
	ListAPIClients(ctx context.Context, tenant string) ([]APIClient, error)
	// RevokeAPIClient marks the client of tenant revoked at `at` (the first
	// revocation wins) and deletes its tokens. ErrNotFound.
	RevokeAPIClient(ctx context.Context, tenant, id string, at time.Time) error
	// CreateClientToken stores t (and drops expired tokens). ErrNotFound
	// if the client does not exist.
	CreateClientToken(ctx context.Context, t ClientToken) error
	// ClientByToken returns the token with that hash and its client
	// (expired tokens and revoked clients too: the caller decides). ErrNotFound.
	ClientByToken(ctx context.Context, hash string) (*ClientToken, *APIClient, error)
}
