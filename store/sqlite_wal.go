package store

import (
	"context"
	"database/sql"
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
//   - every walEvery it runs a TRUNCATE checkpoint anyway;
//   - every walPoll it copies what the WAL holds into the database with a
//     PASSIVE checkpoint on a connection of its own. The writer's own
//     automatic checkpoint is off: SQLite runs it inside the commit that
//     crosses 1,000 pages, so that commit, often a deposit's, paid for
//     copying 4 MB of pages scattered by others' writes (a retention sweep
//     took the deposits' commit p99 from 5 to 25 ms that way). A passive
//     checkpoint runs beside the writer and the readers and waits for
//     neither.
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
	cp     *sql.DB // one connection for the passive checkpoints
	cancel context.CancelFunc
	done   sync.WaitGroup
	kick   chan struct{}
}

// startWALKeeper starts the keeper; cp is a connection pool of one to the
// same file for its passive checkpoints (closed by stopWALKeeper).
func (s *sqliteStore) startWALKeeper(cp *sql.DB) {
	ctx, cancel := context.WithCancel(context.Background())
	k := &walKeeper{s: s, cp: cp, cancel: cancel, kick: make(chan struct{}, 1)}
	s.wal = k
	if err := s.writerPragmas(ctx); err != nil {
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
		s.wal.cp.Close()
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

// writerPragmas sets the writer connection's WAL settings. They are per
// connection: set them again in case database/sql replaced it.
func (s *sqliteStore) writerPragmas(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA journal_size_limit = %d", walSizeLimit)); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 0")
	return err
}

// passive copies the WAL's committed frames into the database without
// blocking the writer or the readers (what readers still use stays).
func (k *walKeeper) passive(ctx context.Context) error {
	var busy, logFrames, done int
	if err := k.cp.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &done); err != nil {
		return fmt.Errorf("store: passive checkpoint %s: %w", k.s.path, err)
	}
	return nil
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
		size := k.s.walSize()
		if size > walSizeLimit || (size > 0 && time.Since(last) >= walEvery) {
			if err := k.s.Checkpoint(ctx); err != nil && ctx.Err() == nil {
				slog.Warn("sqlite: WAL checkpoint", "db", k.s.path, "wal_bytes", size, "err", err)
				continue
			}
			last = time.Now()
		} else if size > 0 {
			if err := k.passive(ctx); err != nil && ctx.Err() == nil {
				slog.Warn("sqlite: WAL checkpoint", "db", k.s.path, "wal_bytes", size, "err", err)
			}
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
	return s.writerPragmas(ctx)
}
