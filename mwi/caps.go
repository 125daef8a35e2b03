package mwi

// Caps on live subscriptions (docs/mwi.md): one source IP, or one mailbox,
// may not hold more than the configured number; the next SUBSCRIBE gets
// 403. Counted over the subscriptions this instance holds.

import (
	"github.com/emiago/sipgo/sip"

	vsip "github.com/vmserver/voicemail/sip"
)

// overCapLocked reports which cap (if any) a new subscription of mb from
// source would exceed: "source", "mailbox" or "". With m.mu held.
func (m *Notifier) overCapLocked(mb mbKey, source string) string {
	perSource, perMailbox := m.srv.SubscriptionCaps()
	if perMailbox > 0 {
		n := 0
		for e := range m.byMB[mb] {
			if e.sub != nil && !e.gone {
				n++
			}
		}
		if n >= perMailbox {
			return "mailbox"
		}
	}
	// A trusted proxy carries the subscriptions of many phones.
	if ip := vsip.SourceIP(source); perSource > 0 && ip != "" && !m.srv.TrustedSource(source) {
		n := 0
		for _, e := range m.subs {
			if !e.gone && vsip.SourceIP(e.sub.Source) == ip {
				n++
				if n >= perSource {
					return "source"
				}
			}
		}
	}
	return ""
}

// refuseCap answers 403 with a Warning naming the cap.
func refuseCap(tx sip.ServerTransaction, req *sip.Request, localTag, which string) int {
	res := sip.NewResponseFromRequest(req, 403, "Forbidden", nil)
	if to := res.To(); to != nil {
		to.Params.Add("tag", localTag)
	}
	res.AppendHeader(vsip.Warning(399, "too many subscriptions for this "+which))
	_ = tx.Respond(res)
	return 403
}
