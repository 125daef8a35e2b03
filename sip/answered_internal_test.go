package sip

import (
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestAnsweredByes: a BYE is known by Call-ID, branch and CSeq for Timer
// J and no longer; old entries go with the generation after next.
func TestAnsweredByes(t *testing.T) {
	now := time.Unix(1000, 0)
	a := newAnswered(32*time.Second, func() time.Time { return now })
	bye := func(callID, branch string, cseq int) *sip.Request {
		t.Helper()
		m, err := sip.ParseMessage([]byte(fmt.Sprintf("BYE sip:1001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=%s\r\n"+
			"From: <sip:2002@127.0.0.1>;tag=a\r\nTo: <sip:1001@127.0.0.1>;tag=b\r\nCall-ID: %s\r\nCSeq: %d BYE\r\nContent-Length: 0\r\n\r\n",
			branch, callID, cseq)))
		if err != nil {
			t.Fatal(err)
		}
		return m.(*sip.Request)
	}
	a.add(bye("c1", "z9hG4bK1", 2))
	for _, tc := range []struct {
		req  *sip.Request
		want bool
	}{
		{bye("c1", "z9hG4bK1", 2), true},
		{bye("c1", "z9hG4bK2", 2), false}, // another transaction
		{bye("c1", "z9hG4bK1", 3), false},
		{bye("c2", "z9hG4bK1", 2), false},
	} {
		if got := a.seen(tc.req); got != tc.want {
			t.Errorf("seen(%s %s %d) = %v", tc.req.CallID().Value(), tc.req.Via().Params, tc.req.CSeq().SeqNo, got)
		}
	}
	now = now.Add(31 * time.Second)
	a.add(bye("c3", "z9hG4bK3", 2))
	if !a.seen(bye("c1", "z9hG4bK1", 2)) {
		t.Error("forgotten before Timer J")
	}
	now = now.Add(2 * time.Second) // c1 33 s old, c3 2 s
	if a.seen(bye("c1", "z9hG4bK1", 2)) || !a.seen(bye("c3", "z9hG4bK3", 2)) {
		t.Error("after 33 s: c1 still known or c3 forgotten")
	}
	now = now.Add(70 * time.Second)
	a.add(bye("c4", "z9hG4bK4", 2))
	if n := a.len(); n > 2 {
		t.Errorf("%d entries kept after two generations, want at most 2", n)
	}
}
