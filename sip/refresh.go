package sip

import (
	"context"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Session refreshes we send when we are the refresher (RFC 4028 §7.4,
// refresher=uas; timer.go).

// refresher is what our Session-Expires says.
func (d *Dialog) refresher() string {
	if d.weRefresh.Load() {
		return "uas"
	}
	return "uac"
}

// timerDue is when the session timer fires: half the interval when we
// refresh (RFC 4028 §10), else when we must BYE without a refresh.
func (d *Dialog) timerDue(interval time.Duration) time.Duration {
	if d.weRefresh.Load() {
		return interval / 2
	}
	return byeBefore(interval)
}

// allowsUpdate reports whether the caller's INVITE lists UPDATE in Allow.
func (d *Dialog) allowsUpdate() bool {
	for h := range Headers(d.invite, "Allow") {
		for _, m := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(m), "UPDATE") {
				return true
			}
		}
	}
	return false
}

// refresh sends one session refresh: an UPDATE without SDP when the caller
// allows it (RFC 4028 §7.4 prefers it), else a re-INVITE with our current
// description, unchanged version, acknowledged at once. It reports whether
// the caller accepted it; a 2xx with Session-Expires may change the
// interval or hand the refresher role back to the caller.
func (d *Dialog) refresh(ctx context.Context) bool {
	iv := time.Duration(d.interval.Load())
	hdrs := []sip.Header{
		sip.NewHeader("Session-Expires", sessionExpires(iv, "uas")),
		sip.NewHeader("Supported", "timer"),
	}
	method := sip.UPDATE
	var body []byte
	if !d.allowsUpdate() {
		method = sip.INVITE
		d.mu.Lock()
		o := d.offer
		d.mu.Unlock()
		if o == nil {
			return false
		}
		body = Answer(o, d.local()) // what we last answered, same o= version
		hdrs = append(hdrs, sip.NewHeader("Content-Type", "application/sdp"))
	}
	req := d.request(method, body, hdrs...)
	rctx, cancel := context.WithTimeout(ctx, 32*sip.T1)
	defer cancel()
	res, err := d.s.Do(rctx, req)
	if err != nil {
		d.log.Warn("session refresh", "method", method, "err", err)
		return false
	}
	if method == sip.INVITE && res.IsSuccess() {
		// The ACK of a 2xx is ours to send, outside the transaction
		// (RFC 3261 §13.2.2.4), with the INVITE's CSeq.
		ack := d.requestSeq(sip.ACK, req.CSeq().SeqNo, nil)
		if err := d.s.client.WriteRequest(ack, sipgo.ClientRequestAddVia); err != nil {
			d.log.Warn("ACK of the refreshing re-INVITE", "err", err)
		}
	}
	if !res.IsSuccess() {
		d.log.Warn("session refresh refused", "method", method, "status", res.StatusCode)
		return false
	}
	if method == sip.INVITE {
		if o, err := ParseOffer(res.Body()); err == nil {
			d.setOffer(o, false) // the caller's answer to our offer
		}
	}
	if h := Header(res, "Session-Expires"); h != nil {
		v, rest, _ := strings.Cut(h.Value(), ";")
		if secs, err := time.ParseDuration(strings.TrimSpace(v) + "s"); err == nil && secs >= d.s.minSE() {
			d.interval.Store(int64(secs))
		}
		if strings.Contains(strings.ToLower(strings.ReplaceAll(rest, " ", "")), "refresher=uac") {
			d.weRefresh.Store(false)
		}
	}
	d.log.Debug("session refreshed", "method", method)
	return true
}
