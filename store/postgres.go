package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Options tunes a store's connection pool. Zero values pick defaults; SQLite
// ignores them (it has one writer and a reader per core).
type Options struct {
	MaxConns        int           // PostgreSQL pool size; 0 = 4 per core, at least 10
	MaxIdleConns    int           // idle connections kept; 0 = MaxConns
	ConnMaxLifetime time.Duration // close connections older than this; 0 = never
	Logger          *slog.Logger  // nil = slog.Default()
}

// Advisory lock keys (arbitrary constants, unique to this program).
const (
	pgMigrateLock int64 = 0x766d5f6d696772 // "vm_migr"
	pgTenantLock  int64 = 0x766d5f74656e74 // "vm_tent"
)

// pgChannel is the LISTEN/NOTIFY channel that wakes followers of the change
// log on every instance; the table stays the source of truth.
const pgChannel = "voicemail_changes"

// pgConflict reports a unique violation (SQLSTATE 23505).
func pgConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// isConflict reports a UNIQUE or PRIMARY KEY violation on either backend.
func isConflict(err error) bool { return isSQLiteConflict(err) || pgConflict(err) }

func openPostgres(ctx context.Context, dsn string, o Options) (*sqlStore, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN; never echo a password.
		return nil, errors.New("store: postgres: invalid connection string (want postgres://user:password@host:port/database?sslmode=…)")
	}
	// Where, for messages: never the password.
	where := "postgres://" + net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))) + "/" + cfg.Database
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}

	pool := stdlib.OpenDB(*cfg)
	n := o.MaxConns
	if n <= 0 {
		n = max(10, 4*runtime.GOMAXPROCS(0))
	}
	idle := o.MaxIdleConns
	if idle <= 0 || idle > n {
		idle = n
	}
	pool.SetMaxOpenConns(n)
	pool.SetMaxIdleConns(idle)
	pool.SetConnMaxLifetime(o.ConnMaxLifetime)

	d := &sqlDB{DB: pool, d: dialectPostgres}
	s := &sqlStore{w: d, r: d, d: dialectPostgres, path: where, outbox: newOutboxWake()}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.listen(lctx, cfg, log)
	}()
	s.stopListen = func() { cancel(); <-done }
	return s, nil
}

// listen holds one connection with LISTEN on pgChannel and wakes the local
// followers on every notification. After a lost connection it reconnects
// and wakes them anyway, since notifications sent meanwhile are gone.
func (s *sqlStore) listen(ctx context.Context, cfg *pgx.ConnConfig, log *slog.Logger) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, cfg, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return
		}
		log.Warn("store: change notifications lost; reconnecting", "db", s.path, "err", err)
		s.outbox.signal()
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *sqlStore) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	connected()
	s.outbox.signal() // anything committed before LISTEN took effect
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		s.outbox.signal()
	}
}
