package mwi

// The scheduler: one min-heap of entries keyed by the time each next needs
// attention (its pending NOTIFY or its expiry), run by one goroutine.

import (
	"container/heap"
	"context"
	"time"
)

// Entries and scheduling (all with m.mu held)

func (m *Notifier) addLocked(e *mwiEntry) {
	e.hidx = -1
	e.since = time.Now()
	if e.sub != nil {
		m.subs[e.key] = e
	} else {
		m.targets[e.key] = e
	}
	set := m.byMB[e.mb]
	if set == nil {
		set = map[*mwiEntry]struct{}{}
		m.byMB[e.mb] = set
	}
	set[e] = struct{}{}
}

func (m *Notifier) removeLocked(e *mwiEntry) {
	if e.gone {
		return
	}
	e.gone = true
	if e.hidx >= 0 {
		heap.Remove(&m.heap, e.hidx)
	}
	if e.sub != nil {
		if m.subs[e.key] == e {
			delete(m.subs, e.key)
		}
		delete(m.dirtyCSeq, e.sub.ID)
	} else if m.targets[e.key] == e {
		delete(m.targets, e.key)
	}
	if set := m.byMB[e.mb]; set != nil {
		delete(set, e)
		if len(set) == 0 {
			delete(m.byMB, e.mb)
		}
	}
}

// kickLocked says e's phone may need a NOTIFY: at the end of its window, or
// at once when immediate (a new subscription, a refresh, a restart).
func (m *Notifier) kickLocked(e *mwiEntry, immediate bool, changedAt time.Time) {
	if e.gone {
		return
	}
	if e.changedAt.IsZero() {
		e.changedAt = changedAt
	}
	e.dirty = true
	if immediate {
		e.force = true
		e.notBefore = time.Time{}
	}
	if e.inflight {
		return // rescheduled when the NOTIFY in flight is answered
	}
	m.scheduleLocked(e, time.Now())
}

// scheduleLocked puts e in the heap at the next time it needs attention:
// its pending NOTIFY or its expiry.
func (m *Notifier) scheduleLocked(e *mwiEntry, now time.Time) {
	var at time.Time
	if e.dirty {
		due := now
		if !e.force && e.term == "" {
			if w := e.lastSent.Add(m.window); w.After(due) {
				due = w
			}
		}
		if e.notBefore.After(due) {
			due = e.notBefore
		}
		e.due, at = due, due
	}
	if e.sub != nil && e.term == "" && (at.IsZero() || e.sub.ExpiresAt.Before(at)) {
		at = e.sub.ExpiresAt
	}
	if at.IsZero() {
		if e.hidx >= 0 {
			heap.Remove(&m.heap, e.hidx)
		}
		return
	}
	e.at = at
	if e.hidx >= 0 {
		heap.Fix(&m.heap, e.hidx)
	} else {
		heap.Push(&m.heap, e)
	}
	if e.hidx == 0 {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// run is the scheduler.
func (m *Notifier) run() {
	defer m.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		m.mu.Lock()
		now := time.Now()
		var ready []*mwiEntry
		for len(m.heap) > 0 && !m.heap[0].at.After(now) {
			e := heap.Pop(&m.heap).(*mwiEntry)
			if e.sub != nil && e.term == "" && !now.Before(e.sub.ExpiresAt) {
				e.term, e.endReason, e.dirty, e.force = reasonTimeout, "expired", true, true
			}
			if e.dirty && (e.term != "" || !e.due.After(now)) {
				e.inflight = true
				ready = append(ready, e)
			} else {
				m.scheduleLocked(e, now)
			}
		}
		wait := time.Hour
		if len(m.heap) > 0 {
			wait = time.Until(m.heap[0].at)
		}
		m.mu.Unlock()
		for i, e := range ready {
			if !m.dispatch(e) {
				m.mu.Lock()
				for _, r := range ready[i:] {
					r.inflight = false
				}
				m.mu.Unlock()
				return
			}
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-m.wake:
		case <-m.done:
			return
		}
	}
}

// dispatch sends e's NOTIFY on its own goroutine, within the in-flight
// bound; false when the notifier stopped.
func (m *Notifier) dispatch(e *mwiEntry) bool {
	select {
	case m.sem <- struct{}{}:
	case <-m.done:
		return false
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() { <-m.sem }()
		defer func() {
			if r := recover(); r != nil {
				m.srv.Recovered("notify", r)
			}
		}()
		m.send(e)
	}()
	return true
}

// reserveCSeqLocked makes sure the CSeq saved for e's subscription stays
// ahead of the ones sent (see cseqReserve): a new owner starts above it.
func (m *Notifier) reserveCSeqLocked(e *mwiEntry) {
	if e.sub.LocalCSeq+cseqReserve/2 <= e.savedCSeq {
		return
	}
	e.savedCSeq = e.sub.LocalCSeq + cseqReserve
	m.dirtyCSeq[e.sub.ID] = e.savedCSeq
}

// flusher saves the CSeqs of the NOTIFYs sent, once a second.
func (m *Notifier) flusher() {
	defer m.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			m.flushCSeqs()
		case <-m.done:
			return
		}
	}
}

func (m *Notifier) flushCSeqs() {
	m.mu.Lock()
	if len(m.dirtyCSeq) == 0 {
		m.mu.Unlock()
		return
	}
	batch := m.dirtyCSeq
	m.dirtyCSeq = map[string]uint32{}
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.st.SetMWILocalCSeqs(ctx, batch); err != nil {
		m.log.Warn("saving NOTIFY CSeqs", "err", err)
		m.mu.Lock()
		for id, c := range batch {
			if _, ok := m.dirtyCSeq[id]; !ok {
				m.dirtyCSeq[id] = c
			}
		}
		m.mu.Unlock()
	}
}

// ---------------------------------------------------------------------------
// The heap

type entryHeap []*mwiEntry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*mwiEntry)
	e.hidx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.hidx = -1
	return e
}
