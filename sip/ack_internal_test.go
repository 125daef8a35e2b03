package sip

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestAckedKeepsOnlyTheAwaitedACK: a phone that acknowledges a 500 in a new
// transaction (CSeq 4) just before the ACK carrying the answer to our offer
// (CSeq 3) must not push the latter out of the one-slot channel (the race
// behind a flaky TestReInviteWithoutSDP).
func TestAckedKeepsOnlyTheAwaitedACK(t *testing.T) {
	d := &Dialog{ackCh: make(chan *sip.Request, 1)}
	ack := func(seq uint32) *sip.Request {
		r := sip.NewRequest(sip.ACK, sip.Uri{User: "1001", Host: "127.0.0.1"})
		r.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: sip.ACK})
		return r
	}
	d.acked(ack(1)) // nobody waits
	if len(d.ackCh) != 0 {
		t.Fatal("an ACK nobody waits for was kept")
	}
	d.ackWant.Store(3)
	d.acked(ack(4))
	d.acked(ack(2))
	d.acked(ack(3))
	select {
	case got := <-d.ackCh:
		if got.CSeq().SeqNo != 3 {
			t.Fatalf("kept the ACK of CSeq %d, want 3", got.CSeq().SeqNo)
		}
	default:
		t.Fatal("the awaited ACK was dropped")
	}
}
