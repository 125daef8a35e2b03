package store

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// DefaultLease is how long a consumer's claim lasts without renewal: after
// an instance dies, another takes over its consumers within this time.
const DefaultLease = 30 * time.Second

// Consume calls f for every change of the log, in order, from the durable
// cursor named consumer, until ctx ends. The cursor survives restarts, so
// changes committed while no instance consumed (a crash between commit and
// delivery, a late start) are delivered when one does. Across instances
// that share the database, one at a time holds the consumer (a lease that
// expires when its holder dies), so each change goes to f once — or, when
// an instance dies after f and before its cursor was saved, again: f must
// be idempotent (Change.EventID is stable). A change that f fails is
// retried after a pause, so later ones wait behind it.
func Consume(ctx context.Context, log ChangeLog, consumer string, lease time.Duration, f func(context.Context, Change) error) {
	consume(ctx, log, consumer, lease, nil, f)
}

// ConsumeFrom is Consume for a consumer that must not replay history when
// it is new (webhooks: a first start, or a migration that wrote the log
// before the cluster ran, must not send every past event): a consumer
// without a saved position starts at start, which the caller reads with
// ChangeHead before anything it must see can be written.
func ConsumeFrom(ctx context.Context, log ChangeLog, consumer string, lease time.Duration, start Cursor, f func(context.Context, Change) error) {
	consume(ctx, log, consumer, lease, &start, f)
}

func consume(ctx context.Context, log ChangeLog, consumer string, lease time.Duration, start *Cursor, f func(context.Context, Change) error) {
	if lease <= 0 {
		lease = DefaultLease
	}
	owner := NewMessageID() // this process's claim; unique across instances
	// At a clean stop the lease is given back, so that a restarted process
	// (or another instance) takes over at once, not when it runs out.
	defer releaseConsumer(log, consumer, owner)
	retry := 10 * time.Millisecond
	for ctx.Err() == nil {
		sig := log.ChangeSignal()
		wait := lease / 3
		c, ok, err := log.ClaimConsumer(ctx, consumer, owner, lease)
		if err == nil && ok && start != nil && c == (Cursor{}) && *start != (Cursor{}) {
			err = log.AdvanceConsumer(ctx, consumer, owner, *start, lease)
			c = *start
		}
		if err == nil && ok {
			var more bool
			c, more, err = consumeOnce(ctx, log, consumer, owner, c, lease, f)
			if err == nil && more {
				wait = retry
				retry = min(2*retry, followPoll)
			} else if err == nil {
				retry = 10 * time.Millisecond
				wait = min(wait, followPoll)
			}
		}
		if errors.Is(err, ErrClosed) {
			return
		}
		if err != nil && ctx.Err() == nil {
			if !errors.Is(err, ErrLeaseLost) {
				slog.Warn("store: change consumer", "consumer", consumer, "err", err)
			}
			wait = min(retry, lease/3)
			retry = min(2*retry, lease/3)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-sig:
		case <-t.C:
		}
		t.Stop()
	}
}

// consumeOnce delivers one page after c and saves the cursor after the
// last change f accepted. more is true when more changes may be waiting.
func consumeOnce(ctx context.Context, log ChangeLog, consumer, owner string, c Cursor, lease time.Duration,
	f func(context.Context, Change) error) (Cursor, bool, error) {
	const page = 100
	chs, _, pending, err := log.ChangesAfter(ctx, c, page)
	if err != nil {
		return c, false, err
	}
	start := c
	var ferr error
	for _, ch := range chs {
		if !ch.Pos.After(c) {
			continue
		}
		if ferr = f(ctx, ch); ferr != nil {
			break
		}
		c = ch.Pos
	}
	if c != start {
		// Saved even when ctx just ended: f already handled these changes.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := log.AdvanceConsumer(sctx, consumer, owner, c, lease); err != nil {
			return c, false, err
		}
	}
	if ferr != nil {
		return c, false, ferr
	}
	return c, pending || len(chs) == page, nil
}

// releaseConsumer ends owner's lease of consumer, if it holds it, keeping
// the cursor.
func releaseConsumer(log ChangeLog, consumer, owner string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, ok, err := log.ClaimConsumer(ctx, consumer, owner, time.Second)
	if err != nil || !ok {
		return
	}
	_ = log.AdvanceConsumer(ctx, consumer, owner, c, -time.Second)
}
