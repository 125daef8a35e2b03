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

// ticker is what the clock drives: one call per tick with the tick index
// (time since the clock started, in ticks, so dropped ticks show up).
type ticker interface{ tick(idx uint64) }

// clock is the one pacing goroutine for all players: a single
// time.Ticker instead of one per call, so a thousand calls cost one timer.
type clock struct {
	mu    sync.Mutex
	subs  []ticker
	snap  []ticker // reused copy, so ticks run without the lock
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

func newClock(flush func()) *clock {
	c := &clock{start: time.Now(), stop: make(chan struct{}), done: make(chan struct{}), flush: flush}
	go c.run()
	return c
}

func (c *clock) run() {
	defer close(c.done)
	t := time.NewTicker(clockTick)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-t.C:
			idx := uint64((now.Sub(c.start) + clockTick/2) / clockTick)
			c.mu.Lock()
			c.snap = append(c.snap[:0], c.subs...)
			c.mu.Unlock()
			for i, s := range c.snap {
				s.tick(idx)
				c.snap[i] = nil
				if i%clockYieldEvery == clockYieldEvery-1 {
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

// lateness is the moving average of how late ticks finish.
func (c *clock) lateness() time.Duration { return time.Duration(c.late.Load()) }

func (c *clock) add(t ticker) {
	c.mu.Lock()
	c.subs = append(c.subs, t)
	c.mu.Unlock()
}

// remove deregisters t. A tick already in progress may still call t once;
// tickers ignore ticks after they stop.
func (c *clock) remove(t ticker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.subs {
		if s == t {
			last := len(c.subs) - 1
			c.subs[i] = c.subs[last]
			c.subs[last] = nil
			c.subs = c.subs[:last]
			return
		}
	}
}

func (c *clock) close() {
	close(c.stop)
	<-c.done
}
