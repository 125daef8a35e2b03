// Package mwi is message-waiting indication (RFC 3842 over RFC 6665): MWI
// subscriptions, unsolicited NOTIFY targets, and the notifier that tells
// them when a mailbox's counts change. It is fed by the store's committed
// changes and sends through package sip. See docs/architecture.md.
//
// Every count change reaches the notifier through one path: the store's
// change bus (store.Changes). A change marks every subscription and
// unsolicited target of its mailbox dirty; one scheduler (a min-heap keyed
// by the time each entry next needs attention) sends at most one NOTIFY per
// second per entry and always reads the counts when it sends, so the last
// state always goes out. The same heap carries subscription expiries.
// NOTIFYs are sent by short-lived goroutines bounded by a semaphore: there is
// no goroutine or timer per subscription.
package mwi

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	vsip "github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/store"
)

// Store is what the notifier reads and writes: its subscriptions and
// target stops, the mailboxes and their counts.
type Store interface {
	store.MWIStore
	ListTenants(ctx context.Context) ([]store.Tenant, error)
	GetTenant(ctx context.Context, name string) (*store.Tenant, error)
	ListMailboxes(ctx context.Context, tenant, after string, limit int) (items []store.Mailbox, next string, err error)
	CountMessages(ctx context.Context, tenant, mailbox string) (store.Counts, error)
}

// Deps are the collaborators of the notifier.
type Deps struct {
	Server  *vsip.Server   // sends the NOTIFYs, hands us the SUBSCRIBEs
	Store   Store          // subscriptions are written here directly
	Changes *store.Changes // committed count changes (nil: none followed)
	Logger  *slog.Logger
}

const (
	mwiEvent       = "message-summary"
	mwiContentType = "application/simple-message-summary"
	// mwiMaxExpires is the longest subscription we grant, and the one we
	// grant when the SUBSCRIBE has no Expires.
	mwiMaxExpires = 3600
	// mwiWindow: at most one NOTIFY per subscription per window.
	mwiWindow = time.Second
	// mwiMaxInflight bounds the NOTIFY transactions in progress.
	mwiMaxInflight = 512
	// mwiCSeqMargin is added to a restored subscription's CSeq: the CSeqs
	// of NOTIFYs are saved once a second, so a crash may lose a few.
	mwiCSeqMargin = 100
	// mwiRetry is the first delay before a NOTIFY that failed without
	// ending its subscription is tried again; it doubles up to mwiRetryMax.
	mwiRetry    = 5 * time.Second
	mwiRetryMax = 5 * time.Minute
)

// Subscription-State reasons (RFC 6665 §4.1.3).
const (
	reasonTimeout    = "timeout"
	reasonNoResource = "noresource"
)

type mbKey struct{ tenant, mailbox string }

// mwiTarget is an unsolicited (out-of-dialog) NOTIFY target of a mailbox.
type mwiTarget struct {
	uri    string // as configured
	parsed sip.Uri
}

// mwiEntry is one subscription or one unsolicited target. Every field after
// the first three is guarded by Notifier.mu.
type mwiEntry struct {
	mb  mbKey
	sub *store.MWISubscription // a SUBSCRIBE dialog, or nil
	tgt *mwiTarget             // an unsolicited target, or nil

	key       string // in Notifier.subs or Notifier.targets
	hidx      int    // index in the heap, -1 when not in it
	at        time.Time
	due       time.Time // when the pending NOTIFY may go (while dirty)
	notBefore time.Time // retry back-off
	retries   int
	dirty     bool   // the state may differ from what the phone has
	force     bool   // send even when the counts did not change
	term      string // end with this reason on the next NOTIFY
	endReason string // for the metric and the log: unsubscribed, expired, mailbox_deleted
	zeroFirst bool   // the mailbox is gone: 0/0 before terminating
	inflight  bool
	gone      bool
	lastSent  time.Time
	sent      store.Counts
	haveSent  bool
	changedAt time.Time // the oldest change not yet sent
}

// Notifier is the notifier: subscriptions, targets, the scheduler and
// metrics.
type Notifier struct {
	srv     *vsip.Server
	st      Store
	changes *store.Changes
	log     *slog.Logger
	window  time.Duration

	mu        sync.Mutex
	started   bool
	stopped   bool
	subs      map[string]*mwiEntry // by dialog key + event id
	targets   map[string]*mwiEntry // by tenant, mailbox, target
	byMB      map[mbKey]map[*mwiEntry]struct{}
	stops     map[string]string // target key -> reason
	heap      entryHeap
	dirtyCSeq map[string]uint32 // subscription ID -> CSeq not yet saved

	wake      chan struct{}
	done      chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	sem       chan struct{}
	cancelBus func()

	cmu   sync.Mutex
	cache map[mbKey]*countsEntry

	m mwiMetrics
}

type countsEntry struct {
	gen      atomic.Uint64
	mu       sync.Mutex
	valid    bool
	validGen uint64
	c        store.Counts
}

type mwiMetrics struct {
	subscriptions prometheus.GaugeFunc
	targets       prometheus.GaugeFunc
	notifies      *prometheus.CounterVec // kind, result
	ended         *prometheus.CounterVec // reason
	latency       prometheus.Histogram   // change -> NOTIFY sent
	subscribes    *prometheus.CounterVec // status
	all           []prometheus.Collector
}

// New builds the notifier and makes it answer the server's SUBSCRIBEs
// (503 until Start).
func New(deps Deps) *Notifier {
	m := &Notifier{
		srv: deps.Server, st: deps.Store, changes: deps.Changes,
		log: deps.Logger.With("component", "mwi"), window: mwiWindow,
		subs: map[string]*mwiEntry{}, targets: map[string]*mwiEntry{}, byMB: map[mbKey]map[*mwiEntry]struct{}{},
		stops: map[string]string{}, dirtyCSeq: map[string]uint32{},
		wake: make(chan struct{}, 1), done: make(chan struct{}), sem: make(chan struct{}, mwiMaxInflight),
		cache: map[mbKey]*countsEntry{},
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.m.subscriptions = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "voicemail_mwi_subscriptions", Help: "Active MWI (message-summary) subscriptions.",
	}, func() float64 { m.mu.Lock(); defer m.mu.Unlock(); return float64(len(m.subs)) })
	m.m.targets = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "voicemail_mwi_unsolicited_targets", Help: "Unsolicited MWI targets still being notified.",
	}, func() float64 { m.mu.Lock(); defer m.mu.Unlock(); return float64(len(m.targets)) })
	m.m.notifies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voicemail_mwi_notify_total",
		Help: "MWI NOTIFYs sent, by kind (subscription, unsolicited) and result (ok, rejected, timeout, error).",
	}, []string{"kind", "result"})
	m.m.ended = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voicemail_mwi_subscriptions_ended_total",
		Help: "MWI subscriptions ended, by reason (unsubscribed, expired, rejected, timeout, mailbox_deleted).",
	}, []string{"reason"})
	m.m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "voicemail_mwi_change_to_notify_seconds",
		Help:    "From a committed count change to its NOTIFY leaving the server.",
		Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 1.5, 2, 5},
	})
	m.m.subscribes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voicemail_mwi_subscribe_total", Help: "SUBSCRIBE requests for MWI, by response status.",
	}, []string{"status"})
	m.m.all = []prometheus.Collector{m.m.subscriptions, m.m.targets, m.m.notifies, m.m.ended, m.m.latency, m.m.subscribes}
	m.srv.HandleSubscribe(m.onSubscribe)
	return m
}

// Collectors are the Prometheus collectors of MWI (subscriptions, targets,
// NOTIFY results, change-to-NOTIFY latency), for whoever serves /metrics.
func (m *Notifier) Collectors() []prometheus.Collector { return m.m.all }

// Start starts the notifier: it follows the change bus, restores the
// stored subscriptions and sends every live one a NOTIFY with the current
// state (expired ones are terminated), and notifies the unsolicited
// targets. Call it after the server listens; SUBSCRIBEs get 503 until then.
func (m *Notifier) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("mwi: already started")
	}
	m.mu.Unlock()
	st := m.st
	// Follow the bus first: a change while we load is then not missed (the
	// counts are read when each NOTIFY goes).
	if m.changes != nil {
		m.cancelBus = m.changes.Subscribe(m.onChange)
	}
	stops, err := st.ListMWITargetStops(ctx)
	if err != nil {
		m.stopBus()
		return err
	}
	subs, err := st.ListMWISubscriptions(ctx)
	if err != nil {
		m.stopBus()
		return err
	}
	var boxes []store.Mailbox
	tenants, err := st.ListTenants(ctx)
	if err != nil {
		m.stopBus()
		return err
	}
	for _, t := range tenants {
		after := ""
		for {
			items, next, err := st.ListMailboxes(ctx, t.Name, after, 1000)
			if err != nil {
				m.stopBus()
				return err
			}
			boxes = append(boxes, items...)
			if next == "" {
				break
			}
			after = next
		}
	}
	exists := map[mbKey]bool{}
	for _, b := range boxes {
		exists[mbKey{b.Tenant, b.Number}] = true
	}

	now := time.Now()
	m.mu.Lock()
	for _, sp := range stops {
		m.stops[targetKey(sp.Tenant, sp.Mailbox, sp.Target)] = sp.Reason
	}
	live, expired := 0, 0
	for i := range subs {
		sub := subs[i]
		sub.LocalCSeq += mwiCSeqMargin
		e := &mwiEntry{mb: mbKey{sub.Tenant, sub.Mailbox}, sub: &sub, hidx: -1, key: subKey(sub.CallID, sub.RemoteTag, sub.LocalTag, sub.EventID)}
		m.addLocked(e)
		m.dirtyCSeq[sub.ID] = sub.LocalCSeq
		switch {
		case !exists[e.mb]:
			e.term, e.zeroFirst, e.endReason = reasonNoResource, true, "mailbox_deleted"
		case !now.Before(sub.ExpiresAt):
			e.term, e.endReason = reasonTimeout, "expired"
			expired++
		default:
			live++
		}
		m.kickLocked(e, true, time.Time{})
	}
	for i := range boxes {
		m.syncTargetsLocked(&boxes[i], true)
	}
	m.started = true
	m.wg.Add(2)
	go m.run()
	go m.flusher()
	m.mu.Unlock()
	m.log.Info("mwi started", "subscriptions", live, "expired", expired, "targets", len(m.targets))
	return nil
}

func (m *Notifier) stopBus() {
	if m.cancelBus != nil {
		m.cancelBus()
		m.cancelBus = nil
	}
}

// Stop stops the notifier, keeping every subscription stored for the next
// start. Call it before the listeners close.
func (m *Notifier) Stop() {
	m.mu.Lock()
	if !m.started || m.stopped {
		m.stopped = true
		m.mu.Unlock()
		return
	}
	m.stopped = true
	m.mu.Unlock()
	m.stopBus()
	close(m.done)
	m.cancel()
	m.wg.Wait()
	m.flushCSeqs()
}

func subKey(callID, remoteTag, localTag, eventID string) string {
	return callID + "\x00" + remoteTag + "\x00" + localTag + "\x00" + eventID
}

func targetKey(tenant, mailbox, target string) string {
	return tenant + "\x00" + mailbox + "\x00" + target
}

// ---------------------------------------------------------------------------
// Entries and scheduling (all with m.mu held)

func (m *Notifier) addLocked(e *mwiEntry) {
	e.hidx = -1
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
// Changes

// onChange runs on the goroutine of the change: it only marks and queues.
func (m *Notifier) onChange(ch store.Change) {
	k := mbKey{ch.Tenant, ch.Mailbox}
	switch ch.Kind {
	case store.MessageCreated, store.MessageUpdated, store.MessageDeleted:
		m.invalidate(k)
		m.mu.Lock()
		for e := range m.byMB[k] {
			m.kickLocked(e, false, ch.At)
		}
		m.mu.Unlock()
	case store.MailboxDeleted:
		m.invalidate(k)
		m.mu.Lock()
		var stops []string
		for e := range m.byMB[k] {
			e.term, e.zeroFirst, e.endReason = reasonNoResource, true, "mailbox_deleted"
			m.kickLocked(e, true, ch.At)
		}
		for key := range m.stops {
			if t, mb, target, ok := splitTargetKey(key); ok && t == k.tenant && mb == k.mailbox {
				delete(m.stops, key)
				stops = append(stops, target)
			}
		}
		m.mu.Unlock()
		m.cmu.Lock()
		delete(m.cache, k)
		m.cmu.Unlock()
		m.forgetStops(k, stops)
	case store.MailboxCreated, store.MailboxUpdated:
		if ch.MailboxObj != nil {
			m.mu.Lock()
			m.syncTargetsLocked(ch.MailboxObj, false)
			m.mu.Unlock()
		}
	}
}

func splitTargetKey(key string) (tenant, mailbox, target string, ok bool) {
	var parts [3]string
	i := 0
	start := 0
	for j := 0; j < len(key) && i < 2; j++ {
		if key[j] == 0 {
			parts[i] = key[start:j]
			i++
			start = j + 1
		}
	}
	if i != 2 {
		return "", "", "", false
	}
	parts[2] = key[start:]
	return parts[0], parts[1], parts[2], true
}

// forgetStops deletes stored stops in the background (the bus must not block).
func (m *Notifier) forgetStops(k mbKey, targets []string) {
	for _, t := range targets {
		m.background(func(ctx context.Context) error { return m.st.ResumeMWITarget(ctx, k.tenant, k.mailbox, t) })
	}
}

// syncTargetsLocked makes the unsolicited targets of mb those it lists: a
// new one gets the current state at once; a removed one is forgotten (and
// so is its stop, so that listing it again starts it again).
func (m *Notifier) syncTargetsLocked(mb *store.Mailbox, startup bool) {
	k := mbKey{mb.Tenant, mb.Number}
	want := map[string]bool{}
	for _, t := range mb.MWITargets {
		want[t] = true
	}
	var forget []string
	for e := range m.byMB[k] {
		if e.tgt != nil && !want[e.tgt.uri] && e.term == "" {
			m.removeLocked(e)
		}
	}
	for key := range m.stops {
		if t, n, target, ok := splitTargetKey(key); ok && t == k.tenant && n == k.mailbox && !want[target] {
			delete(m.stops, key)
			forget = append(forget, target)
		}
	}
	if len(forget) > 0 && !startup {
		m.forgetStops(k, forget)
	}
	for t := range want {
		key := targetKey(k.tenant, k.mailbox, t)
		if _, ok := m.targets[key]; ok || m.stops[key] != "" {
			continue
		}
		var u sip.Uri
		if err := sip.ParseUri(t, &u); err != nil || u.Host == "" {
			m.log.Warn("ignoring an unusable mwi_targets entry", "tenant", k.tenant, "mailbox", k.mailbox, "target", t, "err", err)
			continue
		}
		e := &mwiEntry{mb: k, tgt: &mwiTarget{uri: t, parsed: u}, key: key}
		m.addLocked(e)
		m.kickLocked(e, true, time.Time{})
	}
}

// ---------------------------------------------------------------------------
// Counts

func (m *Notifier) invalidate(k mbKey) {
	m.cmu.Lock()
	if e := m.cache[k]; e != nil {
		e.gen.Add(1)
	}
	m.cmu.Unlock()
}

// counts reads the mailbox's counts once per change, however many
// subscriptions follow it.
func (m *Notifier) counts(ctx context.Context, k mbKey) (store.Counts, error) {
	m.cmu.Lock()
	e := m.cache[k]
	if e == nil {
		e = &countsEntry{}
		m.cache[k] = e
	}
	m.cmu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	gen := e.gen.Load()
	if e.valid && e.validGen == gen {
		return e.c, nil
	}
	c, err := m.st.CountMessages(ctx, k.tenant, k.mailbox)
	if err != nil {
		return store.Counts{}, err
	}
	e.c, e.validGen, e.valid = c, gen, true
	return c, nil
}

// ---------------------------------------------------------------------------
// Sending

type outcome int

const (
	outOK        outcome = iota
	outFatal             // the subscription is gone (or the target said stop)
	outTransient         // try again later
	outStopped           // shutting down: leave everything as it is
)

func (m *Notifier) send(e *mwiEntry) {
	m.mu.Lock()
	force, term, zeroFirst, changedAt := e.force, e.term, e.zeroFirst, e.changedAt
	haveSent, sent := e.haveSent, e.sent
	e.dirty, e.force, e.changedAt = false, false, time.Time{}
	m.mu.Unlock()

	ctx := m.ctx
	var c store.Counts
	if term != reasonNoResource {
		var err error
		if c, err = m.counts(ctx, e.mb); err != nil {
			if ctx.Err() != nil {
				m.finish(e, c, outStopped, "", changedAt, time.Time{}, "")
				return
			}
			m.log.Warn("mwi counts", "tenant", e.mb.tenant, "mailbox", e.mb.mailbox, "err", err)
			m.finish(e, c, outTransient, "", changedAt, time.Time{}, "")
			return
		}
	}
	if !force && term == "" && haveSent && c == sent {
		m.finish(e, c, outOK, "", time.Time{}, time.Time{}, "") // nothing new for this phone
		return
	}
	start := time.Now()
	var res outcome
	var why string
	if e.sub != nil {
		m.mu.Lock()
		left := int(time.Until(e.sub.ExpiresAt).Round(time.Second) / time.Second)
		m.mu.Unlock()
		active := fmt.Sprintf("active;expires=%d", max(left, 0))
		if zeroFirst {
			res, why = m.notifyDialog(ctx, e, store.Counts{}, active)
		}
		if !zeroFirst || res == outOK || res == outTransient {
			state := active
			if term != "" {
				state = "terminated;reason=" + term
			}
			res, why = m.notifyDialog(ctx, e, c, state)
		}
	} else {
		res, why = m.notifyTarget(ctx, e, c)
	}
	m.finish(e, c, res, why, changedAt, start, term)
}

// finish records a NOTIFY's outcome and schedules what comes next; sentTerm
// is the termination reason the NOTIFY carried, if any.
func (m *Notifier) finish(e *mwiEntry, c store.Counts, res outcome, why string, changedAt, start time.Time, sentTerm string) {
	if res == outOK && !start.IsZero() && !changedAt.IsZero() {
		m.m.latency.Observe(start.Sub(changedAt).Seconds())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e.inflight = false
	now := time.Now()
	if res == outStopped || m.stopped {
		e.dirty = true
		return
	}
	if e.gone {
		return
	}
	if res == outOK && !start.IsZero() {
		e.lastSent, e.sent, e.haveSent, e.retries, e.notBefore = start, c, true, 0, time.Time{}
	}
	switch {
	case sentTerm != "":
		// The last NOTIFY went (or could not go): it is over.
		m.endLocked(e, e.endReason, "")
		return
	case res == outFatal:
		m.endLocked(e, why, why)
		return
	case res == outTransient:
		e.dirty = true
		if e.changedAt.IsZero() {
			e.changedAt = changedAt
		}
		d := mwiRetry << min(e.retries, 6)
		e.retries++
		e.notBefore = now.Add(min(d, mwiRetryMax))
	}
	m.scheduleLocked(e, now)
}

// endLocked forgets e. A target that answered stopReason (a status code)
// is remembered as stopped.
func (m *Notifier) endLocked(e *mwiEntry, reason, stopReason string) {
	m.removeLocked(e)
	if e.sub != nil {
		m.m.ended.WithLabelValues(reason).Inc()
		m.log.Info("mwi subscription ended", "tenant", e.mb.tenant, "mailbox", e.mb.mailbox,
			"call_id", e.sub.CallID, "reason", reason)
		m.background(func(ctx context.Context) error { return m.st.DeleteMWISubscription(ctx, e.sub.ID) })
		return
	}
	if stopReason == "" {
		return
	}
	m.stopTargetLocked(e.key, store.MWITargetStop{Tenant: e.mb.tenant, Mailbox: e.mb.mailbox, Target: e.tgt.uri, Reason: stopReason})
}

// stopTargetLocked stops a target for good (until it is listed again).
func (m *Notifier) stopTargetLocked(key string, stop store.MWITargetStop) {
	if e := m.targets[key]; e != nil {
		m.removeLocked(e)
	}
	stop.At = time.Now().UTC()
	m.stops[key] = stop.Reason
	m.log.Info("mwi target stopped", "tenant", stop.Tenant, "mailbox", stop.Mailbox, "target", stop.Target, "reason", stop.Reason)
	m.background(func(ctx context.Context) error { return m.st.StopMWITarget(ctx, stop) })
}

// background runs a store write off the caller's goroutine.
func (m *Notifier) background(f func(ctx context.Context) error) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f(ctx); err != nil {
			m.log.Warn("mwi store write", "err", err)
		}
	}()
}

// dropStatus reports whether a NOTIFY response ends the subscription
// (RFC 6665 §4.2.2, CONFORMANCE "MWI").
func dropStatus(code int) bool {
	switch code {
	case 404, 405, 408, 410, 416, 489, 501, 604:
		return true
	}
	return code >= 480 && code <= 485
}

// stopTargetStatus reports whether an unsolicited target asked us to stop.
func stopTargetStatus(code int) bool { return code == 481 || code == 405 || code == 489 }

// MWIBody is the application/simple-message-summary body of RFC 3842 §5.2:
// CRLF line ends, urgent counts included in the totals.
func MWIBody(account string, c store.Counts) []byte {
	waiting := "no"
	if c.New > 0 {
		waiting = "yes"
	}
	return fmt.Appendf(nil, "Messages-Waiting: %s\r\nMessage-Account: %s\r\nVoice-Message: %d/%d (%d/%d)\r\n",
		waiting, account, c.New, c.Old, c.UrgentNew, c.UrgentOld)
}

// account is the Message-Account URI: the access number at host.
func (m *Notifier) account(host, mailbox string) string {
	user := mailbox
	if an := m.srv.AccessNumbers(); len(an) > 0 {
		user = an[0]
	}
	if host == "" {
		host = m.srv.PublicIP().String()
	}
	return "sip:" + user + "@" + host
}

func eventValue(id string) string {
	if id == "" {
		return mwiEvent
	}
	return mwiEvent + ";id=" + id
}

// notifyDialog sends one NOTIFY in e's subscription dialog.
func (m *Notifier) notifyDialog(ctx context.Context, e *mwiEntry, c store.Counts, state string) (outcome, string) {
	m.mu.Lock()
	sub := *e.sub
	e.sub.LocalCSeq++
	sub.LocalCSeq = e.sub.LocalCSeq
	if !e.gone {
		m.dirtyCSeq[sub.ID] = sub.LocalCSeq
	}
	m.mu.Unlock()

	req, err := m.dialogRequest(&sub, MWIBody(m.account(sub.AccountHost, sub.Mailbox), c), state)
	if err != nil {
		m.log.Warn("mwi NOTIFY not built", "call_id", sub.CallID, "err", err)
		m.m.notifies.WithLabelValues("subscription", "error").Inc()
		return outFatal, "error"
	}
	res, err := m.do(ctx, req)
	log := m.log.With("tenant", sub.Tenant, "mailbox", sub.Mailbox, "call_id", sub.CallID, "state", state,
		"voice", fmt.Sprintf("%d/%d (%d/%d)", c.New, c.Old, c.UrgentNew, c.UrgentOld))
	switch {
	case ctx.Err() != nil:
		return outStopped, ""
	case err != nil:
		log.Info("mwi NOTIFY failed", "err", err)
		m.m.notifies.WithLabelValues("subscription", "timeout").Inc()
		return outFatal, "timeout"
	case res.StatusCode < 300:
		log.Debug("mwi NOTIFY sent", "status", res.StatusCode)
		m.m.notifies.WithLabelValues("subscription", "ok").Inc()
		return outOK, ""
	case dropStatus(res.StatusCode):
		log.Info("mwi NOTIFY rejected", "status", res.StatusCode)
		m.m.notifies.WithLabelValues("subscription", "rejected").Inc()
		return outFatal, "rejected"
	default:
		log.Info("mwi NOTIFY failed", "status", res.StatusCode)
		m.m.notifies.WithLabelValues("subscription", "error").Inc()
		return outTransient, ""
	}
}

// dialogRequest builds a NOTIFY in sub's dialog.
func (m *Notifier) dialogRequest(sub *store.MWISubscription, body []byte, state string) (*sip.Request, error) {
	var target sip.Uri
	if err := sip.ParseUri(sub.Contact, &target); err != nil {
		return nil, fmt.Errorf("contact %q: %w", sub.Contact, err)
	}
	from := &sip.FromHeader{Params: sip.NewParams()}
	var err error
	if from.DisplayName, err = sip.ParseAddressValue(sub.LocalURI, &from.Address, &from.Params); err != nil {
		return nil, fmt.Errorf("local URI %q: %w", sub.LocalURI, err)
	}
	from.Params.Add("tag", sub.LocalTag)
	to := &sip.ToHeader{Params: sip.NewParams()}
	if to.DisplayName, err = sip.ParseAddressValue(sub.RemoteURI, &to.Address, &to.Params); err != nil {
		return nil, fmt.Errorf("remote URI %q: %w", sub.RemoteURI, err)
	}
	to.Params.Add("tag", sub.RemoteTag)
	dl := vsip.InDialog{Target: target, From: from, To: to, CallID: sub.CallID, CSeq: sub.LocalCSeq,
		Routes: sub.RouteSet, Transport: sub.Transport}
	if m.symmetric(sub) {
		dl.Source = sub.Source
	}
	return m.srv.Request(sip.NOTIFY, dl, body,
		sip.NewHeader("Event", eventValue(sub.EventID)),
		sip.NewHeader("Subscription-State", state),
		sip.NewHeader("Content-Type", mwiContentType)), nil
}

// symmetric reports whether the NOTIFY goes back where the SUBSCRIBE came
// from: always over UDP (NAT), over TCP/TLS while that connection lives.
func (m *Notifier) symmetric(sub *store.MWISubscription) bool {
	if sub.Source == "" {
		return false
	}
	if !sip.IsReliable(sub.Transport) {
		return true
	}
	return m.srv.Connected(sub.Transport, sub.Source)
}

// notifyTarget sends an unsolicited NOTIFY: a new Call-ID, no To-tag,
// Subscription-State active (CONFORMANCE "MWI").
func (m *Notifier) notifyTarget(ctx context.Context, e *mwiEntry, c store.Counts) (outcome, string) {
	host := m.srv.PublicIP().String()
	if t, err := m.st.GetTenant(ctx, e.mb.tenant); err == nil && len(t.Domains) > 0 {
		host = t.Domains[0]
	}
	u := e.tgt.parsed
	req := sip.NewRequest(sip.NOTIFY, *u.Clone())
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: e.mb.mailbox, Host: host}, Params: sip.NewParams()}
	from.Params.Add("tag", vsip.NewTag())
	to := &sip.ToHeader{Address: sip.Uri{Scheme: u.Scheme, User: u.User, Host: u.Host, Port: u.Port}, Params: sip.NewParams()}
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(sip.NewHeader("Call-ID", vsip.NewTag()+vsip.NewTag()+"@"+m.srv.PublicIP().String()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.NOTIFY})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	transport := "UDP"
	if tp, ok := u.UriParams.Get("transport"); ok && tp != "" {
		transport = tp
	}
	req.AppendHeader(m.srv.Contact(transport))
	req.AppendHeader(sip.NewHeader("Event", mwiEvent))
	req.AppendHeader(sip.NewHeader("Subscription-State", "active"))
	req.AppendHeader(sip.NewHeader("Content-Type", mwiContentType))
	req.SetBody(MWIBody(m.account(host, e.mb.mailbox), c))

	res, err := m.do(ctx, req)
	log := m.log.With("tenant", e.mb.tenant, "mailbox", e.mb.mailbox, "target", e.tgt.uri,
		"voice", fmt.Sprintf("%d/%d (%d/%d)", c.New, c.Old, c.UrgentNew, c.UrgentOld))
	switch {
	case ctx.Err() != nil:
		return outStopped, ""
	case err != nil:
		log.Info("mwi unsolicited NOTIFY failed", "err", err)
		m.m.notifies.WithLabelValues("unsolicited", "timeout").Inc()
		return outTransient, ""
	case res.StatusCode < 300:
		log.Debug("mwi unsolicited NOTIFY sent", "status", res.StatusCode)
		m.m.notifies.WithLabelValues("unsolicited", "ok").Inc()
		return outOK, ""
	case stopTargetStatus(res.StatusCode):
		m.m.notifies.WithLabelValues("unsolicited", "rejected").Inc()
		return outFatal, fmt.Sprint(res.StatusCode)
	default:
		log.Info("mwi unsolicited NOTIFY failed", "status", res.StatusCode)
		m.m.notifies.WithLabelValues("unsolicited", "error").Inc()
		return outTransient, ""
	}
}

// do sends a request and waits for its final response.
func (m *Notifier) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	return m.srv.Do(ctx, req)
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
