package mwi

// Sending NOTIFYs: in a subscription's dialog, or unsolicited to a target.

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/emiago/sipgo/sip"

	vsip "github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/store"
)

type outcome int

const (
	outOK        outcome = iota
	outFatal             // the subscription is gone (or the target said stop)
	outTransient         // try again later
	outStopped           // shutting down: leave everything as it is
)

func (m *Notifier) send(e *mwiEntry) {
	m.mu.Lock()
	force, term, zeroFirst, changedAt := e.force, e.term, e.zeroFirst, e.changedAt
	haveSent, sent := e.haveSent, e.sent
	e.dirty, e.force, e.changedAt = false, false, time.Time{}
	m.mu.Unlock()

	ctx := m.ctx
	var c store.Counts
	if term != reasonNoResource {
		var err error
		if c, err = m.counts(ctx, e.mb); err != nil {
			if ctx.Err() != nil {
				m.finish(e, c, outStopped, "", changedAt, time.Time{}, "")
				return
			}
			m.log.Warn("mwi counts", "tenant", e.mb.tenant, "mailbox", e.mb.mailbox, "err", err)
			m.finish(e, c, outTransient, "", changedAt, time.Time{}, "")
			return
		}
	}
	if !force && term == "" && haveSent && c == sent {
		m.finish(e, c, outOK, "", time.Time{}, time.Time{}, "") // nothing new for this phone
		return
	}
	start := time.Now()
	var res outcome
	var why string
	if e.sub != nil {
		m.mu.Lock()
		left := int(time.Until(e.sub.ExpiresAt).Round(time.Second) / time.Second)
		m.mu.Unlock()
		active := fmt.Sprintf("active;expires=%d", max(left, 0))
		if zeroFirst {
			res, why = m.notifyDialog(ctx, e, store.Counts{}, active)
		}
		if !zeroFirst || res == outOK || res == outTransient {
			state := active
			if term != "" {
				state = "terminated"
				if term != reasonNone {
					state += ";reason=" + term
				}
			}
			res, why = m.notifyDialog(ctx, e, c, state)
		}
	} else {
		res, why = m.notifyTarget(ctx, e, c)
	}
	m.finish(e, c, res, why, changedAt, start, term)
}

// finish records a NOTIFY's outcome and schedules what comes next; sentTerm
// is the termination reason the NOTIFY carried, if any.
func (m *Notifier) finish(e *mwiEntry, c store.Counts, res outcome, why string, changedAt, start time.Time, sentTerm string) {
	if res == outOK && !start.IsZero() && !changedAt.IsZero() {
		m.m.latency.Observe(start.Sub(changedAt).Seconds())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e.inflight = false
	now := time.Now()
	if res == outStopped || m.stopped {
		e.dirty = true
		return
	}
	if e.gone {
		return
	}
	if res == outOK && !start.IsZero() {
		e.lastSent, e.sent, e.haveSent, e.retries, e.notBefore = start, c, true, 0, time.Time{}
	}
	switch {
	case sentTerm != "":
		// The last NOTIFY went (or could not go): it is over.
		m.endLocked(e, e.endReason, "")
		return
	case res == outFatal:
		m.endLocked(e, why, why)
		return
	case res == outTransient:
		e.dirty = true
		if e.changedAt.IsZero() {
			e.changedAt = changedAt
		}
		d := mwiRetry << min(e.retries, 6)
		e.retries++
		e.notBefore = now.Add(min(d, mwiRetryMax))
	}
	m.scheduleLocked(e, now)
}

// endLocked forgets e. A target that answered stopReason (a status code)
// is remembered as stopped.
func (m *Notifier) endLocked(e *mwiEntry, reason, stopReason string) {
	m.removeLocked(e)
	if e.sub != nil {
		m.m.ended.WithLabelValues(reason).Inc()
		m.log.Info("mwi subscription ended", "tenant", e.mb.tenant, "mailbox", e.mb.mailbox,
			"call_id", e.sub.CallID, "reason", reason)
		m.background(func(ctx context.Context) error { return m.st.DeleteMWISubscription(ctx, e.sub.ID) })
		return
	}
	if stopReason == "" {
		return
	}
	m.stopTargetLocked(e.key, store.MWITargetStop{Tenant: e.mb.tenant, Mailbox: e.mb.mailbox, Target: e.tgt.uri, Reason: stopReason})
}

// stopTargetLocked stops a target for good (until it is listed again).
func (m *Notifier) stopTargetLocked(key string, stop store.MWITargetStop) {
	if e := m.targets[key]; e != nil {
		m.removeLocked(e)
	}
	stop.At = time.Now().UTC()
	m.stops[key] = stop.Reason
	m.log.Info("mwi target stopped", "tenant", stop.Tenant, "mailbox", stop.Mailbox, "target", stop.Target, "reason", stop.Reason)
	m.background(func(ctx context.Context) error { return m.st.StopMWITarget(ctx, stop) })
}

// background runs a store write off the caller's goroutine.
func (m *Notifier) background(f func(ctx context.Context) error) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f(ctx); err != nil {
			m.log.Warn("mwi store write", "err", err)
		}
	}()
}

// dropStatus reports whether a NOTIFY response ends the subscription
// (RFC 6665 §4.2.2, docs/mwi.md).
func dropStatus(code int) bool {
	switch code {
	case 404, 405, 408, 410, 416, 489, 501, 604:
		return true
	}
	return code >= 480 && code <= 485
}

// stopTargetStatus reports whether an unsolicited target asked us to stop.
func stopTargetStatus(code int) bool { return code == 481 || code == 405 || code == 489 }

// MWIBody is the application/simple-message-summary body of RFC 3842 §5.2:
// CRLF line ends, urgent counts included in the totals.
func MWIBody(account string, c store.Counts) []byte {
	waiting := "no"
	if c.New > 0 {
		waiting = "yes"
	}
	return fmt.Appendf(nil, "Messages-Waiting: %s\r\nMessage-Account: %s\r\nVoice-Message: %s\r\n",
		waiting, account, voiceCounts(c))
}

// voiceCounts is the Voice-Message value: new/old (urgent new/urgent old).
func voiceCounts(c store.Counts) string {
	return fmt.Sprintf("%d/%d (%d/%d)", c.New, c.Old, c.UrgentNew, c.UrgentOld)
}

// account is the Message-Account URI: the access number at host.
func (m *Notifier) account(host, mailbox string) string {
	user := mailbox
	if an := m.srv.AccessNumbers(); len(an) > 0 {
		user = an[0]
	}
	if host == "" {
		host = m.srv.PublicIP().String()
	}
	return "sip:" + user + "@" + host
}

func eventValue(id string) string {
	if id == "" {
		return mwiEvent
	}
	return mwiEvent + ";id=" + id
}

// notifyDialog sends one NOTIFY in e's subscription dialog.
func (m *Notifier) notifyDialog(ctx context.Context, e *mwiEntry, c store.Counts, state string) (outcome, string) {
	m.mu.Lock()
	sub := *e.sub
	e.sub.LocalCSeq++
	sub.LocalCSeq = e.sub.LocalCSeq
	if !e.gone {
		m.reserveCSeqLocked(e)
	}
	m.mu.Unlock()

	req, err := m.dialogRequest(&sub, MWIBody(m.account(sub.AccountHost, sub.Mailbox), c), state)
	if err != nil {
		m.log.Warn("mwi NOTIFY not built", "call_id", sub.CallID, "err", err)
		m.m.notifies.WithLabelValues("subscription", "error").Inc()
		return outFatal, "error"
	}
	res, err := m.do(ctx, req)
	log := func() *slog.Logger {
		return m.log.With("tenant", sub.Tenant, "mailbox", sub.Mailbox, "call_id", sub.CallID, "state", state,
			"voice", voiceCounts(c))
	}
	// A subscriber that does not answer is gone (RFC 6665 §4.2.2).
	return m.classify(ctx, log, "subscription", "mwi NOTIFY", res, err, true,
		func(code int) (string, bool) { return "rejected", dropStatus(code) })
}

// classify turns the answer to a NOTIFY into an outcome, and logs and
// counts it: a transaction error ends the subscription when errFatal; ends
// says which statuses end it and with what reason. log builds the logger
// with the NOTIFY's attributes only when a line is written (a start-up
// sends 100,000 NOTIFYs that log nothing).
func (m *Notifier) classify(ctx context.Context, log func() *slog.Logger, kind, what string, res *sip.Response, err error,
	errFatal bool, ends func(code int) (string, bool)) (outcome, string) {
	switch {
	case ctx.Err() != nil:
		return outStopped, ""
	case err != nil:
		log().Info(what+" failed", "err", err)
		m.m.notifies.WithLabelValues(kind, "timeout").Inc()
		if errFatal {
			return outFatal, "timeout"
		}
		return outTransient, ""
	case res.StatusCode < 300:
		if m.log.Enabled(ctx, slog.LevelDebug) {
			log().Debug(what+" sent", "status", res.StatusCode)
		}
		m.m.notifies.WithLabelValues(kind, "ok").Inc()
		return outOK, ""
	}
	if why, ok := ends(res.StatusCode); ok {
		log().Info(what+" rejected", "status", res.StatusCode)
		m.m.notifies.WithLabelValues(kind, "rejected").Inc()
		return outFatal, why
	}
	log().Info(what+" failed", "status", res.StatusCode)
	m.m.notifies.WithLabelValues(kind, "error").Inc()
	return outTransient, ""
}

// dialogRequest builds a NOTIFY in sub's dialog.
func (m *Notifier) dialogRequest(sub *store.MWISubscription, body []byte, state string) (*sip.Request, error) {
	var target sip.Uri
	if err := sip.ParseUri(sub.Contact, &target); err != nil {
		return nil, fmt.Errorf("contact %q: %w", sub.Contact, err)
	}
	from := &sip.FromHeader{Params: sip.NewParams()}
	var err error
	if from.DisplayName, err = sip.ParseAddressValue(sub.LocalURI, &from.Address, &from.Params); err != nil {
		return nil, fmt.Errorf("local URI %q: %w", sub.LocalURI, err)
	}
	from.Params.Add("tag", sub.LocalTag)
	to := &sip.ToHeader{Params: sip.NewParams()}
	if to.DisplayName, err = sip.ParseAddressValue(sub.RemoteURI, &to.Address, &to.Params); err != nil {
		return nil, fmt.Errorf("remote URI %q: %w", sub.RemoteURI, err)
	}
	to.Params.Add("tag", sub.RemoteTag)
	dl := vsip.InDialog{Target: target, From: from, To: to, CallID: sub.CallID, CSeq: sub.LocalCSeq,
		Routes: sub.RouteSet, Transport: sub.Transport}
	if m.symmetric(sub) {
		dl.Source = sub.Source
	}
	return m.srv.Request(sip.NOTIFY, dl, body,
		sip.NewHeader("Event", eventValue(sub.EventID)),
		sip.NewHeader("Subscription-State", state),
		sip.NewHeader("Content-Type", mwiContentType)), nil
}

// symmetric reports whether the NOTIFY goes back where the SUBSCRIBE came
// from: always over UDP (NAT), over TCP/TLS while that connection lives.
func (m *Notifier) symmetric(sub *store.MWISubscription) bool {
	if sub.Source == "" {
		return false
	}
	if !sip.IsReliable(sub.Transport) {
		return true
	}
	return m.srv.Connected(sub.Transport, sub.Source)
}

// notifyTarget sends an unsolicited NOTIFY: a new Call-ID, no To-tag,
// Subscription-State active (docs/mwi.md).
func (m *Notifier) notifyTarget(ctx context.Context, e *mwiEntry, c store.Counts) (outcome, string) {
	host := m.srv.PublicIP().String()
	if t, err := m.st.GetTenant(ctx, e.mb.tenant); err == nil && len(t.Domains) > 0 {
		host = t.Domains[0]
	}
	u := e.tgt.parsed
	req := sip.NewRequest(sip.NOTIFY, *u.Clone())
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: e.mb.mailbox, Host: host}, Params: sip.NewParams()}
	from.Params.Add("tag", vsip.NewTag())
	to := &sip.ToHeader{Address: sip.Uri{Scheme: u.Scheme, User: u.User, Host: u.Host, Port: u.Port}, Params: sip.NewParams()}
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(sip.NewHeader("Call-ID", vsip.NewTag()+vsip.NewTag()+"@"+m.srv.PublicIP().String()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.NOTIFY})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	transport := "UDP"
	if tp, ok := u.UriParams.Get("transport"); ok && tp != "" {
		transport = tp
	}
	req.AppendHeader(m.srv.Contact(transport))
	req.AppendHeader(sip.NewHeader("Event", mwiEvent))
	req.AppendHeader(sip.NewHeader("Subscription-State", "active"))
	req.AppendHeader(sip.NewHeader("Content-Type", mwiContentType))
	req.SetBody(MWIBody(m.account(host, e.mb.mailbox), c))

	res, err := m.do(ctx, req)
	log := func() *slog.Logger {
		return m.log.With("tenant", e.mb.tenant, "mailbox", e.mb.mailbox, "target", e.tgt.uri,
			"voice", voiceCounts(c))
	}
	// A target that does not answer may be rebooting: try again later.
	return m.classify(ctx, log, "unsolicited", "mwi unsolicited NOTIFY", res, err, false,
		func(code int) (string, bool) { return fmt.Sprint(code), stopTargetStatus(code) })
}

// do sends a request and waits for its final response.
func (m *Notifier) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	return m.srv.Do(ctx, req)
}
