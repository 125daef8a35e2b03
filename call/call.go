// Package call is the runtime of an answered call: it binds one sip.Dialog
// to an ivr state machine (deposit or access), the dialog's media session
// and the store. It plays prompts and greetings (with a shared prompt
// cache), records messages and greetings, and recovers the recordings a
// crash left behind (Recover). See docs/architecture.md.
package call

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/prompts"
	"github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/store"
)

// Recording holds the server-wide recording defaults (recording.* keys).
type Recording struct {
	MaxSeconds, MinSeconds, SilenceSeconds int
	// TailMS is the trailing silence kept after the last voiced frame
	// (recording.tail_ms); a longer silence is trimmed to it.
	TailMS int
	Format media.Format
}

// Config is what the call runtime needs from the server configuration.
type Config struct {
	Recording Recording
	// LoginMaxAttempts and LoginLockout are login.max_attempts (failed
	// logins per call) and login.lockout for the access IVR.
	LoginMaxAttempts int
	LoginLockout     time.Duration
}

// Store is what calls read and write. Writes must go through the
// notifying store (store.Notifying) so that MWI, events and mail follow.
type Store interface {
	store.AccessStore // login failures and lockout
	GetMailbox(ctx context.Context, tenant, number string) (*store.Mailbox, error)
	UpdateMailbox(ctx context.Context, m *store.Mailbox) error
	GroupsOf(ctx context.Context, tenant, member string) ([]store.Mailbox, error)
	CountMessages(ctx context.Context, tenant, mailbox string) (store.Counts, error)
	ListMessages(ctx context.Context, f store.MessageFilter) (items []store.Message, next string, err error)
	CreateMessage(ctx context.Context, m *store.Message) error
	UpdateMessage(ctx context.Context, m *store.Message) error
	DeleteMessage(ctx context.Context, tenant, mailbox, id string) (*store.Message, error)
}

// Deps are the collaborators of the runtime.
type Deps struct {
	Store   Store
	Blobs   store.Blobs
	Prompts *prompts.Set
	Logger  *slog.Logger
	// Space refuses deposits while the disk is low (space.go); nil = never.
	Space Space
}

// Runtime runs every answered call; it is the sip.CallHandler.
type Runtime struct {
	cfg       Config
	deps      Deps
	prompts   *promptCache       // shared PCM of prompt sequences (promptcache.go)
	recording prometheus.Counter // seconds of saved messages
	gate      spaceGate          // last disk-space verdict seen by Admit
	writers   *writers           // write the recordings' files (writebehind.go)
}

// New builds the runtime.
func New(cfg Config, deps Deps) *Runtime {
	return &Runtime{cfg: cfg, deps: deps, prompts: newPromptCache(), writers: newWriters(),
		recording: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicemail_recording_seconds_total",
			Help: "Seconds of audio saved as messages.",
		})}
}

// Collectors are the runtime's Prometheus collectors.
func (r *Runtime) Collectors() []prometheus.Collector { return []prometheus.Collector{r.recording} }

// Call runs the call's IVR until it ends or ctx ends (the caller hung up):
// the access IVR for an access number, else the deposit of the called
// mailbox.
func (r *Runtime) Call(ctx context.Context, d *sip.Dialog) {
	if d.Access() {
		r.access(ctx, d, "")
		return
	}
	r.deposit(ctx, d)
}
