package gdpr

import (
	"context"
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

// retention deletes expired messages with their change events, so MWI,
// events and mail see ordinary deletions. Rows go first, audio after: a
// crash in between leaves audio without a row, which the media orphan
// sweep removes, never a row without audio. Each transaction deletes
// retentionChunk rows (a deposit waits for at most one such commit) and
// the pace is held to SweepRate messages per second, so that a backlog of
// a million expired messages leaves the database to the deposits.
func (s *Service) retention(ctx context.Context) (int, error) {
	start := time.Now()
	total, err := s.expire(ctx, start)
	// What was deleted is logged and audited even when the sweep was cut
	// short (a stop, a lost lease, a database error).
	if total > 0 {
		s.cfg.Logger.Info("retention: expired messages deleted", "messages", total, "seconds", time.Since(start).Seconds())
		s.auditSweep(ctx, "retention", total)
	}
	if total >= tidyAfter {
		// PostgreSQL answers the MWI counts from the index only while the
		// visibility map is current; after a large delete autovacuum may
		// not pass for hours (BENCHMARKS.md, "MWI start-up").
		t0 := time.Now()
		if err := s.cfg.Store.TidyMessages(context.WithoutCancel(ctx)); err != nil {
			s.cfg.Logger.Warn("retention: tidying the messages table", "err", err)
		} else {
			s.cfg.Logger.Info("retention: messages table tidied", "seconds", time.Since(t0).Seconds())
		}
	}
	return total, err
}

// expire is retention's loop; it returns how many messages it deleted.
func (s *Service) expire(ctx context.Context, start time.Time) (int, error) {
	total, asked := 0, 0
	for ctx.Err() == nil {
		if held, err := s.holdSweep(ctx); err != nil {
			return total, err
		} else if !held {
			return total, nil
		}
		msgs, err := s.cfg.Store.ExpiredMessages(ctx, s.cfg.Now(), s.cfg.RetentionDays, sweepBatch)
		if err != nil {
			return total, err
		}
		last := len(msgs) < sweepBatch
		n := 0
		for len(msgs) > 0 && ctx.Err() == nil {
			chunk := msgs[:min(retentionChunk, len(msgs))]
			msgs = msgs[len(chunk):]
			gone, err := s.cfg.Store.DeleteMessages(ctx, chunk)
			if err != nil {
				return total, err
			}
			for _, m := range gone {
				if err := s.cfg.Blobs.Delete(m.MediaKey); err != nil {
					s.cfg.Logger.Warn("retention: audio not deleted", "message", m.ID, "err", err)
				}
			}
			n += len(gone)
			total += len(gone)
			asked += len(chunk)
			s.pace(ctx, start, asked)
		}
		if last || n == 0 {
			return total, nil
		}
	}
	return total, nil
}

// retentionChunk is how many messages one retention transaction deletes.
// A deposit waits for at most one such transaction on SQLite's single
// writer: at 500 messages/s over 10,000,000 rows, transactions of 100 took
// the deposits' commit p99 to ~40 ms, of 10 to ~8 ms (3 ms without the
// sweep), of 1 to ~65 ms (500 fsyncs a second). BENCHMARKS.md,
// "Retention sweep".
const retentionChunk = 10

// tidyAfter is how many deletions in one sweep call for TidyMessages.
const tidyAfter = 10_000

// pace sleeps until done messages are due at SweepRate since start.
func (s *Service) pace(ctx context.Context, start time.Time, done int) {
	if s.cfg.SweepRate <= 0 {
		return
	}
	wait := time.Until(start.Add(time.Duration(done) * time.Second / time.Duration(s.cfg.SweepRate)))
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (s *Service) auditSweep(ctx context.Context, op string, n int) {
	a := &store.GDPRAudit{At: s.cfg.Now(), Actor: "sweeper", Operation: op, Response: Success, Messages: n}
	if err := s.cfg.Store.AddGDPRAudit(context.WithoutCancel(ctx), a); err != nil {
		s.cfg.Logger.Error("gdpr audit not written", "operation", op, "err", err)
	}
}
