// Package scaleseed fills a voicemail database with a large, realistic and
// reproducible data set for the scale benchmarks (BENCHMARKS.md, "Data at
// scale"): mailboxes, messages spread over them and their folders, callers
// (some with exactly PerCaller messages, for GDPR forget), dates of which
// the oldest Expired are past retention, and one MWI subscription per
// mailbox. Rows only: no audio is written.
//
// Every row is a pure function of its index, so a range can be written
// again (Restore) after a benchmark deleted it, and the tests know what to
// expect without reading it back.
package scaleseed

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/vmserver/voicemail/store"
)

// Tenant is the tenant that holds everything.
const Tenant = store.DefaultTenant

// Plan is the size and shape of a data set.
type Plan struct {
	Mailboxes     int // numbers FirstMailbox, FirstMailbox+1, …
	Messages      int
	Expired       int // the oldest ones, received before RetentionDays ago
	RetentionDays int // the retention the benchmarks sweep with (the data set sets none)
	HeavyCallers  int // callers with exactly PerCaller messages each (HeavyCaller(i))
	PerCaller     int
	Subscriptions int      // MWI subscriptions, one per mailbox from the first
	SubOwner      string   // their owner (an instance id); the benchmark starts as this one
	Sinks         []string // host:port of the NOTIFY receivers, subscription k uses Sinks[k%len]
	// Now anchors the dates: a data set is valid for some days after it
	// (the non-expired messages stay younger than RetentionDays).
	Now time.Time
}

// Full is the data set of the benchmarks: 100,000 mailboxes, 10,000,000
// messages of which 1,000,000 are past a 30-day retention, 1,000 callers
// with 100 messages each, 100,000 MWI subscriptions.
func Full(now time.Time) Plan {
	return Plan{
		Mailboxes: 100_000, Messages: 10_000_000, Expired: 1_000_000, RetentionDays: 30,
		HeavyCallers: 1000, PerCaller: 100, Subscriptions: 100_000, SubOwner: "scale-bench",
		Sinks: DefaultSinks(16), Now: now,
	}
}

// Smoke is the same shape, small enough for make test.
func Smoke(now time.Time) Plan {
	return Plan{
		Mailboxes: 1000, Messages: 50_000, Expired: 5000, RetentionDays: 30,
		HeavyCallers: 10, PerCaller: 100, Subscriptions: 1000, SubOwner: "scale-bench",
		Sinks: DefaultSinks(4), Now: now,
	}
}

// DefaultSinks are n fixed loopback UDP addresses for the NOTIFY receivers
// (fixed, because the subscriptions are stored with them).
func DefaultSinks(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.0.1:%d", 39100+i)
	}
	return out
}

// Key identifies a plan's rows: a seeded database is reused only by the
// same plan.
func (p Plan) Key() string {
	return fmt.Sprintf("v1 mb=%d msg=%d exp=%d ret=%d heavy=%dx%d subs=%d owner=%s sinks=%v now=%d",
		p.Mailboxes, p.Messages, p.Expired, p.RetentionDays, p.HeavyCallers, p.PerCaller,
		p.Subscriptions, p.SubOwner, p.Sinks, p.Now.Unix())
}

func (p Plan) check() error {
	switch {
	case p.Mailboxes <= 0 || p.Messages <= 0:
		return fmt.Errorf("scaleseed: plan needs mailboxes and messages: %+v", p)
	case p.Expired < 0 || p.Expired > p.Messages:
		return fmt.Errorf("scaleseed: %d expired of %d messages", p.Expired, p.Messages)
	case p.RetentionDays < 2:
		return fmt.Errorf("scaleseed: retention %d days: want at least 2", p.RetentionDays)
	case p.HeavyCallers*p.PerCaller > p.Messages-p.Expired:
		return fmt.Errorf("scaleseed: %d heavy callers × %d do not fit in %d live messages", p.HeavyCallers, p.PerCaller, p.Messages-p.Expired)
	case p.Subscriptions > p.Mailboxes || (p.Subscriptions > 0 && len(p.Sinks) == 0):
		return fmt.Errorf("scaleseed: %d subscriptions for %d mailboxes and %d sinks", p.Subscriptions, p.Mailboxes, len(p.Sinks))
	}
	return nil
}

// FirstMailbox is the number of mailbox 0.
const FirstMailbox = 2_000_000

// Mailbox is the number of mailbox j.
func Mailbox(j int) string { return fmt.Sprint(FirstMailbox + j) }

// HeavyCaller is the E.164 number of heavy caller k: +1617555xxxx, a range
// no other caller uses.
func HeavyCaller(k int) string { return fmt.Sprintf("+1617555%04d", k) }

// otherCaller is one of two million ordinary callers.
func otherCaller(h uint64) string { return fmt.Sprintf("+4477%08d", h%2_000_000) }

// mix is splitmix64: the pseudo-random but reproducible part of row i.
func mix(i uint64) uint64 {
	z := i + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Row is message i of a plan.
type Row struct {
	ID, Mailbox, Folder, Caller, MediaKey string
	Received                              int64 // unix ns
	DurationMS, Size                      int64
	Urgent, Read                          int64
}

// heavyStride spaces the heavy callers' messages evenly over the live ones.
func (p Plan) heavyStride() int {
	n := p.HeavyCallers * p.PerCaller
	if n == 0 {
		return 0
	}
	return (p.Messages - p.Expired) / n
}

// HeavyIndex is the index of message m (0 ≤ m < PerCaller) of heavy caller k.
func (p Plan) HeavyIndex(k, m int) int {
	return p.Expired + (m*p.HeavyCallers+k)*p.heavyStride()
}

// received is row i's time: rising with i, the first Expired rows spread
// over the year before RetentionDays+1 days ago, the others over the last
// RetentionDays-1 days. Rising times make rising UUIDv7 ids, so rows are
// appended in key order.
func (p Plan) received(i int) int64 {
	now := p.Now.UTC().UnixNano()
	day := int64(24 * time.Hour)
	if i < p.Expired {
		end := now - int64(p.RetentionDays+1)*day
		span := 365 * day
		return end - span + int64(float64(span)*float64(i)/float64(p.Expired))
	}
	start := now - int64(p.RetentionDays-1)*day
	span := int64(p.RetentionDays-2) * day
	live := p.Messages - p.Expired
	return start + int64(float64(span)*float64(i-p.Expired)/float64(live))
}

// Message returns row i.
func (p Plan) Message(i int) Row {
	h := mix(uint64(i))
	r := Row{Received: p.received(i)}
	r.Mailbox = Mailbox(int(h % uint64(p.Mailboxes)))
	r.Caller = otherCaller(h >> 20)
	if s := p.heavyStride(); s > 0 && i >= p.Expired && (i-p.Expired)%s == 0 {
		if j := (i - p.Expired) / s; j < p.HeavyCallers*p.PerCaller {
			r.Caller = HeavyCaller(j % p.HeavyCallers)
		}
	}
	// Folders as people leave them: a quarter new, most old, a few filed.
	switch f := (h >> 40) % 100; {
	case f < 25:
		r.Folder = store.FolderNew
		r.Read = int64(b2i(f < 3)) // heard but left in new
	case f < 85:
		r.Folder, r.Read = store.FolderOld, 1
	case f < 90:
		r.Folder, r.Read = store.FolderWork, 1
	case f < 95:
		r.Folder, r.Read = store.FolderFamily, 1
	default:
		r.Folder, r.Read = store.FolderFriends, 1
	}
	r.Urgent = int64(b2i((h>>48)%100 < 5))
	r.DurationMS = 1000 + int64((h>>52)%60_000)
	r.Size = 44 + r.DurationMS*16 // 8 kHz 16-bit WAV
	r.ID = messageID(r.Received, uint64(i))
	r.MediaKey = store.MediaKey(Tenant, r.Mailbox, r.ID)
	return r
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// messageID is a UUIDv7 of time t (ns) whose random bits are i, so ids rise
// with i and never collide.
func messageID(t int64, i uint64) string {
	var u uuid.UUID
	ms := uint64(t / int64(time.Millisecond))
	binary.BigEndian.PutUint64(u[0:8], ms<<16) // 48-bit ms, then rand_a
	binary.BigEndian.PutUint64(u[8:16], i)
	u[6] = 0x70 | (u[6] & 0x0f) // version 7
	u[8] = 0x80 | (u[8] & 0x3f) // variant 10
	return u.String()
}

// Sub is MWI subscription k (of mailbox k).
type Sub struct {
	ID, Mailbox, CallID, Contact, Source string
}

// Subscription returns subscription k.
func (p Plan) Subscription(k int) Sub {
	sink := p.Sinks[k%len(p.Sinks)]
	mb := Mailbox(k)
	return Sub{
		ID: fmt.Sprintf("scale-%07d", k), Mailbox: mb, CallID: fmt.Sprintf("scale-%d@bench", k),
		Contact: "sip:" + mb + "@" + sink, Source: sink,
	}
}
