package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Group commit of message rows on SQLite (docs/storage.md, "Database").
//
// Deposits that end together each want one small transaction on the one
// write connection; every transaction writes the same few pages (the
// messages table and its indexes, the change log and its indexes) to the
// WAL again. The committer takes what is waiting and inserts it in one
// transaction, one savepoint per row, so that the pages are written once
// for the batch and each caller still gets its own answer: a duplicate or a
// deleted mailbox fails only its row. A lone caller is committed at once;
// only what arrives while a transaction runs waits, for that transaction.

// maxGroup bounds one transaction's rows, so that a burst does not make
// the first callers wait for the last.
const maxGroup = 128

// groupReq is one CreateMessage waiting for the committer.
type groupReq struct {
	ctx   context.Context
	msg   *Message
	where string
	done  chan error // buffered 1
}

// groupCommitter owns the message inserts of one SQLite store.
type groupCommitter struct {
	s      *sqlStore
	queue  chan *groupReq // unbuffered: a send succeeds only when the committer takes it
	stop   chan struct{}
	exited chan struct{} // closed when the committer has returned
	once   sync.Once
	// largest is the most rows one transaction held (tests).
	largest atomic.Int64
}

func (s *sqlStore) startGroupCommit() {
	g := &groupCommitter{s: s, queue: make(chan *groupReq), stop: make(chan struct{}), exited: make(chan struct{})}
	s.group = g
	go g.run()
}

// stopGroupCommit lets the running transaction finish; callers still
// waiting to be taken get ErrClosed.
func (s *sqlStore) stopGroupCommit() {
	if g := s.group; g != nil {
		g.once.Do(func() { close(g.stop) })
		<-g.exited
	}
}

// submit hands msg to the committer and waits for its outcome. The
// context counts until the row is taken into a transaction; after that
// the caller waits for the commit (a few milliseconds) so that the answer
// says what happened to the row.
func (g *groupCommitter) submit(ctx context.Context, msg *Message, where string) error {
	r := &groupReq{ctx: ctx, msg: msg, where: where, done: make(chan error, 1)}
	select {
	case g.queue <- r:
	case <-g.exited:
		return fmt.Errorf("store: create message %s: %w", where, ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("store: create message %s: %w", where, ctx.Err())
	}
	return <-r.done
}

func (g *groupCommitter) run() {
	defer close(g.exited)
	batch := make([]*groupReq, 0, maxGroup)
	for {
		select {
		case <-g.stop:
			return
		case r := <-g.queue:
			batch = append(batch[:0], r)
		}
		// Whoever is blocked sending now joins this transaction.
	more:
		for len(batch) < maxGroup {
			select {
			case r := <-g.queue:
				batch = append(batch, r)
			default:
				break more
			}
		}
		g.commit(batch)
		clear(batch)
	}
}

// commit inserts the batch in one transaction and answers every caller.
// Statements run under a context of their own: go-sqlite3 interrupts a
// connection whose statement's context ends, and an interrupted statement
// rolls back the whole transaction, which would fail the other callers'
// rows. A caller whose context has ended before its row is skipped.
func (g *groupCommitter) commit(batch []*groupReq) {
	ctx := context.Background()
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- fmt.Errorf("store: create message %s: %w", r.where, err)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if int64(len(live)) > g.largest.Load() {
		g.largest.Store(int64(len(live)))
	}
	if len(live) == 1 {
		// Alone: no savepoint needed, the transaction is the row's.
		r := live[0]
		r.done <- g.s.createMessageTx(ctx, r.msg, r.where)
		return
	}
	errs := make([]error, len(live))
	err := func() error {
		tx, err := g.s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for i, r := range live {
			var txErr error
			if errs[i], txErr = g.s.insertInSavepoint(ctx, tx, r.msg, r.where); txErr != nil {
				return txErr
			}
		}
		return g.s.commitChanges(tx)
	}()
	if err != nil {
		// Nothing of the batch is stored: each row gets a transaction of
		// its own, so that each caller has the error of its own row.
		for _, r := range live {
			r.done <- g.s.createMessageTx(ctx, r.msg, r.where)
		}
		return
	}
	for i, r := range live {
		r.done <- errs[i]
	}
}

// insertInSavepoint inserts one row of a batch; on failure only that row's
// statements are undone (rowErr). txErr means the transaction itself is in
// doubt: the batch is abandoned and its rows retried one by one.
func (s *sqlStore) insertInSavepoint(ctx context.Context, tx *sqlTx, msg *Message, where string) (rowErr, txErr error) {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT msg`); err != nil {
		return nil, fmt.Errorf("savepoint: %w", err)
	}
	if rowErr = s.insertMessage(ctx, tx, msg, where); rowErr != nil {
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO msg`); err != nil {
			return nil, fmt.Errorf("rollback to savepoint: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `RELEASE msg`); err != nil {
		return nil, fmt.Errorf("release savepoint: %w", err)
	}
	return rowErr, nil
}
