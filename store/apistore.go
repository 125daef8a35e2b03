package store

import (
	"context"
	"time"
)

// Token kinds. The operator (admin) token is not stored: it comes from the
// configuration.
const (
	TokenTenant = "tenant"
	TokenUser   = "user"
)

// Token is an API token. Only the SHA-256 of the secret is stored, so the
// database never holds a usable token.
type Token struct {
	ID        string // public identifier (for listing and revoking)
	Kind      string // TokenTenant | TokenUser
	Tenant    string
	Mailbox   string    // TokenUser: the mailbox that logged in
	CreatedAt time.Time // set by CreateToken
	ExpiresAt time.Time // zero = never
}

// Webhook is a subscription of a tenant's events (docs/api.md).
type Webhook struct {
	ID        string
	Tenant    string
	URL       string
	Events    []string // empty = every type
	Secret    string   // HMAC-SHA256 key
	CreatedAt time.Time
}

// WebhookJob is one event waiting to be delivered to one webhook: the
// durable queue that a restart does not lose.
type WebhookJob struct {
	ID        int64
	WebhookID string
	EventID   string
	EventType string
	Body      []byte // the exact JSON that is signed and POSTed
	Attempts  int
	NextAt    time.Time
	CreatedAt time.Time
}

// WebhookDelivery is one attempt in a webhook's delivery log.
type WebhookDelivery struct {
	ID         int64
	WebhookID  string
	EventID    string
	EventType  string
	Attempt    int
	Status     int    // HTTP status; 0 when no response came
	Error      string // "" on success
	Final      string // "delivered", "retry" or "failed" (gave up)
	DurationMS int64
	At         time.Time
}

// APIStore keeps the REST API's state (docs/api.md): tenant and user tokens,
// webhooks and the durable event queue.
type APIStore interface {
	// CreateToken stores t under the SHA-256 hex of its secret. It sets
	// CreatedAt. ErrNotFound if the tenant does not exist.
	CreateToken(ctx context.Context, t *Token, hash string) error
	// TokenByHash returns the token with that hash (expired ones too: the
	// caller decides). ErrNotFound.
	TokenByHash(ctx context.Context, hash string) (*Token, error)
	// ListTokens returns a tenant's tokens of kind ("" = all), oldest first.
	ListTokens(ctx context.Context, tenant, kind string) ([]Token, error)
	// DeleteToken revokes the token of tenant whose ID or hash is idOrHash. ErrNotFound.
	DeleteToken(ctx context.Context, tenant, idOrHash string) error
	// DeleteTokens revokes every token of tenant, or only the user tokens
	// of mailbox when mailbox is not "". Expired tokens go as well.
	DeleteTokens(ctx context.Context, tenant, mailbox string) error

	// CreateWebhook sets CreatedAt (and ID when empty). ErrNotFound if the tenant does not exist.
	CreateWebhook(ctx context.Context, w *Webhook) error
	GetWebhook(ctx context.Context, tenant, id string) (*Webhook, error) // ErrNotFound
	// ListWebhooks returns the webhooks of tenant ("" = every tenant), oldest first.
	ListWebhooks(ctx context.Context, tenant string) ([]Webhook, error)
	// DeleteWebhook deletes the webhook, its queued jobs and its log. ErrNotFound.
	DeleteWebhook(ctx context.Context, tenant, id string) error

	// EnqueueWebhookJobs adds jobs (ID, Attempts and CreatedAt are set;
	// a zero NextAt means now) in one transaction.
	EnqueueWebhookJobs(ctx context.Context, jobs []WebhookJob) error
	// DueWebhookJobs returns up to limit jobs with NextAt <= now, oldest first.
	DueWebhookJobs(ctx context.Context, now time.Time, limit int) ([]WebhookJob, error)
	// ClaimWebhookJobs is DueWebhookJobs for deliverers that share the
	// queue with other instances: it also leases the jobs (store/claims.go).
	ClaimWebhookJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]WebhookJob, error)
	// NextWebhookJobAt is the earliest NextAt of the queue; ok is false when it is empty.
	NextWebhookJobAt(ctx context.Context) (at time.Time, ok bool, err error)
	// FinishWebhookJob records d in the log and removes the job (delivered
	// or given up) when next is zero, or reschedules it at next with one
	// more attempt.
	FinishWebhookJob(ctx context.Context, id int64, d WebhookDelivery, next time.Time) error
	// ListWebhookDeliveries returns a webhook's log, newest first, starting
	// below the cursor ID (0 = from the newest); next is "" on the last page.
	ListWebhookDeliveries(ctx context.Context, webhookID string, before int64, limit int) (items []WebhookDelivery, next int64, err error)
}
