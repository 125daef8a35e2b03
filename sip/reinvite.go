package sip

import (
	"time"

	"github.com/emiago/sipgo/sip"
)

// onReInvite handles hold, resume and codec changes (RFC 3264 §8), and a
// re-INVITE without SDP: we offer in the 200 and take the answer from the
// ACK (RFC 3261 §14.2, RFC 6337 §5.3).
func (s *Server) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	d := s.inDialog(req, tx)
	if d == nil {
		return
	}
	if !d.reinvite.TryLock() {
		Reply(tx, req, ErrPending, d.localTag)
		return
	}
	if len(req.Body()) == 0 {
		// The offer is outstanding until the ACK: the lock stays held so
		// an overlapping re-INVITE gets 491 (RFC 3261 §14.2).
		defer d.reinvite.Unlock()
		res := d.reinviteOffer(req)
		d.refreshTimer(req, res)
		d.awaitAnswer(req, tx, res)
		return
	}
	res := d.reinviteAnswer(req)
	// An INVITE overlaps only until our final response (RFC 3261 §14.2): a
	// caller may send the next one as soon as it sees this one.
	d.reinvite.Unlock()
	d.refreshTimer(req, res)
	_ = tx.Respond(res)
}

// reinviteAnswer applies a re-INVITE's offer and returns our answer.
func (d *Dialog) reinviteAnswer(req *sip.Request) *sip.Response {
	o, err := ParseOffer(req.Body())
	if err == nil {
		o, err = d.checkReoffer(o, req)
	} else {
		err = Refuse(ErrNotAcceptableHere, Warning(305, err.Error()))
	}
	if err != nil {
		code, reason, hdrs := Status(err)
		res := sip.NewResponseFromRequest(req, code, reason, nil)
		for _, h := range hdrs {
			res.AppendHeader(h)
		}
		return res
	}
	d.setOffer(o, true)
	res := sip.NewResponseFromRequest(req, 200, "OK", Answer(o, d.local()))
	res.AppendHeader(d.s.contactFor(req))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	d.log.Info("re-INVITE", "direction", o.Direction, "codec", o.Codec.String())
	return res
}

// reinviteOffer is the 200 to a re-INVITE without SDP: our current
// description with the o= version bumped, sendrecv so that the caller may
// resume from hold with its answer (RFC 6337 §5.3).
func (d *Dialog) reinviteOffer(req *sip.Request) *sip.Response {
	d.mu.Lock()
	d.sdpVer++
	o := d.offer
	d.mu.Unlock()
	var body []byte
	if o != nil {
		cur := *o
		cur.Direction = "sendrecv"
		body = Answer(&cur, d.local())
	} else {
		body = NewOffer(d.local())
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	res.AppendHeader(d.s.contactFor(req))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	return res
}

// awaitAnswer sends the 200 with our offer, retransmits it over unreliable
// transports until the ACK (RFC 3261 §13.3.1.4) and applies the answer the
// ACK carries. An ACK without a usable answer leaves the session as it was;
// no ACK in 64*T1 ends the call (RFC 3261 §14.2: the UAS SHOULD BYE).
func (d *Dialog) awaitAnswer(req *sip.Request, tx sip.ServerTransaction, res *sip.Response) {
	// ackCh holds one ACK, of the INVITE named by ackWant: empty it of an
	// earlier INVITE's ACK so that this one's finds room.
	seq := req.CSeq().SeqNo
	d.ackWant.Store(seq)
	select {
	case <-d.ackCh:
	default:
	}
	if err := tx.Respond(res); err != nil {
		d.log.Warn("sending the offer in a 200 to a re-INVITE failed", "err", err)
		return
	}
	reliable := sip.IsReliable(req.Transport())
	interval := sip.T1
	retransmit := time.NewTimer(interval)
	defer retransmit.Stop()
	deadline := time.NewTimer(64 * sip.T1)
	defer deadline.Stop()
	for {
		var ack *sip.Request
		select {
		case ack = <-d.ackCh:
		case ack = <-tx.Acks():
		case <-retransmit.C:
			if !reliable {
				_ = tx.Respond(res)
			}
			interval = min(2*interval, sip.T2)
			retransmit.Reset(interval)
			continue
		case <-deadline.C:
			d.log.Warn("no ACK for the offer in a 200 to a re-INVITE; ending the call")
			d.hangup()
			return
		case <-d.hungUp.Done():
			return
		}
		if c := ack.CSeq(); c == nil || c.SeqNo != seq {
			continue // the ACK of an earlier INVITE, left in the channel
		}
		o, err := ParseOffer(ack.Body())
		if err == nil {
			err = d.checkAnswer(o)
		}
		if err != nil {
			d.log.Info("ACK without a usable SDP answer; the session stays as it was", "err", err)
			return
		}
		d.setOffer(o, false)
		d.log.Info("re-INVITE without SDP: answer in the ACK", "direction", o.Direction, "codec", o.Codec.String())
		return
	}
}
