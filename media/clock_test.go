package media

import (
	"math"
	"sync"
	"testing"
	"time"
)

// countTicker asks for a tick every `every` ticks (0: never) and counts
// the ticks it gets.
type countTicker struct {
	mu    sync.Mutex
	every uint64
	n     int
	got   chan uint64
}

func (c *countTicker) tick(idx uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	select {
	case c.got <- idx:
	default:
	}
	if c.every == 0 {
		return math.MaxUint64
	}
	return idx + c.every
}

func (c *countTicker) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func newCountTicker(every uint64) *countTicker {
	return &countTicker{every: every, got: make(chan uint64, 1)}
}

// next waits for the ticker's next tick.
func (c *countTicker) next(t *testing.T) uint64 {
	t.Helper()
	select {
	case idx := <-c.got:
		return idx
	case <-time.After(10 * time.Second):
		t.Fatal("no tick")
		return 0
	}
}

// The clock ticks each ticker at the tick it asked for and not in
// between; wake brings the next tick forward; remove stops the ticks.
func TestClockDue(t *testing.T) {
	c := newClock(nil)
	defer c.close()
	each, tenth, never := newCountTicker(1), newCountTicker(10), newCountTicker(0)
	for _, tk := range []*countTicker{each, tenth, never} {
		c.add(tk)
	}
	first := tenth.next(t)
	if got := tenth.next(t); got < first+10 {
		t.Errorf("asked for tick %d, ticked at %d", first+10, got)
	}
	never.next(t) // its first tick
	for each.count() < 60 {
		each.next(t)
	}
	if n, m := tenth.count(), each.count(); n > m/10+2 {
		t.Errorf("a ticker asking every 10 ticks got %d ticks while one asking every tick got %d", n, m)
	}
	if n := never.count(); n != 1 {
		t.Errorf("a ticker asking for no more ticks got %d", n)
	}
	round := func() { // a whole tick after this call: never is woken and ticked
		select {
		case <-never.got:
		default:
		}
		c.wake(never)
		never.next(t)
	}
	round()
	c.remove(each)
	round() // the removal is applied at the start of this tick
	n := each.count()
	for range 3 {
		round()
	}
	if each.count() != n {
		t.Error("a removed ticker is still ticked")
	}
}
