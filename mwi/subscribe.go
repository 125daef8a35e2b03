package mwi

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	vsip "github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/store"
)

// onSubscribe answers SUBSCRIBE for the message-summary package
// (RFC 6665 §4.2.1; docs/architecture.md): 200 (never 202) with an Expires no larger
// than asked, then at once a NOTIFY in the same dialog.
func (m *Notifier) onSubscribe(req *sip.Request, tx sip.ServerTransaction) {
	status := 0
	defer func() { m.m.subscribes.WithLabelValues(strconv.Itoa(status)).Inc() }()
	reply := func(err error, toTag string) { status = vsip.Reply(tx, req, err, toTag) }
	cid, from, to, cseq := req.CallID(), req.From(), req.To(), req.CSeq()
	if cid == nil || from == nil || to == nil || cseq == nil {
		reply(vsip.ErrBadRequest, "")
		return
	}
	remoteTag, _ := from.Params.Get("tag")
	localTag, inDialog := to.Params.Get("tag")
	pkg, eventID := parseEvent(req)
	if !strings.EqualFold(pkg, mwiEvent) {
		reply(vsip.Refuse(vsip.ErrBadEvent, sip.NewHeader("Allow-Events", mwiEvent)), localTag)
		return
	}
	if err := vsip.CheckRequire(req); err != nil {
		reply(err, localTag)
		return
	}
	if !acceptsSummary(req) {
		reply(vsip.Refuse(vsip.ErrNotAcceptable, sip.NewHeader("Accept", mwiContentType)), localTag)
		return
	}
	asked, ok := parseExpires(req)
	if !ok || remoteTag == "" {
		reply(vsip.ErrBadRequest, localTag)
		return
	}
	grant := min(asked, mwiMaxExpires)
	m.mu.Lock()
	ready := m.started && !m.stopped
	m.mu.Unlock()
	if !ready {
		reply(vsip.ErrUnavailable, localTag)
		return
	}
	if inDialog {
		status = m.refresh(req, tx, subKey(cid.Value(), remoteTag, localTag, eventID), grant)
		return
	}
	status = m.subscribe(req, tx, remoteTag, eventID, grant)
}

// subscribe creates a subscription (or answers a fetch, Expires: 0).
func (m *Notifier) subscribe(req *sip.Request, tx sip.ServerTransaction, remoteTag, eventID string, grant int) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := m.st
	localTag := vsip.NewTag()
	log := m.log.With("call_id", req.CallID().Value())
	contact := req.Contact()
	if contact == nil {
		return vsip.Reply(tx, req, vsip.Refuse(vsip.ErrBadRequest, vsip.Warning(399, "SUBSCRIBE without Contact")), localTag)
	}
	tenant, mb, err := m.srv.SubscriberMailbox(ctx, req)
	if errors.Is(err, vsip.ErrUnknownMailbox) {
		// Who may not watch learns nothing of which mailboxes exist: the
		// same challenge (then 403) as for a real one; 404 only to those
		// who may.
		ghost := &store.Mailbox{Tenant: tenant, Number: req.Recipient.User}
		if ok, code := m.srv.AuthorizeSubscribe(ctx, tx, req, ghost, localTag); !ok {
			return code
		}
		log.Info("mwi subscribe: unknown mailbox", "tenant", tenant, "err", err)
	} else if err != nil {
		log.Error("mwi subscribe: mailbox lookup", "err", err)
	}
	if err != nil {
		return vsip.Reply(tx, req, err, localTag)
	}
	// Only a trusted proxy, or the mailbox's own phone after digest, may
	// watch a mailbox (docs/sip.md).
	if ok, code := m.srv.AuthorizeSubscribe(ctx, tx, req, mb, localTag); !ok {
		return code
	}
	number := mb.Number
	now := time.Now()
	sub := &store.MWISubscription{
		ID: store.NewMessageID(), Tenant: tenant, Mailbox: number,
		CallID: req.CallID().Value(), LocalTag: localTag, RemoteTag: remoteTag, EventID: eventID,
		LocalURI:  addressWithoutTag(req.To().DisplayName, req.To().Address, req.To().Params),
		RemoteURI: addressWithoutTag(req.From().DisplayName, req.From().Address, req.From().Params),
		Contact:   contact.Address.String(), Transport: req.Transport(), Source: req.Source(),
		AccountHost: req.Recipient.Host,
		LocalCSeq:   vsip.FirstCSeq(), RemoteCSeq: req.CSeq().SeqNo,
		ExpiresAt: now.Add(time.Duration(grant) * time.Second).UTC(), CreatedAt: now.UTC(),
		Owner: m.instance,
	}
	for rr := range vsip.Headers(req, "Record-Route") {
		sub.RouteSet = append(sub.RouteSet, rr.Value())
	}
	e := &mwiEntry{mb: mbKey{tenant, number}, sub: sub, hidx: -1, key: subKey(sub.CallID, remoteTag, localTag, eventID)}
	// The caps are checked and the entry added in one step, so that
	// concurrent SUBSCRIBEs cannot all pass the check. inflight keeps a
	// count change from sending a NOTIFY before our 200 (kickLocked).
	m.mu.Lock()
	if which := m.overCapLocked(e.mb, sub.Source); which != "" {
		m.mu.Unlock()
		log.Info("mwi subscribe refused: too many subscriptions", "tenant", tenant, "mailbox", number,
			"cap", which, "source", vsip.SourceIP(sub.Source))
		return refuseCap(tx, req, localTag, which)
	}
	if old := m.subs[e.key]; old != nil {
		m.removeLocked(old)
	}
	e.inflight = true
	m.addLocked(e)
	m.mu.Unlock()
	if grant == 0 {
		// A fetch: one NOTIFY with the state, terminated (RFC 6665 §4.4.3).
		e.term, e.endReason = reasonTimeout, "fetch"
	} else if err := st.SaveMWISubscription(ctx, sub); err != nil {
		log.Error("saving an MWI subscription", "err", err)
		m.mu.Lock()
		m.removeLocked(e)
		m.mu.Unlock()
		return vsip.Reply(tx, req, vsip.ErrInternal, localTag)
	}
	if err := m.okResponse(tx, req, localTag, grant); err != nil {
		log.Info("mwi subscribe: 200 not sent", "err", err)
	}
	log.Info("mwi subscribed", "tenant", tenant, "mailbox", number, "expires", grant, "event_id", eventID)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		m.removeLocked(e)
		return 200 // stored: the next start notifies it
	}
	e.inflight = false
	// It is in the store only now: a listing of owned subscriptions that
	// started before this moment may not show it (dropMoved).
	e.since = time.Now()
	if e.gone {
		return 200 // ended meanwhile (a stop and start, a mailbox deletion)
	}
	m.kickLocked(e, true, time.Time{})
	// A phone that subscribes itself no longer needs unsolicited NOTIFYs.
	// Checked against the mailbox's list, not this instance's entries: the
	// instance that sends them may be another, which reads the stop from
	// the store.
	for _, t := range mb.MWITargets {
		key := targetKey(tenant, number, t)
		var u sip.Uri
		if m.stops[key] != "" || sip.ParseUri(t, &u) != nil {
			continue
		}
		if targetMatches(u, req.From().Address, contact.Address, req.Source()) {
			m.stopTargetLocked(key, store.MWITargetStop{Tenant: tenant, Mailbox: number, Target: t, Reason: "subscribed"})
		}
	}
	return 200
}

// refresh handles a SUBSCRIBE in an existing dialog: a refresh, or with
// Expires: 0 an unsubscribe; either is followed by a NOTIFY at once.
func (m *Notifier) refresh(req *sip.Request, tx sip.ServerTransaction, key string, grant int) int {
	localTag, _ := req.To().Params.Get("tag")
	m.mu.Lock()
	e := m.subs[key]
	m.mu.Unlock()
	// Not ours: another instance took the SUBSCRIBE and the proxy now
	// routes the dialog here; it becomes ours. It joins the notifier only
	// once the 200 is out (no NOTIFY may overtake the 200).
	taken := e == nil
	if taken {
		if e = m.take(req, key); e == nil {
			return vsip.Reply(tx, req, vsip.ErrNoSubscription, localTag)
		}
	}
	m.mu.Lock()
	if e.gone || e.term != "" {
		m.mu.Unlock()
		return vsip.Reply(tx, req, vsip.ErrNoSubscription, localTag)
	}
	if req.CSeq().SeqNo <= e.sub.RemoteCSeq {
		if taken {
			// Ours now all the same: the phone gets the state as after
			// any takeover.
			m.adoptTakenLocked(e)
			m.kickLocked(e, true, time.Time{})
		}
		m.mu.Unlock()
		return vsip.Reply(tx, req, vsip.ErrOutOfOrder, localTag)
	}
	e.sub.RemoteCSeq = req.CSeq().SeqNo
	if c := req.Contact(); c != nil { // SUBSCRIBE refreshes the target (RFC 6665 §4.1.2.1)
		e.sub.Contact = c.Address.String()
	}
	e.sub.Transport, e.sub.Source = req.Transport(), req.Source()
	expires := time.Now().Add(time.Duration(grant) * time.Second).UTC()
	e.sub.Owner = m.instance
	snap := *e.sub
	snap.RouteSet = append([]string(nil), e.sub.RouteSet...)
	snap.ExpiresAt = expires
	m.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if grant == 0 {
		err = m.st.DeleteMWISubscription(ctx, snap.ID)
	} else {
		err = m.st.SaveMWISubscription(ctx, &snap)
	}
	if err != nil {
		m.log.Warn("saving an MWI refresh", "call_id", snap.CallID, "err", err)
	}
	if err := m.okResponse(tx, req, localTag, grant); err != nil {
		m.log.Info("mwi refresh: 200 not sent", "err", err)
	}
	m.log.Info("mwi subscription refreshed", "tenant", snap.Tenant, "mailbox", snap.Mailbox, "call_id", snap.CallID, "expires", grant)
	// Only now (the 200 is out) may the NOTIFY go: no NOTIFY overtakes the 200.
	m.mu.Lock()
	if taken {
		m.adoptTakenLocked(e)
	}
	if !e.gone && (!taken || !m.stopped) {
		e.sub.ExpiresAt = expires
		if grant == 0 {
			e.term, e.endReason = reasonNone, "unsubscribed"
		}
		m.kickLocked(e, true, time.Time{})
	}
	m.mu.Unlock()
	return 200
}

// adoptTakenLocked puts a subscription that take moved here into memory
// (unless stopping: then the next owner loads it from the store).
func (m *Notifier) adoptTakenLocked(e *mwiEntry) {
	if m.stopped {
		return
	}
	if old := m.subs[e.key]; old != nil {
		m.removeLocked(old)
	}
	m.addLocked(e)
	m.reserveCSeqLocked(e)
	m.m.taken.WithLabelValues("refresh").Inc()
}

// take makes the stored subscription of the dialog ours (nil when there is
// none), with a CSeq margin above its last owner's NOTIFYs.
func (m *Notifier) take(req *sip.Request, key string) *mwiEntry {
	remoteTag, _ := req.From().Params.Get("tag")
	localTag, _ := req.To().Params.Get("tag")
	_, eventID := parseEvent(req)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := m.st.TakeMWISubscription(ctx, m.instance, req.CallID().Value(), remoteTag, localTag, eventID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			m.log.Warn("mwi refresh: taking the subscription", "call_id", req.CallID().Value(), "err", err)
		}
		return nil
	}
	sub.LocalCSeq += mwiCSeqMargin
	m.log.Info("mwi subscription taken from another instance", "tenant", sub.Tenant, "mailbox", sub.Mailbox, "call_id", sub.CallID)
	return &mwiEntry{mb: mbKey{sub.Tenant, sub.Mailbox}, sub: sub, hidx: -1, key: key}
}

func (m *Notifier) okResponse(tx sip.ServerTransaction, req *sip.Request, localTag string, grant int) error {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if to := res.To(); to != nil {
		to.Params.Add("tag", localTag) // replaces the one sipgo made up
	}
	res.AppendHeader(m.srv.Contact(req.Transport()))
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(grant)))
	res.AppendHeader(sip.NewHeader("Allow-Events", mwiEvent))
	return tx.Respond(res)
}

// parseEvent returns the Event package and its id parameter.
func parseEvent(req *sip.Request) (pkg, id string) {
	h := vsip.Header(req, "Event")
	if h == nil {
		h = vsip.Header(req, "o") // compact form
	}
	if h == nil {
		return "", ""
	}
	parts := strings.Split(h.Value(), ";")
	pkg = strings.TrimSpace(parts[0])
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "id") {
			id = strings.TrimSpace(v)
		}
	}
	return pkg, id
}

// acceptsSummary: no Accept (or an empty one) means the package default,
// application/simple-message-summary (RFC 3842 §4).
func acceptsSummary(req *sip.Request) bool {
	listed := false
	for h := range vsip.Headers(req, "Accept") {
		for _, part := range strings.Split(h.Value(), ",") {
			mt := strings.ToLower(strings.TrimSpace(strings.Split(part, ";")[0]))
			if mt == "" {
				continue
			}
			listed = true
			if mt == mwiContentType || mt == "*/*" || mt == "application/*" {
				return true
			}
		}
	}
	return !listed
}

// parseExpires returns the Expires asked for (3600 when absent).
func parseExpires(req *sip.Request) (int, bool) {
	h := vsip.Header(req, "Expires")
	if h == nil {
		return mwiMaxExpires, true
	}
	n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
	if err != nil {
		return 0, false
	}
	return int(min(n, 1<<31)), true
}

func addressWithoutTag(display string, u sip.Uri, params sip.HeaderParams) string {
	h := &sip.ToHeader{DisplayName: display, Address: u, Params: params.Clone()}
	h.Params.Remove("tag")
	return h.Value()
}

// targetMatches reports whether a subscriber (its From, Contact and source
// address) is the phone an unsolicited target URI points to.
func targetMatches(t, from, contact sip.Uri, source string) bool {
	port := func(p int) int {
		if p == 0 {
			return 5060
		}
		return p
	}
	same := func(u sip.Uri) bool {
		if u.User != t.User || !strings.EqualFold(u.Host, t.Host) {
			return false
		}
		return t.Port == 0 || port(u.Port) == t.Port
	}
	if same(contact) || same(from) {
		return true
	}
	h, p, err := net.SplitHostPort(source)
	return err == nil && strings.EqualFold(h, t.Host) && p == strconv.Itoa(port(t.Port))
}
