package sip

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// answered remembers, for 64×T1 (32 s), the requests the server answered
// and whose transactions it then ended, so that a copy of one (the caller
// retransmits when our response was lost) gets what the transaction
// would have given it: a BYE's copy 200 again, not 481 (Timer J, RFC 3261
// §17.2.2); an INVITE's copy nothing, and its CANCEL 200 (Timer L, RFC 6026
// §7.1).
//
// sipgo's transactions keep the request and our response for those 32 s:
// about 4 KiB per call for the BYE and 6 KiB for the INVITE, most of the
// server's memory under a stream of short calls (BENCHMARKS.md, "The
// BYE's transaction", "The INVITE's transaction"). The server ends them
// once the response is sent and keeps 16 bytes here instead: a hash of
// what identifies the transaction (Call-ID, the top Via's branch, the CSeq
// number) and when it was answered. A hash collision answers a stray
// request for a dialog that is over anyway.
type answered struct {
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

func newAnswered(ttl time.Duration, now func() time.Time) *answered {
	return &answered{seed: maphash.MakeSeed(), ttl: ttl, now: now, base: now(),
		cur: map[uint64]time.Duration{}}
}

// key identifies req's server transaction, as RFC 3261 §17.2.3 matches
// a request to one (branch), with the Call-ID and CSeq to be sure; ok is
// false for a request without them.
func (a *answered) key(req *sip.Request) (uint64, bool) {
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
func (a *answered) rotate(now time.Duration) {
	if now-a.since < a.ttl {
		return
	}
	a.old, a.cur, a.since = a.cur, map[uint64]time.Duration{}, now
}

// add records that req is answered.
func (a *answered) add(req *sip.Request) {
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

// seen reports whether req is a copy of a request answered less than ttl
// ago, or a CANCEL of one (same branch and CSeq number).
func (a *answered) seen(req *sip.Request) bool {
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
func (a *answered) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.cur) + len(a.old)
}
