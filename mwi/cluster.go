package mwi

// Several instances on one store (docs/mwi.md): each subscription is owned
// by the instance that took its SUBSCRIBE, which alone sends its NOTIFYs;
// the unsolicited targets are notified by the one instance that holds the
// targetsLease. Every heartbeat an instance renews its own liveness,
// claims the subscriptions of instances that stopped or died, forgets those
// another instance took from it, and claims or renews the lease.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"time"

	"github.com/vmserver/voicemail/store"
)

const (
	// targetsLease is the cluster lease of the unsolicited NOTIFYs.
	targetsLease = "mwi-targets"
	// defaultHeartbeat with a TTL of three heartbeats puts a dead
	// instance's subscriptions in another's hands within 8 s.
	defaultHeartbeat = 2 * time.Second
)

// DefaultInstanceID is the host name and a random suffix: unique per
// process, so that a restarted process is a new instance (the old one's
// subscriptions are claimed like any dead instance's).
func DefaultInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "voicemail"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// Instance is the name this notifier owns subscriptions under.
func (m *Notifier) Instance() string { return m.instance }

// beat renews the heartbeat on a goroutine of its own: slow claims must
// not make the others think this instance dead.
func (m *Notifier) beat() {
	defer m.wg.Done()
	t := time.NewTicker(m.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			ctx, cancel := context.WithTimeout(m.ctx, m.ttl)
			if err := m.st.HeartbeatInstance(ctx, m.instance, m.ttl); err != nil && ctx.Err() == nil {
				m.log.Warn("mwi heartbeat", "err", err)
			}
			cancel()
		case <-m.done:
			return
		}
	}
}

// cluster claims, drops and holds, once a heartbeat.
func (m *Notifier) cluster() {
	defer m.wg.Done()
	t := time.NewTicker(m.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			m.clusterTick()
		case <-m.done:
			return
		}
	}
}

func (m *Notifier) clusterTick() {
	ctx, cancel := context.WithTimeout(m.ctx, m.ttl)
	defer cancel()
	m.dropMoved(ctx)
	m.claim(ctx)
	m.targetsTick(ctx)
}

// dropMoved forgets the subscriptions this instance no longer owns:
// a refresh took one to another instance, or the others found this one
// dead (it could not renew its heartbeat) and claimed them. No NOTIFY and
// no store write: they are the new owner's.
//
// The full list of owned ids costs a fraction of a second of CPU at
// 100,000 subscriptions, every heartbeat; so most heartbeats first count
// them. A move lowers the stored count below what memory holds, so equal
// counts (memory unchanged while the store was asked) mean nothing moved,
// unless a row of ours is stored that memory no longer holds (a
// subscription's deletion that failed) and hides a move by making up for
// it: the full list every fullCheckEvery heartbeats catches that case.
func (m *Notifier) dropMoved(ctx context.Context) {
	m.ticks++
	if m.ticks%fullCheckEvery != 0 {
		m.mu.Lock()
		before := len(m.subs)
		m.mu.Unlock()
		n, err := m.st.CountOwnedMWISubscriptions(ctx, m.instance)
		m.mu.Lock()
		after := len(m.subs)
		m.mu.Unlock()
		if err == nil && n == before && n == after {
			return
		}
	}
	asked := time.Now()
	ids, err := m.st.OwnedMWISubscriptionIDs(ctx, m.instance)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("mwi: listing owned subscriptions", "err", err)
		}
		return
	}
	owned := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		owned[id] = struct{}{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.subs {
		// An entry newer than the question, or still being stored, may not
		// be in the answer yet; one that is ending (a fetch, a
		// termination) is not stored.
		if e.term != "" || e.inflight || !e.since.Before(asked) {
			continue
		}
		if _, ok := owned[e.sub.ID]; !ok {
			m.log.Info("mwi subscription moved to another instance", "tenant", e.mb.tenant, "mailbox", e.mb.mailbox, "call_id", e.sub.CallID)
			m.removeLocked(e)
		}
	}
}

// fullCheckEvery is how many heartbeats apart dropMoved lists every owned
// subscription even when the counts agree.
const fullCheckEvery = 15

// claim takes the subscriptions of dead instances: each gets a NOTIFY with
// the current state at once, in its dialog, with a CSeq above the dead
// owner's.
func (m *Notifier) claim(ctx context.Context) {
	subs, err := m.st.ClaimMWISubscriptions(ctx, m.instance, time.Now())
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("mwi: claiming subscriptions", "err", err)
		}
		return
	}
	if len(subs) == 0 {
		return
	}
	exists := map[mbKey]bool{}
	for _, s := range subs {
		k := mbKey{s.Tenant, s.Mailbox}
		if _, done := exists[k]; done {
			continue
		}
		_, err := m.st.GetMailbox(ctx, s.Tenant, s.Mailbox)
		switch {
		case err == nil:
			exists[k] = true
		case errors.Is(err, store.ErrNotFound):
			exists[k] = false
		default:
			// Unsure: keep it live; a deletion seen later still ends it.
			m.log.Warn("mwi: mailbox of a claimed subscription", "tenant", s.Tenant, "mailbox", s.Mailbox, "err", err)
			exists[k] = true
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return // stored as ours: the next start (or another instance) sends them
	}
	live, expired := m.adoptLocked(subs, exists, 0)
	m.m.taken.WithLabelValues("instance_gone").Add(float64(len(subs)))
	m.log.Info("mwi took over subscriptions of stopped instances", "live", live, "expired", expired, "claimed", len(subs))
}

// targetsTick claims or renews the targets' lease. The holder that gets it
// loads every target and sends each the current state (as a restart does);
// one that loses it forgets its targets; the holder also picks up the
// stops other instances recorded (a phone that subscribed there).
func (m *Notifier) targetsTick(ctx context.Context) {
	holds, err := m.st.ClaimLease(ctx, targetsLease, m.instance, m.ttl)
	m.mu.Lock()
	had := m.holdsTargets
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("mwi: targets lease", "err", err)
		}
		// Unknown: keep sending until the lease surely ran out.
		holds = had && time.Since(m.leaseOKAt) < m.ttl
	} else if holds {
		m.leaseOKAt = time.Now()
	}
	if !holds {
		if had {
			m.holdsTargets = false
			for _, e := range m.targets {
				m.removeLocked(e)
			}
			m.log.Info("mwi: another instance sends the unsolicited NOTIFYs now")
		}
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	if err != nil {
		return
	}
	stops, err := m.st.ListMWITargetStops(ctx)
	if err != nil {
		m.log.Warn("mwi: target stops", "err", err)
		return
	}
	var boxes mailboxPages
	if !had {
		if boxes, err = m.mailboxes(ctx); err != nil {
			m.log.Warn("mwi: mailboxes for the targets", "err", err)
			return // not taken up yet: tried again at the next heartbeat
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	if !had {
		// What a non-holder remembers may be stale: the store is the truth.
		m.stops = make(map[string]string, len(stops))
	}
	for _, sp := range stops {
		key := targetKey(sp.Tenant, sp.Mailbox, sp.Target)
		if m.stops[key] != "" {
			continue
		}
		m.stops[key] = sp.Reason
		if e := m.targets[key]; e != nil {
			m.removeLocked(e)
		}
	}
	if !had {
		m.holdsTargets = true
		boxes.each(func(b *store.Mailbox) { m.syncTargetsLocked(b, true) })
		m.log.Info("mwi: this instance sends the unsolicited NOTIFYs now", "targets", len(m.targets))
	}
}

// release gives up the heartbeat and the lease at a clean stop: the other
// instances take over at their next heartbeat, not when they run out.
func (m *Notifier) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.st.ReleaseLease(ctx, targetsLease, m.instance); err != nil {
		m.log.Warn("mwi: releasing the targets lease", "err", err)
	}
	if err := m.st.ReleaseInstance(ctx, m.instance); err != nil {
		m.log.Warn("mwi: releasing the instance", "err", err)
	}
}
