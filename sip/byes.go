package sip

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// answeredByes remembers, for Timer J (64×T1, 32 s), the BYEs the server
// answered 200, so that a copy of one (the caller retransmits when our 200
// was lost) is answered 200 again and not 481.
//
// That is the BYE server transaction's job (RFC 3261 §17.2.2), but
// sipgo's transaction keeps the BYE and our response for those 32 s:
// about 4 KiB per call, a quarter of the server's memory under a stream of
// short calls (BENCHMARKS.md, "The BYE's transaction"). The server ends
// the transaction once the 200 is sent and keeps 16 bytes here instead: a
// hash of what identifies the transaction (Call-ID, the top Via's branch,
// the CSeq number) and when it was answered. A hash collision answers 200
// to a stray BYE for a dialog that is over anyway.
type answeredByes struct {
	mu   sync.Mutex
	seed maphash.Seed
	ttl  time.Duration
	now  func() time.Time
	base time.Time // entries hold the time since base: no pointers to scan
	// Two generations: entries go into cur; when cur is older than ttl it
	// becomes old and old is dropped, so an entry lives ttl to 2×ttl and
	// nothing needs a timer of its own.
	cur, old map[uint64]time.Duration
	since    time.Duration // when cur began
}

func newAnsweredByes(ttl time.Duration, now func() time.Time) *answeredByes {
	return &answeredByes{seed: maphash.MakeSeed(), ttl: ttl, now: now, base: now(),
		cur: map[uint64]time.Duration{}}
}

// byeKey identifies req's server transaction, as RFC 3261 §17.2.3 matches
// a request to one (branch), with the Call-ID and CSeq to be sure; ok is
// false for a request without them.
func (a *answeredByes) key(req *sip.Request) (uint64, bool) {
	via, cid, cseq := req.Via(), req.CallID(), req.CSeq()
	if via == nil || cid == nil || cseq == nil {
		return 0, false
	}
	branch, _ := via.Params.Get("branch")
	var h maphash.Hash
	h.SetSeed(a.seed)
	h.WriteString(cid.Value())
	h.WriteByte(0)
	h.WriteString(branch)
	h.WriteByte(0)
	var n [4]byte
	n[0], n[1], n[2], n[3] = byte(cseq.SeqNo>>24), byte(cseq.SeqNo>>16), byte(cseq.SeqNo>>8), byte(cseq.SeqNo)
	h.Write(n[:])
	return h.Sum64(), true
}

// rotate moves to a new generation when cur is ttl old. a.mu is held.
func (a *answeredByes) rotate(now time.Duration) {
	if now-a.since < a.ttl {
		return
	}
	a.old, a.cur, a.since = a.cur, map[uint64]time.Duration{}, now
}

// add records that req was answered 200.
func (a *answeredByes) add(req *sip.Request) {
	k, ok := a.key(req)
	if !ok {
		return
	}
	now := a.now().Sub(a.base)
	a.mu.Lock()
	a.rotate(now)
	a.cur[k] = now
	a.mu.Unlock()
}

// seen reports whether req is a copy of a BYE answered 200 less than ttl ago.
func (a *answeredByes) seen(req *sip.Request) bool {
	k, ok := a.key(req)
	if !ok {
		return false
	}
	now := a.now().Sub(a.base)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rotate(now)
	at, ok := a.cur[k]
	if !ok {
		at, ok = a.old[k]
	}
	return ok && now-at < a.ttl
}

// len is the number of entries kept (tests).
func (a *answeredByes) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.cur) + len(a.old)
}
