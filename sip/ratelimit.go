package sip

// Flood control (docs/sip.md "Rate limits and lock-out"): per-source token
// buckets for the requests that cost us work (INVITE, SUBSCRIBE, REGISTER,
// OPTIONS), answered 503 + Retry-After past the budget and dropped without
// an answer past a higher threshold, and the lock-out of sources that fail
// authentication repeatedly (blocklist.go). In-dialog requests, ACK, BYE
// and CANCEL are never limited: they end or continue what was admitted.

import (
	"container/list"
	"log/slog"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// RateLimit is one method's budget per source IP: Rate requests per second
// on average, Burst at once. Rate 0 means unlimited.
type RateLimit struct {
	Rate  float64
	Burst int
}

// FloodConfig configures flood control. The zero value limits nothing.
type FloodConfig struct {
	// Limits by method (INVITE, SUBSCRIBE, REGISTER, OPTIONS); a method
	// not listed is not limited.
	Limits map[string]RateLimit
	// DropAfter is how many requests over the budget a source may send
	// (each answered 503) before further ones are dropped silently; the
	// debt is paid back at the method's rate. 0 = never drop.
	DropAfter int
	// MaxSources caps the buckets kept (least recently used first out);
	// 0 = 100000.
	MaxSources int
	// Lockout: a source with this many authentication failures within
	// Window is refused (403) for Duration. Failures 0 = off.
	Lockout LockoutConfig
	// Caps on live MWI subscriptions (package mwi asks through
	// SubscriptionCaps): per source IP, trusted sources exempt, and per
	// mailbox; 0 = no cap.
	MaxSubscriptionsPerSource, MaxSubscriptionsPerMailbox int
}

// verdict is what flood control decided for one request.
type verdict int

const (
	admit  verdict = iota
	refuse         // 503 + Retry-After
	drop           // no answer at all
)

type bucketKey struct {
	addr   netip.Addr
	method string
}

type bucket struct {
	key    bucketKey
	tokens float64 // in [-DropAfter, Burst]; below 1 the request is over budget
	last   time.Time
}

// limiter holds the token buckets of every source, bounded by MaxSources
// and pruned of buckets idle long enough to be full again.
type limiter struct {
	mu        sync.Mutex
	now       func() time.Time
	limits    map[string]RateLimit
	dropAfter float64
	max       int
	buckets   map[bucketKey]*list.Element
	lru       *list.List // front = most recently used
}

func newLimiter(cfg FloodConfig, now func() time.Time) *limiter {
	max := cfg.MaxSources
	if max <= 0 {
		max = 100000
	}
	limits := map[string]RateLimit{}
	for m, l := range cfg.Limits {
		if l.Rate > 0 {
			limits[strings.ToUpper(m)] = RateLimit{Rate: l.Rate, Burst: max1(l.Burst)}
		}
	}
	return &limiter{now: now, limits: limits, dropAfter: float64(cfg.DropAfter), max: max,
		buckets: map[bucketKey]*list.Element{}, lru: list.New()}
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// take spends one token of addr's bucket for method and says what to do;
// retry is when a refused source may send again (whole seconds, at least 1).
func (l *limiter) take(addr netip.Addr, method string) (v verdict, retry int) {
	lim, ok := l.limits[method]
	if !ok {
		return admit, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	key := bucketKey{addr, method}
	var b *bucket
	if el, ok := l.buckets[key]; ok {
		l.lru.MoveToFront(el)
		b = el.Value.(*bucket)
		b.tokens = math.Min(float64(lim.Burst), b.tokens+now.Sub(b.last).Seconds()*lim.Rate)
		b.last = now
	} else {
		l.evict(now)
		b = &bucket{key: key, tokens: float64(lim.Burst), last: now}
		l.buckets[key] = l.lru.PushFront(b)
	}
	switch {
	case b.tokens >= 1:
		b.tokens--
		return admit, 0
	case l.dropAfter > 0 && b.tokens <= -l.dropAfter:
		return drop, 0
	}
	b.tokens--
	return refuse, int(math.Ceil((1 - b.tokens) / lim.Rate))
}

// evict makes room for one bucket: the least recently used goes when the
// cap is reached, and up to two idle buckets that have refilled (a full
// bucket is the same as none) go on every call, so memory follows the
// sources actually sending.
func (l *limiter) evict(now time.Time) {
	for i := 0; i < 2 && l.lru.Len() > 0; i++ {
		b := l.lru.Back().Value.(*bucket)
		lim := l.limits[b.key.method]
		full := time.Duration((float64(lim.Burst) + l.dropAfter) / lim.Rate * float64(time.Second))
		if now.Sub(b.last) < full {
			break
		}
		l.remove(l.lru.Back())
	}
	for l.lru.Len() >= l.max {
		l.remove(l.lru.Back())
	}
}

func (l *limiter) remove(el *list.Element) {
	delete(l.buckets, el.Value.(*bucket).key)
	l.lru.Remove(el)
}

// size is the number of buckets held.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// flood is the server's flood control: rate limits, the lock-out and
// their metrics.
type flood struct {
	lim     *limiter
	block   *Lockout
	trusted func(netip.Addr) bool
	limited *prometheus.CounterVec // by method and action: refused, dropped, blocked
}

func newFlood(cfg FloodConfig, trusted func(netip.Addr) bool, log *slog.Logger) *flood {
	now := time.Now
	return &flood{lim: newLimiter(cfg, now), block: NewLockout(cfg.Lockout, now, log), trusted: trusted,
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voicemail_sip_rate_limited_total",
			Help: "SIP requests refused by flood control, by method and action: refused (503 + Retry-After), dropped (no answer), blocked (403: the source is locked out after repeated authentication failures).",
		}, []string{"method", "action"}),
	}
}

func (f *flood) collectors() []prometheus.Collector {
	return append([]prometheus.Collector{f.limited}, f.block.collectors()...)
}

// limitedMethod reports whether m is subject to flood control: the
// out-of-dialog requests that start something.
func limitedMethod(m sip.RequestMethod) bool {
	switch m {
	case sip.INVITE, sip.SUBSCRIBE, sip.REGISTER, sip.OPTIONS:
		return true
	}
	return false
}

// admit applies flood control to a request about to be handled; false
// means it was answered (503, 403) or dropped and must go no further.
func (s *Server) admit(req *sip.Request, tx sip.ServerTransaction) bool {
	f := s.flood
	if f == nil || !limitedMethod(req.Method) {
		return true
	}
	if to := req.To(); to != nil && to.Params.Has("tag") {
		return true // in a dialog: a refresh or re-INVITE of something admitted
	}
	addr, ok := addrOf(req.Source())
	if !ok || (f.trusted != nil && f.trusted(addr)) {
		return true // a proxy carries many phones: it is not one source
	}
	method := string(req.Method)
	v, retry := f.lim.take(addr, method)
	if v == drop {
		f.limited.WithLabelValues(method, "dropped").Inc()
		return false
	}
	if req.Method != sip.OPTIONS {
		if _, blocked := f.block.Blocked(addr); blocked {
			f.limited.WithLabelValues(method, "blocked").Inc()
			_ = respond(tx, req, 403, "Forbidden", nil, "")
			return false
		}
	}
	if v == refuse {
		f.limited.WithLabelValues(method, "refused").Inc()
		_ = respond(tx, req, 503, "Service Unavailable", nil, "", sip.NewHeader("Retry-After", strconv.Itoa(retry)))
		return false
	}
	return true
}

// SubscriptionCaps are the caps on live subscriptions per source IP and
// per mailbox (0 = no cap).
func (s *Server) SubscriptionCaps() (perSource, perMailbox int) {
	return s.cfg.Flood.MaxSubscriptionsPerSource, s.cfg.Flood.MaxSubscriptionsPerMailbox
}

// TrustedSource reports whether a request's network source ("ip:port") is
// a trusted proxy (Config.TrustedSource, else sip.trusted_proxies).
func (s *Server) TrustedSource(source string) bool {
	addr, ok := addrOf(source)
	return ok && s.cfg.TrustedSource != nil && s.cfg.TrustedSource(addr)
}

// SourceIP is the IP of a request's network source ("ip:port"), or "".
func SourceIP(source string) string {
	if a, ok := addrOf(source); ok {
		return a.String()
	}
	return ""
}

// addrOf is the IP of a request's network source ("ip:port").
func addrOf(src string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(src); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(src); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}
