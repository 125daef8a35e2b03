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
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
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
	store.ClusterStore
	GetMailbox(ctx context.Context, tenant, number string) (*store.Mailbox, error)
	ListTenants(ctx context.Context) ([]store.Tenant, error)
	GetTenant(ctx context.Context, name string) (*store.Tenant, error)
	ListMailboxes(ctx context.Context, tenant, after string, limit int) (items []store.Mailbox, next string, err error)
	CountMessages(ctx context.Context, tenant, mailbox string) (store.Counts, error)
	CountMailboxes(ctx context.Context, tenant string, mailboxes []string) (map[string]store.Counts, error)
}

// Deps are the collaborators of the notifier.
type Deps struct {
	Server  *vsip.Server   // sends the NOTIFYs, hands us the SUBSCRIBEs
	Store   Store          // subscriptions are written here directly
	Changes *store.Changes // committed count changes (nil: none followed)
	Logger  *slog.Logger

	// Instance names this instance among those sharing the store: it owns
	// the subscriptions it took (docs/mwi.md). "" is DefaultInstanceID().
	Instance string
	// Heartbeat is how often the instance renews its heartbeat, claims the
	// subscriptions of dead instances and the unsolicited targets' lease
	// (0: 2 s); an instance is dead InstanceTTL after its last heartbeat
	// (0: three heartbeats).
	Heartbeat, InstanceTTL time.Duration
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
	// cseqReserve: the CSeq saved for a subscription runs this far ahead
	// of the NOTIFYs sent, so that a NOTIFY costs no write (100,000
	// NOTIFYs at start-up were 100,000 row updates): the store is written
	// again when the CSeq sent comes within half of it.
	cseqReserve = 64
	// mwiRetry is the first delay before a NOTIFY that failed without
	// ending its subscription is tried again; it doubles up to mwiRetryMax.
	mwiRetry    = 5 * time.Second
	mwiRetryMax = 5 * time.Minute
)

// Subscription-State reasons (RFC 6665 §4.1.3).
const (
	reasonTimeout = "timeout"
	// reasonNone ends a subscription the subscriber ended itself
	// (Expires: 0): "terminated" goes out without a reason (RFC 6665
	// §4.1.3, §4.2.2); the reasons are for the notifier's own endings.
	reasonNone       = "none"
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
	since     time.Time // when it came into memory (see dropMoved)
	savedCSeq uint32    // the CSeq saved (or being saved) for sub: reserveCSeqLocked
}

// Notifier is the notifier: subscriptions, targets, the scheduler and
// metrics.
type Notifier struct {
	srv     *vsip.Server
	st      Store
	changes *store.Changes
	log     *slog.Logger
	window  time.Duration

	instance       string
	heartbeat, ttl time.Duration
	ticks          int // cluster heartbeats so far (the cluster goroutine's alone)

	mu        sync.Mutex
	started   bool
	stopped   bool
	subs      map[string]*mwiEntry // by dialog key + event id
	targets   map[string]*mwiEntry // by tenant, mailbox, target
	byMB      map[mbKey]map[*mwiEntry]struct{}
	stops     map[string]string // target key -> reason
	heap      entryHeap
	dirtyCSeq map[string]uint32 // subscription ID -> CSeq not yet saved
	// holdsTargets: this instance holds the targetsLease and so sends
	// the unsolicited NOTIFYs; the others keep no target entries.
	holdsTargets bool
	leaseOKAt    time.Time // the last successful claim of the lease

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
	// ready, when not nil, is closed once a start-up batch read the
	// counts (warmCounts); set before the entry is shared, never after.
	ready    chan struct{}
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
	taken         *prometheus.CounterVec // reason
	all           []prometheus.Collector
}

// New builds the notifier and makes it answer the server's SUBSCRIBEs
// (503 until Start).
func New(deps Deps) *Notifier {
	m := &Notifier{
		srv: deps.Server, st: deps.Store, changes: deps.Changes,
		log: deps.Logger.With("component", "mwi"), window: mwiWindow,
		instance: deps.Instance, heartbeat: deps.Heartbeat, ttl: deps.InstanceTTL,
		subs: map[string]*mwiEntry{}, targets: map[string]*mwiEntry{}, byMB: map[mbKey]map[*mwiEntry]struct{}{},
		stops: map[string]string{}, dirtyCSeq: map[string]uint32{},
		wake: make(chan struct{}, 1), done: make(chan struct{}), sem: make(chan struct{}, mwiMaxInflight),
		cache: map[mbKey]*countsEntry{},
	}
	if m.instance == "" {
		m.instance = DefaultInstanceID()
	}
	if m.heartbeat <= 0 {
		m.heartbeat = defaultHeartbeat
	}
	if m.ttl <= 0 {
		m.ttl = 3 * m.heartbeat
	}
	m.log = m.log.With("instance", m.instance)
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
	m.m.taken = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voicemail_mwi_subscriptions_taken_total",
		Help: "MWI subscriptions this instance took from another, by reason (instance_gone, refresh).",
	}, []string{"reason"})
	m.m.all = []prometheus.Collector{m.m.subscriptions, m.m.targets, m.m.notifies, m.m.ended, m.m.latency, m.m.subscribes, m.m.taken}
	m.srv.HandleSubscribe(m.onSubscribe)
	return m
}

// Collectors are the Prometheus collectors of MWI (subscriptions, targets,
// NOTIFY results, change-to-NOTIFY latency), for whoever serves /metrics.
func (m *Notifier) Collectors() []prometheus.Collector { return m.m.all }

// Start starts the notifier: it follows the change bus, announces this
// instance, restores the subscriptions it owns and claims those of dead
// instances, and sends every live one a NOTIFY with the current state
// (expired ones are terminated); if it holds the targets' lease, it
// notifies the unsolicited targets. Call it after the server listens;
// SUBSCRIBEs get 503 until then.
func (m *Notifier) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("mwi: already started")
	}
	m.mu.Unlock()
	// Follow the bus first: a change while we load is then not missed (the
	// counts are read when each NOTIFY goes).
	if m.changes != nil {
		m.cancelBus = m.changes.Subscribe(m.onChange)
	}
	warm, err := m.load(ctx)
	if err != nil {
		m.stopBus()
		return err
	}
	m.mu.Lock()
	m.started = true
	m.wg.Add(5)
	go m.run()
	go m.flusher()
	go m.beat()
	go m.cluster()
	go func() {
		defer m.wg.Done()
		m.warmCounts(m.ctx, warm)
	}()
	m.mu.Unlock()
	return nil
}

// load is the start-up half of Start. It returns the batches in which
// warmCounts reads the counts the start-up NOTIFYs need.
func (m *Notifier) load(ctx context.Context) ([]warmBatch, error) {
	st := m.st
	// Live before claiming: another instance must not take what we load.
	if err := st.HeartbeatInstance(ctx, m.instance, m.ttl); err != nil {
		return nil, err
	}
	stops, err := st.ListMWITargetStops(ctx)
	if err != nil {
		return nil, err
	}
	subs, err := st.ListOwnedMWISubscriptions(ctx, m.instance)
	if err != nil {
		return nil, err
	}
	claimed, err := st.ClaimMWISubscriptions(ctx, m.instance, time.Now())
	if err != nil {
		return nil, err
	}
	subs = append(subs, claimed...)
	boxes, err := m.mailboxes(ctx)
	if err != nil {
		return nil, err
	}
	exists := map[mbKey]bool{}
	boxes.each(func(b *store.Mailbox) { exists[mbKey{b.Tenant, b.Number}] = true })
	holds, err := st.ClaimLease(ctx, targetsLease, m.instance, m.ttl)
	if err != nil {
		return nil, err
	}
	// The NOTIFYs go in mailbox order, the order in which warmCounts
	// reads the counts, a few hundred mailboxes at a time.
	slices.SortFunc(subs, func(a, b store.MWISubscription) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Mailbox, b.Mailbox), strings.Compare(a.ID, b.ID))
	})
	var keys []mbKey
	for _, s := range subs {
		k := mbKey{s.Tenant, s.Mailbox}
		if exists[k] && (len(keys) == 0 || keys[len(keys)-1] != k) {
			keys = append(keys, k)
		}
	}
	warm := m.prepareWarm(keys)

	m.mu.Lock()
	defer m.mu.Unlock()
	for _, sp := range stops {
		m.stops[targetKey(sp.Tenant, sp.Mailbox, sp.Target)] = sp.Reason
	}
	live, expired := m.adoptLocked(subs, exists, startupRaise)
	m.raiseCSeqs()
	if holds {
		m.holdsTargets, m.leaseOKAt = true, time.Now()
		boxes.each(func(b *store.Mailbox) { m.syncTargetsLocked(b, true) })
	}
	m.log.Info("mwi started", "subscriptions", live, "expired", expired, "claimed", len(claimed),
		"targets", len(m.targets), "holds_targets", holds)
	return warm, nil
}

// startupRaise is what a start-up adds to the stored CSeq of every
// subscription it loaded: the margin and a reservation (cseqReserve), as
// reserveCSeqLocked would have saved for each, in one statement instead of
// 100 statements of 1,000 (2.2 s of CPU during the start-up's NOTIFYs).
const startupRaise = mwiCSeqMargin + cseqReserve

// raiseCSeqs writes the start-up's reservation in the background, as the
// flusher would have (its NOTIFYs go meanwhile, within the margin). If it
// fails, every subscription is reserved on its own again.
func (m *Notifier) raiseCSeqs() {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := m.st.RaiseMWILocalCSeqs(ctx, m.instance, startupRaise)
		if err == nil {
			return
		}
		m.log.Warn("mwi: reserving the CSeqs of the loaded subscriptions; saving them one by one", "err", err)
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, e := range m.subs {
			e.savedCSeq = 0
			m.reserveCSeqLocked(e)
		}
	}()
}

// mailboxPages are mailboxes as the store paged them: kept as pages, for
// one slice grown page by page to 100,000 mailboxes was copied and
// rescanned by the collector again and again at start-up.
type mailboxPages [][]store.Mailbox

func (p mailboxPages) each(f func(*store.Mailbox)) {
	for _, page := range p {
		for i := range page {
			f(&page[i])
		}
	}
}

// mailboxes lists every mailbox of every tenant.
func (m *Notifier) mailboxes(ctx context.Context) (mailboxPages, error) {
	var boxes mailboxPages
	tenants, err := m.st.ListTenants(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range tenants {
		after := ""
		for {
			items, next, err := m.st.ListMailboxes(ctx, t.Name, after, 1000)
			if err != nil {
				return nil, err
			}
			boxes = append(boxes, items)
			if next == "" {
				break
			}
			after = next
		}
	}
	return boxes, nil
}

// adoptLocked takes stored subscriptions into memory, each to get a NOTIFY
// with the current state at once (a restart or a takeover: the phone may
// have missed changes). Their CSeq gets a margin: the last NOTIFYs' CSeqs
// may not have been saved. raised > 0 says the caller raises every stored
// CSeq by that much in one statement (raiseCSeqs), which then is their
// reservation; otherwise each is reserved on its own.
func (m *Notifier) adoptLocked(subs []store.MWISubscription, exists map[mbKey]bool, raised uint32) (live, expired int) {
	now := time.Now()
	for i := range subs {
		sub := subs[i]
		stored := sub.LocalCSeq
		sub.LocalCSeq += mwiCSeqMargin
		sub.Owner = m.instance
		e := &mwiEntry{mb: mbKey{sub.Tenant, sub.Mailbox}, sub: &sub, hidx: -1, key: subKey(sub.CallID, sub.RemoteTag, sub.LocalTag, sub.EventID)}
		if old := m.subs[e.key]; old != nil {
			sub.LocalCSeq = max(sub.LocalCSeq, old.sub.LocalCSeq+mwiCSeqMargin)
			m.removeLocked(old)
		}
		m.addLocked(e)
		if raised > 0 {
			e.savedCSeq = stored + raised
		}
		m.reserveCSeqLocked(e)
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
	return live, expired
}

func (m *Notifier) stopBus() {
	if m.cancelBus != nil {
		m.cancelBus()
		m.cancelBus = nil
	}
}

// Stop stops the notifier, keeping every subscription stored, and gives
// them up: another instance (or this one restarted) takes them over at
// once. Call it before the listeners close.
func (m *Notifier) Stop() { m.stop(true) }

// stop stops the notifier; without release it leaves its heartbeat and
// lease to run out, as a crash does.
func (m *Notifier) stop(release bool) {
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
	if release {
		m.release()
	}
}

func subKey(callID, remoteTag, localTag, eventID string) string {
	return callID + "\x00" + remoteTag + "\x00" + localTag + "\x00" + eventID
}

func targetKey(tenant, mailbox, target string) string {
	return tenant + "\x00" + mailbox + "\x00" + target
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
		holds := m.holdsTargets
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
		if holds { // the holder alone keeps the stops in the store
			m.forgetStops(k, stops)
		}
	case store.MailboxCreated, store.MailboxUpdated:
		if ch.MailboxObj != nil {
			m.mu.Lock()
			if m.holdsTargets {
				m.syncTargetsLocked(ch.MailboxObj, false)
			}
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

// warmBatch is one query of warmCounts: its mailboxes (one tenant) and
// the channel closed when their counts are in the cache.
type warmBatch struct {
	keys  []mbKey
	ready chan struct{}
}

// warmBatchSize is how many mailboxes one warmCounts query reads.
const warmBatchSize = 500

// prepareWarm splits keys (in NOTIFY order) into warmCounts' batches and
// puts their cache entries in place, each waiting for its batch: a start-up
// NOTIFY then waits for the counts its batch brings instead of reading its
// own, which on PostgreSQL cost about three times as much per mailbox as a
// batch (BENCHMARKS.md, "MWI start-up").
func (m *Notifier) prepareWarm(keys []mbKey) []warmBatch {
	var out []warmBatch
	m.cmu.Lock()
	defer m.cmu.Unlock()
	for len(keys) > 0 {
		n := 1
		for n < min(warmBatchSize, len(keys)) && keys[n].tenant == keys[0].tenant {
			n++
		}
		b := warmBatch{keys: keys[:n], ready: make(chan struct{})}
		keys = keys[n:]
		for _, k := range b.keys {
			if m.cache[k] == nil {
				m.cache[k] = &countsEntry{ready: b.ready}
			}
		}
		out = append(out, b)
	}
	return out
}

// warmCounts reads the counts of the batches' mailboxes, one query per
// batch, and releases the NOTIFYs waiting for them. On a failure the rest
// are released cold: each NOTIFY then reads its own counts.
func (m *Notifier) warmCounts(ctx context.Context, batches []warmBatch) {
	defer func() {
		for _, b := range batches {
			close(b.ready)
		}
	}()
	for len(batches) > 0 && ctx.Err() == nil {
		b := batches[0]
		// The generation before the query, as counts does: a change
		// committed meanwhile leaves the entry stale, read again.
		entries := make([]*countsEntry, len(b.keys))
		gens := make([]uint64, len(b.keys))
		boxes := make([]string, len(b.keys))
		m.cmu.Lock()
		for i, k := range b.keys {
			entries[i] = m.cache[k]
			gens[i], boxes[i] = entries[i].gen.Load(), k.mailbox
		}
		m.cmu.Unlock()
		got, err := m.st.CountMailboxes(ctx, b.keys[0].tenant, boxes)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("mwi: reading the counts of many mailboxes", "tenant", b.keys[0].tenant, "err", err)
			}
			return
		}
		for i, e := range entries {
			e.mu.Lock()
			if !e.valid || e.validGen != e.gen.Load() {
				e.c, e.validGen, e.valid = got[boxes[i]], gens[i], true
			}
			e.mu.Unlock()
		}
		close(b.ready)
		batches = batches[1:]
	}
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
	if e.ready != nil {
		select {
		case <-e.ready:
		case <-ctx.Done():
			return store.Counts{}, ctx.Err()
		}
	}
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
