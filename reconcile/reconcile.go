// Package reconcile removes the media that no row owns any more: a
// deletion that crashed between the row and its blob, a forward whose row
// was never written, the greetings of a deleted mailbox. One instance at a
// time sweeps (a lease in the store), every Interval. See docs/storage.md.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmserver/voicemail/store"
)

// Store is what the sweep reads: message rows by id, mailboxes, and the
// lease that keeps two instances from sweeping at once.
type Store interface {
	MediaKeysOf(ctx context.Context, ids []string) (map[string]bool, error)
	GetMailbox(ctx context.Context, tenant, number string) (*store.Mailbox, error)
	ClaimConsumer(ctx context.Context, consumer, owner string, lease time.Duration) (c store.Cursor, ok bool, err error)
	AdvanceConsumer(ctx context.Context, consumer, owner string, c store.Cursor, lease time.Duration) error
}

// Config of a Reconciler. Zero values take the defaults below.
type Config struct {
	Store  Store
	Blobs  store.Blobs
	Logger *slog.Logger
	// Grace is how old a blob must be before it may be removed
	// (media.orphan_grace): longer than any write between a blob and
	// its row.
	Grace time.Duration
	// Interval between sweeps (the first runs at Start).
	Interval time.Duration
	// Settle, when set, runs before every sweep, on every instance: the
	// recovery of committed recordings whose row is missing
	// (call.RecoverUnsettled), so that they get their row instead of
	// being taken for orphans.
	Settle func(ctx context.Context) error
	Now    func() time.Time
}

// Defaults.
const (
	DefaultGrace    = time.Hour
	DefaultInterval = 15 * time.Minute
)

// consumer is the name of the sweep lease in the store.
const consumer = "media-orphan-sweep"

// batch bounds the ids of one row lookup.
const batch = 500

// Report counts what one sweep found.
type Report struct {
	Checked  int      // blobs looked at
	Young    int      // within the grace: not judged yet
	Orphans  []string // keys without a row (or mailbox), sorted; removed unless dry run
	Removed  int      // orphans actually removed
	Unknown  int      // keys of no known shape (left alone)
	Skipped  bool     // another instance holds the lease
	Failures int      // orphans whose removal failed (retried next sweep)
}

// Reconciler runs the sweep.
type Reconciler struct {
	cfg   Config
	owner string

	removed *prometheus.CounterVec
	sweeps  *prometheus.CounterVec

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Reconciler, error) {
	if cfg.Store == nil || cfg.Blobs == nil {
		return nil, errors.New("reconcile: Store and Blobs are required")
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Reconciler{
		cfg: cfg, owner: store.NewMessageID(),
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voicemail_media_orphans_removed_total",
			Help: "Media blobs removed because no message row (or mailbox, for greetings) owns them."}, []string{"kind"}),
		sweeps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voicemail_media_orphan_sweeps_total",
			Help: "Orphan media sweeps by result (ok, failed, skipped: another instance holds the lease)."}, []string{"result"}),
	}, nil
}

// Collectors are the sweep's metrics (docs/metrics.md).
func (r *Reconciler) Collectors() []prometheus.Collector {
	return []prometheus.Collector{r.removed, r.sweeps}
}

// Start sweeps now and then every Interval until Stop.
func (r *Reconciler) Start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.cfg.Interval)
		defer t.Stop()
		for {
			if _, err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Logger.Error("media orphan sweep failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the loop, waits for a sweep in progress and gives the lease
// back, so that the next start (or another instance) sweeps at once. It
// also gives back the lease of a Sweep called without Start.
func (r *Reconciler) Stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel = nil
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if c, ok, err := r.cfg.Store.ClaimConsumer(ctx, consumer, r.owner, time.Second); err == nil && ok {
		_ = r.cfg.Store.AdvanceConsumer(ctx, consumer, r.owner, c, -time.Second)
	}
}

// lease is how long the sweep lease lasts without renewal; the holder
// renews it at every batch.
func (r *Reconciler) lease() time.Duration { return max(3*r.cfg.Interval, 5*time.Minute) }

func (r *Reconciler) hold(ctx context.Context) (bool, error) {
	_, ok, err := r.cfg.Store.ClaimConsumer(ctx, consumer, r.owner, r.lease())
	if err != nil {
		return false, fmt.Errorf("reconcile: lease: %w", err)
	}
	return ok, nil
}

// Sweep runs the settle hook, then removes the orphans under the lease;
// it logs a line and counts what it did. The hook runs on every instance,
// lease or not: on object stores each one's sidecars are in its own spool.
func (r *Reconciler) Sweep(ctx context.Context) (Report, error) {
	if r.cfg.Settle != nil {
		if err := r.cfg.Settle(ctx); err != nil {
			r.cfg.Logger.Warn("media orphan sweep: settling committed recordings", "err", err)
		}
	}
	held, err := r.hold(ctx)
	if err != nil {
		r.sweeps.WithLabelValues("failed").Inc()
		return Report{}, err
	}
	if !held {
		r.sweeps.WithLabelValues("skipped").Inc()
		return Report{Skipped: true}, nil
	}
	rep, err := r.Check(ctx, true)
	if err != nil {
		r.sweeps.WithLabelValues("failed").Inc()
		return rep, err
	}
	r.sweeps.WithLabelValues("ok").Inc()
	if len(rep.Orphans) > 0 || rep.Failures > 0 {
		r.cfg.Logger.Info("media orphan sweep", "checked", rep.Checked, "orphans", len(rep.Orphans),
			"removed", rep.Removed, "failed", rep.Failures, "young", rep.Young, "unknown", rep.Unknown)
	} else {
		r.cfg.Logger.Debug("media orphan sweep", "checked", rep.Checked, "young", rep.Young, "unknown", rep.Unknown)
	}
	return rep, nil
}

// Check finds the blobs older than the grace that nothing owns: a message
// blob without a row (visible or GDPR-hidden) and without a sidecar (a
// committed recording waiting for its row), a greeting whose mailbox is
// gone. With fix it removes them. Keys under a reserved prefix ("_…")
// and keys of no known shape are left alone. Check takes no lease: the
// sweep holds one; "voicemail media check" without --fix only reads.
func (r *Reconciler) Check(ctx context.Context, fix bool) (Report, error) {
	var rep Report
	all, err := r.cfg.Blobs.List("")
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	cutoff := r.cfg.Now().Add(-r.cfg.Grace)
	var msgs []string // message keys to look up, one batch at a time
	flush := func() error {
		if len(msgs) == 0 {
			return nil
		}
		ids := make([]string, len(msgs))
		for i, k := range msgs {
			ids[i] = messageID(k)
		}
		owned, err := r.cfg.Store.MediaKeysOf(ctx, ids)
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		for _, k := range msgs {
			if !owned[k] {
				r.orphan(&rep, k, "message", fix)
			}
		}
		msgs = msgs[:0]
		if fix {
			// A long sweep keeps its lease; a lost one stops it.
			if held, err := r.hold(ctx); err != nil || !held {
				return errors.Join(errors.New("reconcile: lease lost during the sweep"), err)
			}
		}
		return nil
	}
	for _, b := range all {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rep.Checked++
		if !b.ModTime.Before(cutoff) {
			rep.Young++
			continue
		}
		switch kind, tenant, mailbox := classify(b.Key); kind {
		case "message":
			if err := r.cfg.Blobs.ReadPartMeta(b.Key, new(struct{})); !errors.Is(err, store.ErrNotFound) {
				continue // a sidecar: the recovery owns it (RecoverUnsettled)
			}
			msgs = append(msgs, b.Key)
			if len(msgs) == batch {
				if err := flush(); err != nil {
					return rep, err
				}
			}
		case "greeting":
			_, err := r.cfg.Store.GetMailbox(ctx, tenant, mailbox)
			if errors.Is(err, store.ErrNotFound) {
				r.orphan(&rep, b.Key, "greeting", fix)
			} else if err != nil {
				return rep, fmt.Errorf("reconcile: %w", err)
			}
		case "reserved":
		default:
			rep.Unknown++
		}
	}
	err = flush()
	slices.Sort(rep.Orphans)
	return rep, err
}

func (r *Reconciler) orphan(rep *Report, key, kind string, fix bool) {
	rep.Orphans = append(rep.Orphans, key)
	if !fix {
		return
	}
	if err := r.cfg.Blobs.Delete(key); err != nil {
		rep.Failures++
		r.cfg.Logger.Warn("media orphan sweep: delete", "key", key, "err", err)
		return
	}
	rep.Removed++
	r.removed.WithLabelValues(kind).Inc()
}

// classify tells a key's kind from its shape (store.MediaKey,
// store.GreetingKey): "message", "greeting", "reserved" (a top folder
// starting with "_", e.g. GDPR export archives) or "" (unknown).
func classify(key string) (kind, tenant, mailbox string) {
	segs := strings.Split(key, "/")
	switch {
	case strings.HasPrefix(segs[0], "_"):
		return "reserved", "", ""
	case len(segs) == 3 && strings.HasSuffix(segs[2], ".wav") && len(segs[2]) > len(".wav"):
		return "message", segs[0], segs[1]
	case len(segs) == 4 && segs[2] == "greetings" && strings.HasSuffix(segs[3], ".wav"):
		return "greeting", segs[0], segs[1]
	}
	return "", "", ""
}

// messageID is the id in a message key "<tenant>/<mailbox>/<id>.wav".
func messageID(key string) string {
	return strings.TrimSuffix(key[strings.LastIndexByte(key, '/')+1:], ".wav")
}
