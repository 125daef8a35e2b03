// Package store holds the voicemail data model: tenants, mailboxes and
// message metadata behind the Store interface (SQLite today, PostgreSQL
// later, both held to the same contract tests), and the media files behind
// the Blobs interface.
//
// The central invariant (docs/storage.md): a message row is created only after its
// audio is durable, so anything that reads the store (IVR, API, MWI) never
// sees a message whose audio could still be lost.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"
)

var (
	// ErrNotFound is returned (wrapped) when the requested object does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists is returned (wrapped) when an object conflicts with an existing one.
	ErrExists = errors.New("store: already exists")
)

// Mailbox types.
const (
	TypePersonal = "personal"
	TypeGroup    = "group"
)

// Message folders. Folder numbers in the IVR follow this order (0 New … 4 Friends).
const (
	FolderNew     = "new"
	FolderOld     = "old"
	FolderWork    = "work"
	FolderFamily  = "family"
	FolderFriends = "friends"
)

// Folders lists the message folders in IVR order.
var Folders = []string{FolderNew, FolderOld, FolderWork, FolderFamily, FolderFriends}

// ValidFolder reports whether f is one of Folders.
func ValidFolder(f string) bool {
	for _, x := range Folders {
		if f == x {
			return true
		}
	}
	return false
}

// Tenant is an isolated set of mailboxes, selected by the SIP Request-URI host.
type Tenant struct {
	Name      string
	Domains   []string
	CreatedAt time.Time
}

// Mailbox is a personal or group voicemail box. Number is unique within its tenant.
type Mailbox struct {
	Tenant, Number, Name, Type    string // Type "personal" | "group"
	Members                       []string
	PINHash                       string // bcrypt; never the PIN
	Email                         string
	AttachAudio, DeleteAfterEmail bool
	MaxMessages, MaxSeconds       int // 0 = server default
	Review, AskPassword           bool
	Operator, Timezone, Language  string
	MWITargets                    []string
	RetentionDays                 int
	CreatedAt, UpdatedAt          time.Time
}

// Message is the metadata of one recorded message.
type Message struct {
	ID                               string // UUIDv7 string (sorts by time)
	Tenant, Mailbox, Folder          string // Folder: "new","old","work","family","friends"
	CallerID, CallerE164, CallerName string
	ReceivedAt                       time.Time // UTC
	DurationMS                       int64
	Urgent, Read                     bool
	Size                             int64
	MediaKey                         string // "<tenant>/<mailbox>/<id>.wav"
}

// Counts is the MWI summary of a mailbox. New and Old include the urgent ones.
type Counts struct{ New, Old, UrgentNew, UrgentOld int }

// MessageFilter selects messages for ListMessages. Tenant is required; empty
// Mailbox, Folder and CallerID match everything; After is the cursor (an ID)
// returned as next by the previous page; Limit 0 means 100.
type MessageFilter struct {
	Tenant, Mailbox, Folder, CallerID, After string
	Limit                                    int
}

// Store is the metadata store. Implementations are safe for concurrent use.
type Store interface {
	Ping(ctx context.Context) error
	Close() error

	// CreateTenant sets CreatedAt. ErrExists if the name, or one of its
	// domains, is already taken.
	CreateTenant(ctx context.Context, t *Tenant) error
	GetTenant(ctx context.Context, name string) (*Tenant, error) // ErrNotFound
	ListTenants(ctx context.Context) ([]Tenant, error)           // ordered by name
	// DeleteTenant refuses (ErrExists) while the tenant still has mailboxes,
	// so that no message media is orphaned; ErrNotFound if absent.
	DeleteTenant(ctx context.Context, name string) error
	// TenantForDomain returns the tenant whose Domains holds host
	// (case-insensitive), or "default".
	TenantForDomain(ctx context.Context, host string) (string, error)

	// CreateMailbox sets CreatedAt/UpdatedAt (and Type "personal" when empty).
	// ErrExists if the number is taken; ErrNotFound if the tenant does not exist.
	CreateMailbox(ctx context.Context, m *Mailbox) error
	GetMailbox(ctx context.Context, tenant, number string) (*Mailbox, error) // ErrNotFound
	// ListMailboxes returns up to limit (0 = 100) mailboxes ordered by number,
	// starting after the cursor; next is "" on the last page.
	ListMailboxes(ctx context.Context, tenant, after string, limit int) (items []Mailbox, next string, err error)
	// UpdateMailbox replaces every field but CreatedAt and sets UpdatedAt. ErrNotFound.
	UpdateMailbox(ctx context.Context, m *Mailbox) error
	// DeleteMailbox deletes the mailbox and its message rows and returns
	// those messages so the caller can delete their media. ErrNotFound.
	DeleteMailbox(ctx context.Context, tenant, number string) ([]Message, error)
	// GroupsOf returns the group mailboxes whose Members list member, ordered by number.
	GroupsOf(ctx context.Context, tenant, member string) ([]Mailbox, error)

	// CreateMessage must be called only after the audio is durable. It fills
	// an empty ID (NewMessageID), Folder ("new"), ReceivedAt (now) and
	// MediaKey. ErrNotFound if the mailbox does not exist; ErrExists on a
	// duplicate ID.
	CreateMessage(ctx context.Context, m *Message) error
	GetMessage(ctx context.Context, tenant, mailbox, id string) (*Message, error) // ErrNotFound
	// ListMessages returns messages ordered by ID (time) ascending; next is
	// "" on the last page. CallerID matches caller_id or caller_e164.
	ListMessages(ctx context.Context, f MessageFilter) (items []Message, next string, err error)
	// CountMessages computes the MWI counts in one query: unread messages in
	// "new" are new, everything else is old.
	CountMessages(ctx context.Context, tenant, mailbox string) (Counts, error)
	// CountMailboxes is CountMessages for many mailboxes of a tenant, a
	// few hundred per query (an MWI start-up with a subscription per
	// mailbox); every mailbox asked is in the answer, zero when it has no
	// message. Sorted mailboxes read the index in order.
	CountMailboxes(ctx context.Context, tenant string, mailboxes []string) (map[string]Counts, error)
	// UpdateMessage changes Folder, Read and Urgent only. ErrNotFound.
	UpdateMessage(ctx context.Context, m *Message) error
	// DeleteMessage deletes the row and returns it (the caller deletes the media). ErrNotFound.
	DeleteMessage(ctx context.Context, tenant, mailbox, id string) (*Message, error)

	// Each feature keeps its methods in an interface of its own file.
	AccessStore // store/access.go: login failures and lockout (issue 3)
	MWIStore    // store/mwi.go: MWI subscriptions (issue 4)
	APIStore    // store/apistore.go: tokens, webhooks, event queue (issue 5)
	MailStore   // store/mail.go: email outbox (issue 7)
	GDPRStore   // store/gdpr.go: forget/undo/purge by caller, audit, retention (issue 6)
	// store/gdpr_preview.go: what an undo would restore (issue 21)
	GDPRPreviewStore
	// store/clients.go: API clients and their tokens (issue 21)
	ClientStore
	// store/sipauth.go: SIP digest credentials and registrations (issue 15)
	SIPAuthStore
	ChangeLog // store/outbox.go: the change log every change writes in its transaction
	// MediaKeysOf (store/media_refs.go) returns the media keys of the
	// message rows, visible or GDPR-hidden, with those ids: what the
	// orphan sweep keeps.
	MediaKeysOf(ctx context.Context, ids []string) (map[string]bool, error)
	// store/cluster.go: instance heartbeats and named leases (issue 13)
	ClusterStore
}

// DefaultTenant is the tenant of requests whose host no tenant claims.
const DefaultTenant = "default"

// Open opens the store named by dsn with default pool settings (see OpenWith).
func Open(ctx context.Context, dsn string) (Store, error) { return OpenWith(ctx, dsn, Options{}) }

// OpenWith opens the store named by dsn: "sqlite:///abs/path/voicemail.db",
// "sqlite://relative/path.db" or "postgres://user:password@host:port/db?…"
// (postgresql:// too; any parameter pgx accepts). The schema is created or
// migrated; several instances may open one PostgreSQL database at once.
func OpenWith(ctx context.Context, dsn string, o Options) (Store, error) {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return nil, errors.New("store: database: want scheme://…, e.g. sqlite:///var/lib/voicemail/voicemail.db or postgres://user@host/db")
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
		return openSQLite(ctx, rest)
	case "postgres", "postgresql":
		return openPostgres(ctx, dsn, o)
	default:
		return nil, fmt.Errorf("store: unsupported database scheme %q (supported: sqlite, postgres)", scheme)
	}
}

// HashPIN returns the bcrypt hash of pin; PINs are never stored in clear.
func HashPIN(pin string) (string, error) {
	if pin == "" {
		return "", errors.New("store: empty PIN")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pin), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("store: hash PIN: %w", err)
	}
	return string(h), nil
}

// DummyPINHash is a bcrypt hash, at HashPIN's cost, of a PIN no keypad
// can type: a login for an unknown mailbox, or one without a PIN, is
// checked against it, so that its time does not tell which mailboxes
// exist (docs/ivr.md).
const DummyPINHash = "$2a$10$hxNeWK44cotzGeWH.te13e9OKA.TTz5mikwU5j8dq.Vbv9yI92SDW"

// CheckPIN reports whether pin matches the bcrypt hash. An empty hash never matches.
func CheckPIN(hash, pin string) bool {
	if hash == "" {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pin)) == nil
}

// NewMessageID returns a UUIDv7 string: unique across instances and sorted by time.
func NewMessageID() string {
	// NewV7 only fails when the random source fails, which crypto/rand never
	// does on supported platforms; Must keeps the signature simple.
	return uuid.Must(uuid.NewV7()).String()
}

// MediaKey is the blob key of a message's audio: "<tenant>/<mailbox>/<id>.wav".
func MediaKey(tenant, mailbox, id string) string {
	// Plain concatenation (not path.Join) so that odd parts are rejected by
	// the blob key check instead of being silently cleaned into another key.
	return tenant + "/" + mailbox + "/" + id + ".wav"
}

// GreetingKey is the blob key of a greeting ("unavailable", "busy",
// "temporary", "name"): "<tenant>/<mailbox>/greetings/<kind>.wav".
func GreetingKey(tenant, mailbox, kind string) string {
	return GreetingPrefix(tenant, mailbox) + kind + ".wav"
}

// GreetingPrefix is the key prefix of a mailbox's greetings, for
// Blobs.List: "<tenant>/<mailbox>/greetings/".
func GreetingPrefix(tenant, mailbox string) string {
	return tenant + "/" + mailbox + "/greetings/"
}
