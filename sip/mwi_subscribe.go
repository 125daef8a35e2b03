package sip

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/vmserver/voicemail/store"
)

// onSubscribe answers SUBSCRIBE for the message-summary package (SPEC §6,
// RFC 6665 §4.2.1): 200 (never 202) with an Expires no larger than asked,
// then at once a NOTIFY in the same dialog.
func (s *Server) onSubscribe(req *sip.Request, tx sip.ServerTransaction) { s.mwi.onSubscribe(req, tx) }

func (m *mwi) onSubscribe(req *sip.Request, tx sip.ServerTransaction) {
	status := 0
	defer func() { m.m.subscribes.WithLabelValues(strconv.Itoa(status)).Inc() }()
	reply := func(code int, reason, toTag string, hdrs ...sip.Header) {
		status = code
		_ = respond(tx, req, code, reason, nil, toTag, hdrs...)
	}
	cid, from, to, cseq := req.CallID(), req.From(), req.To(), req.CSeq()
	if cid == nil || from == nil || to == nil || cseq == nil {
		reply(400, "Bad Request", "")
		return
	}
	remoteTag, _ := from.Params.Get("tag")
	localTag, inDialog := to.Params.Get("tag")
	pkg, eventID := parseEvent(req)
	if !strings.EqualFold(pkg, mwiEvent) {
		reply(489, "Bad Event", localTag, sip.NewHeader("Allow-Events", mwiEvent))
		return
	}
	if unsup := unsupportedRequire(req); unsup != "" {
		reply(420, "Bad Extension", localTag, sip.NewHeader("Unsupported", unsup))
		return
	}
	if !acceptsSummary(req) {
		reply(406, "Not Acceptable", localTag, sip.NewHeader("Accept", mwiContentType))
		return
	}
	asked, ok := parseExpires(req)
	if !ok || remoteTag == "" {
		reply(400, "Bad Request", localTag)
		return
	}
	grant := min(asked, mwiMaxExpires)
	m.mu.Lock()
	ready := m.started && !m.stopped
	m.mu.Unlock()
	if !ready {
		reply(503, "Service Unavailable", localTag, sip.NewHeader("Retry-After", "5"))
		return
	}
	if inDialog {
		status = m.refresh(req, tx, subKey(cid.Value(), remoteTag, localTag, eventID), grant)
		return
	}
	status = m.subscribe(req, tx, remoteTag, eventID, grant)
}

// subscribe creates a subscription (or answers a fetch, Expires: 0).
func (m *mwi) subscribe(req *sip.Request, tx sip.ServerTransaction, remoteTag, eventID string, grant int) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := m.s.deps.Store
	localTag := newTag()
	log := m.log.With("call_id", req.CallID().Value())
	contact := req.Contact()
	if contact == nil {
		_ = respond(tx, req, 400, "Bad Request", nil, localTag, sip.NewHeader("Warning", `399 voicemail "SUBSCRIBE without Contact"`))
		return 400
	}
	tenant, err := st.TenantForDomain(ctx, req.Recipient.Host)
	if err != nil {
		log.Error("tenant lookup", "err", err)
		_ = respond(tx, req, 500, "Server Internal Error", nil, localTag)
		return 500
	}
	number := req.Recipient.User
	if isAccess(number, m.s.cfg.AccessNumbers) {
		number = req.From().Address.User // the caller's own mailbox (SPEC §6)
	}
	if _, err := st.GetMailbox(ctx, tenant, number); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			log.Info("mwi subscribe: unknown mailbox", "tenant", tenant, "mailbox", number)
			_ = respond(tx, req, 404, "Not Found", nil, localTag)
			return 404
		}
		log.Error("mailbox lookup", "err", err)
		_ = respond(tx, req, 500, "Server Internal Error", nil, localTag)
		return 500
	}
	now := time.Now()
	sub := &store.MWISubscription{
		ID: store.NewMessageID(), Tenant: tenant, Mailbox: number,
		CallID: req.CallID().Value(), LocalTag: localTag, RemoteTag: remoteTag, EventID: eventID,
		LocalURI:  addressWithoutTag(req.To().DisplayName, req.To().Address, req.To().Params),
		RemoteURI: addressWithoutTag(req.From().DisplayName, req.From().Address, req.From().Params),
		Contact:   contact.Address.String(), Transport: req.Transport(), Source: req.Source(),
		AccountHost: req.Recipient.Host,
		LocalCSeq:   uint32(randUint64() % 10000), RemoteCSeq: req.CSeq().SeqNo,
		ExpiresAt: now.Add(time.Duration(grant) * time.Second).UTC(), CreatedAt: now.UTC(),
	}
	for _, rr := range req.GetHeaders("Record-Route") {
		sub.RouteSet = append(sub.RouteSet, rr.Value())
	}
	e := &mwiEntry{mb: mbKey{tenant, number}, sub: sub, hidx: -1, key: subKey(sub.CallID, remoteTag, localTag, eventID)}
	if grant == 0 {
		// A fetch: one NOTIFY with the state, terminated (RFC 6665 §4.4.3).
		e.term, e.endReason = reasonTimeout, "fetch"
	} else if err := st.SaveMWISubscription(ctx, sub); err != nil {
		log.Error("saving an MWI subscription", "err", err)
		_ = respond(tx, req, 500, "Server Internal Error", nil, localTag)
		return 500
	}
	if err := m.okResponse(tx, req, localTag, grant); err != nil {
		log.Info("mwi subscribe: 200 not sent", "err", err)
	}
	log.Info("mwi subscribed", "tenant", tenant, "mailbox", number, "expires", grant, "event_id", eventID)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return 200 // stored: the next start notifies it
	}
	if old := m.subs[e.key]; old != nil {
		m.removeLocked(old)
	}
	m.addLocked(e)
	m.kickLocked(e, true, time.Time{})
	// A phone that subscribes itself no longer needs unsolicited NOTIFYs.
	for t := range m.byMB[e.mb] {
		if t.tgt != nil && t.term == "" && targetMatches(t.tgt.parsed, req.From().Address, contact.Address, req.Source()) {
			m.stopTargetLocked(t.key, store.MWITargetStop{Tenant: tenant, Mailbox: number, Target: t.tgt.uri, Reason: "subscribed"})
		}
	}
	return 200
}

// refresh handles a SUBSCRIBE in an existing dialog: a refresh, or with
// Expires: 0 an unsubscribe; either is followed by a NOTIFY at once.
func (m *mwi) refresh(req *sip.Request, tx sip.ServerTransaction, key string, grant int) int {
	localTag, _ := req.To().Params.Get("tag")
	m.mu.Lock()
	e := m.subs[key]
	if e == nil || e.gone || e.term != "" {
		m.mu.Unlock()
		_ = respond(tx, req, 481, "Subscription Does Not Exist", nil, localTag)
		return 481
	}
	if req.CSeq().SeqNo <= e.sub.RemoteCSeq {
		m.mu.Unlock()
		_ = respond(tx, req, 500, "Server Internal Error", nil, localTag, sip.NewHeader("Retry-After", "1"))
		return 500
	}
	e.sub.RemoteCSeq = req.CSeq().SeqNo
	if c := req.Contact(); c != nil { // SUBSCRIBE refreshes the target (RFC 6665 §4.1.2.1)
		e.sub.Contact = c.Address.String()
	}
	e.sub.Transport, e.sub.Source = req.Transport(), req.Source()
	expires := time.Now().Add(time.Duration(grant) * time.Second).UTC()
	snap := *e.sub
	snap.RouteSet = append([]string(nil), e.sub.RouteSet...)
	snap.ExpiresAt = expires
	m.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if grant == 0 {
		err = m.s.deps.Store.DeleteMWISubscription(ctx, snap.ID)
	} else {
		err = m.s.deps.Store.SaveMWISubscription(ctx, &snap)
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
	if !e.gone {
		e.sub.ExpiresAt = expires
		if grant == 0 {
			e.term, e.endReason = reasonTimeout, "unsubscribed"
		}
		m.kickLocked(e, true, time.Time{})
	}
	m.mu.Unlock()
	return 200
}

func (m *mwi) okResponse(tx sip.ServerTransaction, req *sip.Request, localTag string, grant int) error {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if to := res.To(); to != nil {
		to.Params.Add("tag", localTag) // replaces the one sipgo made up
	}
	res.AppendHeader(m.s.contact(req.Transport()))
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(grant)))
	res.AppendHeader(sip.NewHeader("Allow-Events", mwiEvent))
	return tx.Respond(res)
}

// parseEvent returns the Event package and its id parameter.
func parseEvent(req *sip.Request) (pkg, id string) {
	h := req.GetHeader("Event")
	if h == nil {
		h = req.GetHeader("o") // compact form
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
	for _, h := range req.GetHeaders("Accept") {
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
	h := req.GetHeader("Expires")
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
