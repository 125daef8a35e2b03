package gdpr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vmserver/voicemail/store"
)

// sweepBatch bounds one store round trip of the sweeper.
const sweepBatch = 500

// sweepConsumer is the lease that lets one instance at a time sweep when
// several share a database: they would otherwise purge, expire and audit
// the same messages twice.
const sweepConsumer = "gdpr-sweep"

// sweepLease is how long a sweep lease lasts without renewal: the holder
// renews it at every sweep and every batch; if it dies, another instance
// takes over when it ends.
func (s *Service) sweepLease() time.Duration {
	return max(3*s.cfg.SweepInterval, 30*time.Second)
}

// holdSweep takes or renews the sweep lease; false while another instance
// holds it. On a single node it holds, but for a restart after a crash,
// which waits for the dead process's lease to run out (sweepLease).
func (s *Service) holdSweep(ctx context.Context) (bool, error) {
	_, ok, err := s.cfg.Store.ClaimConsumer(ctx, sweepConsumer, s.sweepOwner, s.sweepLease())
	if err != nil {
		return false, fmt.Errorf("gdpr sweep lease: %w", err)
	}
	return ok, nil
}

// SweepStats counts what one sweep did.
type SweepStats struct {
	Purged   int // forgotten messages purged for good
	Expired  int // messages deleted by retention
	Archives int // export archives expired
}

// Start runs the sweeper (every SweepInterval, and once at once) and, when
// SubmitDir is set, the drop-folder watcher. Stop ends them.
func (s *Service) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return nil
	}
	if s.cfg.SubmitDir != "" {
		if err := s.prepareDropFolder(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.started = cancel, true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.cfg.SweepInterval)
		defer t.Stop()
		for {
			if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Error("gdpr sweep failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	if s.cfg.SubmitDir != "" {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.watch(ctx)
		}()
	}
	return nil
}

// Stop ends the sweeper and the watcher and waits for them (a request being
// processed from the drop folder finishes first).
func (s *Service) Stop() {
	s.mu.Lock()
	cancel := s.cancel
	s.cancel, s.started = nil, false
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
	s.releaseSweep()
}

// releaseSweep gives the sweep lease back at a clean stop, so that the
// next start (or another instance) sweeps at once instead of waiting for
// the lease to run out.
func (s *Service) releaseSweep() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, ok, err := s.cfg.Store.ClaimConsumer(ctx, sweepConsumer, s.sweepOwner, time.Second)
	if err != nil || !ok {
		return
	}
	// A lease that ended a second ago is free for anyone.
	_ = s.cfg.Store.AdvanceConsumer(ctx, sweepConsumer, s.sweepOwner, c, -time.Second)
}

// Sweep purges the messages forgotten longer than the grace ago, deletes
// the messages past their retention and expires old export archives.
// It does nothing while another instance holds the sweep lease.
func (s *Service) Sweep(ctx context.Context) (SweepStats, error) {
	var st SweepStats
	held, err := s.holdSweep(ctx)
	if err != nil || !held {
		return st, err
	}
	if st.Purged, err = s.purge(ctx); err != nil {
		return st, err
	}
	if st.Expired, err = s.retention(ctx); err != nil {
		return st, err
	}
	st.Archives = s.expireArchives()
	return st, nil
}

// purge removes for good (audio, row, caller id) what was hidden before now - grace.
func (s *Service) purge(ctx context.Context) (int, error) {
	cutoff := s.cfg.Now().Add(-s.cfg.ForgetGrace)
	total := 0
	for ctx.Err() == nil {
		if held, err := s.holdSweep(ctx); err != nil {
			return total, err
		} else if !held {
			break // lease lost: the new holder goes on
		}
		due, err := s.cfg.Store.ForgottenBefore(ctx, cutoff, sweepBatch)
		if err != nil {
			return total, err
		}
		if len(due) == 0 {
			break
		}
		ids := make([]string, 0, len(due))
		for _, m := range due {
			// Audio first: a crash in between leaves a row that the next
			// sweep purges again, never audio without its row.
			if err := s.cfg.Blobs.Delete(m.MediaKey); err != nil {
				s.cfg.Logger.Warn("gdpr purge: audio not deleted", "message", m.ID, "err", err)
				continue
			}
			ids = append(ids, m.ID)
		}
		if len(ids) == 0 {
			break
		}
		if err := s.cfg.Store.PurgeForgotten(ctx, ids); err != nil {
			return total, err
		}
		total += len(ids)
		if len(due) < sweepBatch {
			break
		}
	}
	if total > 0 {
		s.cfg.Logger.Info("gdpr purge", "messages", total)
		s.auditSweep(ctx, "purge", total)
	}
	return total, nil
}

// retention deletes expired messages through the store's DeleteMessage,
// so MWI, events and mail see an ordinary deletion.
func (s *Service) retention(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		if held, err := s.holdSweep(ctx); err != nil {
			return total, err
		} else if !held {
			break
		}
		msgs, err := s.cfg.Store.ExpiredMessages(ctx, s.cfg.Now(), s.cfg.RetentionDays, sweepBatch)
		if err != nil {
			return total, err
		}
		n := 0
		for _, m := range msgs {
			dm, err := s.cfg.Store.DeleteMessage(ctx, m.Tenant, m.Mailbox, m.ID)
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return total, err
			}
			if err := s.cfg.Blobs.Delete(dm.MediaKey); err != nil {
				s.cfg.Logger.Warn("retention: audio not deleted", "message", dm.ID, "err", err)
			}
			n++
		}
		total += n
		if len(msgs) < sweepBatch || n == 0 {
			break
		}
	}
	if total > 0 {
		s.cfg.Logger.Info("retention: expired messages deleted", "messages", total)
		s.auditSweep(ctx, "retention", total)
	}
	return total, nil
}

func (s *Service) auditSweep(ctx context.Context, op string, n int) {
	a := &store.GDPRAudit{At: s.cfg.Now(), Actor: "sweeper", Operation: op, Response: Success, Messages: n}
	if err := s.cfg.Store.AddGDPRAudit(context.WithoutCancel(ctx), a); err != nil {
		s.cfg.Logger.Error("gdpr audit not written", "operation", op, "err", err)
	}
}
