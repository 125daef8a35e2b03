package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// The write-ahead log is bounded (docs/api-limits.md, "Database"):
//
//   - journal_size_limit makes SQLite truncate the WAL file to
//     walSizeLimit whenever it restarts it after a checkpoint, instead of
//     keeping it at its largest size forever;
//   - the keeper looks at the WAL file every walPoll and, when it is larger
//     than walSizeLimit (after a big transaction such as a GDPR request of
//     many messages), runs a TRUNCATE checkpoint, which copies everything
//     into the database and empties the WAL;
//   - every walEvery it runs a TRUNCATE checkpoint anyway.
//
// A single transaction still needs WAL room for the pages it changes (no
// checkpoint can run inside it); the keeper bounds what is left after it.
const (
	walSizeLimit = 16 << 20
	walPoll      = time.Second
	walEvery     = 5 * time.Minute
)

// walKeeper checkpoints one database's WAL in the background.
type walKeeper struct {
	s      *sqliteStore
	cancel context.CancelFunc
	done   sync.WaitGroup
	kick   chan struct{}
}

func (s *sqliteStore) startWALKeeper() {
	ctx, cancel := context.WithCancel(context.Background())
	k := &walKeeper{s: s, cancel: cancel, kick: make(chan struct{}, 1)}
	s.wal = k
	if err := k.limit(ctx); err != nil {
		slog.Warn("sqlite: journal_size_limit", "db", s.path, "err", err)
	}
	k.done.Add(1)
	go k.run(ctx)
}

// stopWALKeeper ends the keeper; Close then checkpoints through the last
// connection.
func (s *sqliteStore) stopWALKeeper() {
	if s.wal != nil {
		s.wal.cancel()
		s.wal.done.Wait()
	}
}

// checkpointSoon asks for a look at the WAL now (after a big transaction).
func (s *sqliteStore) checkpointSoon() {
	if s.wal != nil {
		select {
		case s.wal.kick <- struct{}{}:
		default:
		}
	}
}

func (k *walKeeper) limit(ctx context.Context) error {
	_, err := k.s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA journal_size_limit = %d", walSizeLimit))
	return err
}

func (k *walKeeper) run(ctx context.Context) {
	defer k.done.Done()
	poll := time.NewTicker(walPoll)
	defer poll.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		case <-k.kick:
		}
		if size := k.s.walSize(); size > walSizeLimit || (size > 0 && time.Since(last) >= walEvery) {
			if err := k.s.Checkpoint(ctx); err != nil && ctx.Err() == nil {
				slog.Warn("sqlite: WAL checkpoint", "db", k.s.path, "wal_bytes", size, "err", err)
				continue
			}
			last = time.Now()
		}
	}
}

// walSize is the size of the WAL file (0 when absent).
func (s *sqliteStore) walSize() int64 {
	fi, err := os.Stat(s.path + "-wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Checkpoint copies the WAL into the database and truncates it. Readers
// in the middle of a query can keep it from finishing (busy); it is
// retried at the next poll.
func (s *sqliteStore) Checkpoint(ctx context.Context) error {
	var busy, logFrames, done int
	if err := s.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done); err != nil {
		return fmt.Errorf("store: checkpoint %s: %w", s.path, err)
	}
	if busy != 0 {
		return fmt.Errorf("store: checkpoint %s: busy (%d of %d frames copied)", s.path, done, logFrames)
	}
	// The limit is per connection: set it again in case database/sql
	// replaced the writer's connection.
	_, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA journal_size_limit = %d", walSizeLimit))
	return err
}
