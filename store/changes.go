package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// ChangeKind names a change; the values are the event types of
// docs/api.md (events and webhooks).
type ChangeKind string

// The changes the store reports.
const (
	MessageCreated ChangeKind = "message_created"
	MessageUpdated ChangeKind = "message_updated"
	MessageDeleted ChangeKind = "message_deleted"
	MailboxCreated ChangeKind = "mailbox_created"
	MailboxUpdated ChangeKind = "mailbox_updated"
	MailboxDeleted ChangeKind = "mailbox_deleted"
)

// Change is one committed change. Every store operation that changes a
// mailbox or its counts writes exactly one per object, in its own
// transaction (the outbox, store/outbox.go), so MWI, events (SSE,
// webhooks) and mail all follow from the same log, on every instance.
type Change struct {
	// EventID is unique per change and the same on every instance that
	// reads it: receivers deduplicate by it.
	EventID     string `json:",omitempty"`
	Kind        ChangeKind
	Tenant      string
	Mailbox     string   // the mailbox number
	MailboxType string   // "personal" or "group"
	Members     []string // a group mailbox's members (whose phones also light)
	Message     *Message // for message changes
	MailboxObj  *Mailbox // for mailbox changes (the deleted one for MailboxDeleted)
	At          time.Time
	// Pos is the change's place in the log: a follower's cursor after it.
	Pos Cursor `json:"-"`
}

// Changes fans changes out to subscribers. Each subscriber has its own
// queue and goroutine: it gets the changes in log order, a slow one delays
// only itself (never a write, never another subscriber), and it may
// subscribe or cancel from its callback.
type Changes struct {
	mu   sync.Mutex
	next int
	subs map[int]*subscriber
}

type subscriber struct {
	f    func(Change)
	mu   sync.Mutex
	q    []Change
	busy int           // changes queued or in f (for Flush)
	wake chan struct{} // capacity 1: "the queue is not empty"
	done chan struct{} // closed by cancel
}

// NewChanges returns an empty bus.
func NewChanges() *Changes { return &Changes{subs: map[int]*subscriber{}} }

// Subscribe calls f, on a goroutine of its own, for every change published
// from now on, in order; cancel stops it (changes still queued are dropped;
// cancel does not wait for a call in progress, so f may call it).
func (c *Changes) Subscribe(f func(Change)) (cancel func()) {
	s := &subscriber{f: f, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.mu.Lock()
	id := c.next
	c.next++
	c.subs[id] = s
	c.mu.Unlock()
	go s.run()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			delete(c.subs, id)
			c.mu.Unlock()
			close(s.done)
		})
	}
}

func (s *subscriber) run() {
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
		}
		s.mu.Lock()
		batch := s.q
		s.q = nil
		s.mu.Unlock()
		for _, ch := range batch {
			select {
			case <-s.done:
				return
			default:
			}
			s.f(ch)
			s.mu.Lock()
			s.busy--
			s.mu.Unlock()
		}
	}
}

// Publish queues ch for every subscriber and returns at once.
func (c *Changes) Publish(ch Change) {
	if ch.At.IsZero() {
		ch.At = time.Now().UTC()
	}
	c.mu.Lock()
	subs := make([]*subscriber, 0, len(c.subs))
	for _, s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		s.q = append(s.q, ch)
		s.busy++
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Flush waits until every subscriber has handled every change published so
// far (or ctx ends): a server calls it after the last writes and before
// stopping the subscribers.
func (c *Changes) Flush(ctx context.Context) error {
	for {
		c.mu.Lock()
		idle := true
		for _, s := range c.subs {
			s.mu.Lock()
			idle = idle && s.busy == 0
			s.mu.Unlock()
		}
		c.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Notifying publishes on bus every change that st's log receives from now
// on — written through this process or, on PostgreSQL, by any instance —
// and returns st wrapped so that its own changes are synchronous: a change
// made through the wrapper returns once every subscriber has handled it
// (at most notifyWait later). That is what tests and single-process tools
// want; a server uses Follow, where no subscriber ever slows a write.
// Subscriber callbacks must not write through the wrapper (they would wait
// for themselves). Close stops the follower, then closes st.
func Notifying(st Store, bus *Changes) Store {
	// Take the head now, so that every change committed after Notifying
	// returns is published.
	head, err := st.ChangeHead(context.Background())
	if err != nil {
		slog.Warn("store: cannot read the change log head; following from the next change", "err", err)
	}
	n := &notifying{Store: st, bus: bus, c: head}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			sig := st.ChangeSignal()
			if err := n.pump(ctx); errors.Is(err, ErrClosed) {
				return
			}
			t := time.NewTimer(followPoll)
			select {
			case <-ctx.Done():
			case <-sig:
			case <-t.C:
			}
			t.Stop()
		}
	}()
	n.stop = func() { cancel(); <-done }
	return n
}

// Follow publishes on bus every change of log after from, until stop is
// called; stop publishes what was committed before it was called. A server
// takes from (ChangeHead) before anything writes, and calls Follow once
// every subscriber is subscribed, so that none misses the changes made
// during start-up.
func Follow(log ChangeLog, from Cursor, bus *Changes) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		publish := func(_ context.Context, ch Change) error {
			bus.Publish(ch)
			return nil
		}
		c, ok := follow(ctx, log, from, publish)
		if ok {
			// The last changes before stop: a bounded final read.
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _, _ = deliver(dctx, log, c, publish)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// notifyWait bounds how long a change through a Notifying store waits for
// the subscribers.
const notifyWait = 10 * time.Second

type notifying struct {
	Store
	bus  *Changes
	stop func()
	once sync.Once
	mu   sync.Mutex // guards c; held while publishing, so changes stay in order
	c    Cursor
}

// pump publishes the changes after n.c.
func (n *notifying) pump(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, _, err := deliver(ctx, n.Store, n.c, func(_ context.Context, ch Change) error {
		n.bus.Publish(ch)
		return nil
	})
	n.c = c
	return err
}

// settle publishes the change just made and waits for the subscribers.
func (n *notifying) settle(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyWait)
	defer cancel()
	if err := n.pump(ctx); err == nil {
		_ = n.bus.Flush(ctx)
	}
}

func (n *notifying) Close() error {
	n.once.Do(n.stop)
	return n.Store.Close()
}

func (n *notifying) CreateMailbox(ctx context.Context, m *Mailbox) error {
	err := n.Store.CreateMailbox(ctx, m)
	if err == nil {
		n.settle(ctx)
	}
	return err
}

func (n *notifying) UpdateMailbox(ctx context.Context, m *Mailbox) error {
	err := n.Store.UpdateMailbox(ctx, m)
	if err == nil {
		n.settle(ctx)
	}
	return err
}

func (n *notifying) DeleteMailbox(ctx context.Context, tenant, number string) ([]Message, error) {
	msgs, err := n.Store.DeleteMailbox(ctx, tenant, number)
	if err == nil {
		n.settle(ctx)
	}
	return msgs, err
}

func (n *notifying) CreateMessage(ctx context.Context, m *Message) error {
	err := n.Store.CreateMessage(ctx, m)
	if err == nil {
		n.settle(ctx)
	}
	return err
}

func (n *notifying) UpdateMessage(ctx context.Context, m *Message) error {
	err := n.Store.UpdateMessage(ctx, m)
	if err == nil {
		n.settle(ctx)
	}
	return err
}

func (n *notifying) DeleteMessage(ctx context.Context, tenant, mailbox, id string) (*Message, error) {
	m, err := n.Store.DeleteMessage(ctx, tenant, mailbox, id)
	if err == nil {
		n.settle(ctx)
	}
	return m, err
}

func (n *notifying) DeleteMessages(ctx context.Context, msgs []Message) ([]Message, error) {
	out, err := n.Store.DeleteMessages(ctx, msgs)
	if err == nil && len(out) > 0 {
		n.settle(ctx)
	}
	return out, err
}

func (n *notifying) ForgetCaller(ctx context.Context, f Forget) ([]Message, error) {
	msgs, err := n.Store.ForgetCaller(ctx, f)
	if err == nil {
		n.settle(ctx)
	}
	return msgs, err
}

func (n *notifying) UndoForget(ctx context.Context, tenant, e164, phoneHash string) ([]Message, error) {
	msgs, err := n.Store.UndoForget(ctx, tenant, e164, phoneHash)
	if err == nil {
		n.settle(ctx)
	}
	return msgs, err
}

// followPoll bounds how long a change can wait when a wake-up was missed
// (another SQLite process, a lost LISTEN connection).
const followPoll = time.Second

// ChangeRetention is how long the change log keeps a change: a durable
// consumer (Consume) that stays away longer misses the older ones.
const ChangeRetention = 7 * 24 * time.Hour

// follow calls f for every change after c until ctx ends, and returns the
// cursor it reached (ok false when the store closed). When f fails the
// change is retried after a pause. Once an hour it also prunes changes
// older than ChangeRetention (every instance does; deleting is idempotent).
func follow(ctx context.Context, log ChangeLog, c Cursor, f func(context.Context, Change) error) (Cursor, bool) {
	retry := 10 * time.Millisecond
	var pruned time.Time
	for ctx.Err() == nil {
		sig := log.ChangeSignal()
		var (
			pending bool
			err     error
		)
		c, pending, err = deliver(ctx, log, c, f)
		if errors.Is(err, ErrClosed) {
			return c, false
		}
		wait := followPoll
		switch {
		case err != nil:
			if ctx.Err() == nil {
				slog.Warn("store: following the change log", "err", err)
			}
			wait = min(retry, followPoll)
			retry *= 2
		case pending:
			wait = retry
			retry = min(2*retry, followPoll)
		default:
			retry = 10 * time.Millisecond
		}
		if time.Since(pruned) > time.Hour {
			pruned = time.Now()
			if _, err := log.PruneChanges(ctx, pruned.Add(-ChangeRetention)); err != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed) {
				slog.Warn("store: pruning the change log", "err", err)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-sig:
		case <-t.C:
		}
		t.Stop()
	}
	return c, true
}

// deliver passes the changes after c to f until the log has no more, and
// returns the cursor after the last change f accepted.
func deliver(ctx context.Context, log ChangeLog, c Cursor, f func(context.Context, Change) error) (Cursor, bool, error) {
	for {
		chs, next, pending, err := log.ChangesAfter(ctx, c, 100)
		if err != nil {
			return c, false, err
		}
		for _, ch := range chs {
			if !ch.Pos.After(c) {
				continue // never twice, whatever the read returned
			}
			if err := f(ctx, ch); err != nil {
				return c, true, err
			}
			c = ch.Pos
		}
		if next.After(c) {
			c = next
		}
		if len(chs) < 100 {
			return c, pending, nil
		}
	}
}
