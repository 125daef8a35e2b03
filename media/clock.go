package media

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// clockTick is the period of the shared pacing clock. Every ptime used in
// practice (10, 20, 30, 40, 60 ms) is a multiple of it.
const clockTick = 10 * time.Millisecond

// clockYieldEvery is how many players a tick serves between two yields of
// the processor.
const clockYieldEvery = 256

// ticker is what the clock drives: one call per tick it asked for, with
// the tick index (time since the clock started, in ticks, so dropped
// ticks show up). It returns the next tick it needs (at most idx+1 for
// every tick); wake brings that forward to the next tick.
type ticker interface {
	tick(idx uint64) (next uint64)
}

// clock is the one pacing goroutine for all players: a single
// time.Ticker instead of one per call, so a thousand calls cost one timer.
// A call that has nothing to send until later (a recording, which sends
// one comfort noise packet in 16 ticks) is not touched in between: its
// next tick is kept in the clock's own array, so thousands of idle calls
// cost a scan of that array, not a visit to each call's memory.
type clock struct {
	mu               sync.Mutex
	adds, dels, woke []ticker // changes for the next tick, guarded by mu

	// Owned by the run goroutine.
	subs  []clockSub
	index map[ticker]int

	start time.Time
	stop  chan struct{}
	done  chan struct{}
	// flush, when set, runs after every tick's round (the shared port's
	// batched send).
	flush func()
	// late is a moving average (1/16 per tick) of how long after its
	// ideal time each tick finished sending, in nanoseconds: the media
	// engine's own measure of overload.
	late atomic.Int64
}

type clockSub struct {
	t   ticker
	due uint64 // the tick index t asked for next
}

func newClock(flush func()) *clock {
	c := &clock{start: time.Now(), stop: make(chan struct{}), done: make(chan struct{}), flush: flush,
		index: map[ticker]int{}}
	go c.run()
	return c
}

func (c *clock) run() {
	defer close(c.done)
	t := time.NewTicker(clockTick)
	defer t.Stop()
	var adds, dels, woke []ticker
	for {
		select {
		case <-c.stop:
			return
		case now := <-t.C:
			idx := uint64((now.Sub(c.start) + clockTick/2) / clockTick)
			c.mu.Lock()
			adds, c.adds = c.adds, adds[:0]
			dels, c.dels = c.dels, dels[:0]
			woke, c.woke = c.woke, woke[:0]
			c.mu.Unlock()
			c.apply(adds, dels, woke)
			ticked := 0
			for i := range c.subs {
				sub := &c.subs[i]
				if sub.due > idx {
					continue
				}
				sub.due = sub.t.tick(idx)
				if ticked++; ticked%clockYieldEvery == 0 {
					// A round over thousands of calls holds the processor
					// for milliseconds: send what is queued and let
					// signalling run in between (INVITE→200 under load).
					if c.flush != nil {
						c.flush()
					}
					runtime.Gosched()
				}
			}
			if c.flush != nil {
				c.flush()
			}
			late := int64(time.Since(c.start.Add(time.Duration(idx) * clockTick)))
			avg := c.late.Load()
			c.late.Store(avg + (late-avg)/16)
		}
	}
}

// apply makes the changes asked since the last tick, in the order they
// can be asked: a ticker is added, woken, removed. The slices are cleared
// for reuse (no ticker is kept alive by them).
func (c *clock) apply(adds, dels, woke []ticker) {
	for i, t := range adds {
		c.index[t] = len(c.subs)
		c.subs = append(c.subs, clockSub{t: t})
		adds[i] = nil
	}
	for i, t := range woke {
		if j, ok := c.index[t]; ok {
			c.subs[j].due = 0
		}
		woke[i] = nil
	}
	for i, t := range dels {
		if j, ok := c.index[t]; ok {
			last := len(c.subs) - 1
			c.subs[j] = c.subs[last]
			c.index[c.subs[j].t] = j
			c.subs[last] = clockSub{}
			c.subs = c.subs[:last]
			delete(c.index, t)
		}
		dels[i] = nil
	}
}

// lateness is the moving average of how late ticks finish.
func (c *clock) lateness() time.Duration { return time.Duration(c.late.Load()) }

// add starts ticking t from the next tick.
func (c *clock) add(t ticker) {
	c.mu.Lock()
	c.adds = append(c.adds, t)
	c.mu.Unlock()
}

// wake has t ticked at the next tick, whatever tick it asked for: its
// state changed (a playback started) after its last tick.
func (c *clock) wake(t ticker) {
	c.mu.Lock()
	c.woke = append(c.woke, t)
	c.mu.Unlock()
}

// remove deregisters t at the next tick. A tick already in progress or the
// next one may still call t; tickers ignore ticks after they stop.
func (c *clock) remove(t ticker) {
	c.mu.Lock()
	c.dels = append(c.dels, t)
	c.mu.Unlock()
}

func (c *clock) close() {
	close(c.stop)
	<-c.done
}
