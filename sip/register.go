package sip

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/vmserver/voicemail/store"
)

// RegistrationStore keeps REGISTER bindings in the shared store, so that
// every instance of a cluster sees them (docs/sip.md).
type RegistrationStore interface {
	SaveSIPRegistration(ctx context.Context, r *store.SIPRegistration) error
	DeleteSIPRegistration(ctx context.Context, tenant, mailbox, contact string) error
	ListSIPRegistrations(ctx context.Context, tenant, mailbox string, now time.Time) ([]store.SIPRegistration, error)
}

const (
	defaultRegisterExpires = 3600
	minRegisterExpires     = 60 // RFC 3261 §10.3 step 7: 423 below it
)

// onRegister is a registrar for the mailboxes' own phones (RFC 3261 §10.3):
// the phone digest-authenticates as the mailbox of its To URI; its contacts
// then get unsolicited MWI NOTIFYs until they expire (package mwi).
func (s *Server) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	if s.deps.Registrations == nil || s.nonces == nil {
		Reply(tx, req, ErrMethodNotAllowed, "")
		return
	}
	to, cid, cseq := req.To(), req.CallID(), req.CSeq()
	if to == nil || cid == nil || cseq == nil {
		Reply(tx, req, ErrBadRequest, "")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tenant, err := s.deps.Store.TenantForDomain(ctx, req.Recipient.Host)
	if err != nil {
		s.log.Error("register: tenant lookup", "err", err)
		Reply(tx, req, ErrInternal, "")
		return
	}
	aor := to.Address.User
	// Authentication first: an unauthenticated REGISTER learns nothing of
	// which mailboxes exist.
	if _, code := s.requireAuth(ctx, tx, req, tenant, "", func(user string) bool { return user == aor }); code != 0 {
		return
	}
	if _, err := s.mailbox(ctx, tenant, aor); err != nil {
		Reply(tx, req, err, "")
		return
	}
	log := s.log.With("tenant", tenant, "mailbox", aor, "source", req.Source())
	saved, err := s.applyBindings(ctx, req, tenant, aor)
	if err != nil {
		var code int
		if !errors.Is(err, ErrIntervalTooBrief) && !errors.Is(err, ErrBadRequest) {
			log.Error("register", "err", err)
			code = Reply(tx, req, ErrInternal, "")
		} else {
			code = Reply(tx, req, err, "")
		}
		log.Info("register refused", "status", code, "err", err)
		return
	}
	now := time.Now()
	regs, err := s.deps.Registrations.ListSIPRegistrations(ctx, tenant, aor, now)
	if err != nil {
		log.Error("register: listing bindings", "err", err)
		Reply(tx, req, ErrInternal, "")
		return
	}
	// The 200 lists every current binding with its remaining time (§10.3
	// step 8).
	var hdrs []sip.Header
	for _, r := range regs {
		left := int(r.ExpiresAt.Sub(now).Round(time.Second) / time.Second)
		hdrs = append(hdrs, sip.NewHeader("Contact", "<"+r.Contact+">;expires="+strconv.Itoa(max(left, 1))))
	}
	hdrs = append(hdrs, sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	_ = respond(tx, req, 200, "OK", nil, "", hdrs...)
	log.Info("registered", "bindings", len(regs))
	if f := s.onReg.Load(); f != nil {
		for _, r := range saved {
			(*f)(r)
		}
	}
}

// HandleRegistered makes f hear of each binding a REGISTER adds or
// refreshes (package mwi sends it the current state at once).
func (s *Server) HandleRegistered(f func(store.SIPRegistration)) { s.onReg.Store(&f) }

// applyBindings adds, refreshes or removes the bindings of the REGISTER's
// Contact headers (RFC 3261 §10.3 steps 6–7).
func (s *Server) applyBindings(ctx context.Context, req *sip.Request, tenant, aor string) (saved []store.SIPRegistration, err error) {
	headerExpires := defaultRegisterExpires
	if h := Header(req, "Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n < 0 {
			return nil, RefuseReason(ErrBadRequest, "Bad Expires")
		}
		headerExpires = n
	}
	maxExp := int(s.cfg.RegisterMaxExpires / time.Second)
	if maxExp <= 0 {
		maxExp = defaultRegisterExpires
	}
	var contacts []*sip.ContactHeader
	for h := range Headers(req, "Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			return nil, RefuseReason(ErrBadRequest, "Bad Contact")
		}
		contacts = append(contacts, c)
	}
	for _, c := range contacts {
		if c.Address.Wildcard || c.Address.Host == "*" || strings.TrimSpace(c.Value()) == "*" {
			// "Contact: *" removes every binding, only with Expires: 0
			// and alone (§10.3 step 6).
			if len(contacts) != 1 || headerExpires != 0 {
				return nil, RefuseReason(ErrBadRequest, "Bad Wildcard Contact")
			}
			return nil, s.deps.Registrations.DeleteSIPRegistration(ctx, tenant, aor, "")
		}
	}
	var paths []string
	for h := range Headers(req, "Path") {
		paths = append(paths, splitHeaderList(h.Value())...)
	}
	for _, c := range contacts {
		exp := headerExpires
		if v, ok := c.Params.Get("expires"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				return nil, RefuseReason(ErrBadRequest, "Bad Contact expires")
			}
			exp = n
		}
		uri := c.Address.String()
		if exp == 0 {
			if err := s.deps.Registrations.DeleteSIPRegistration(ctx, tenant, aor, uri); err != nil {
				return nil, err
			}
			continue
		}
		if exp < minRegisterExpires {
			return nil, Refuse(ErrIntervalTooBrief, sip.NewHeader("Min-Expires", strconv.Itoa(minRegisterExpires)))
		}
		exp = min(exp, maxExp)
		r := &store.SIPRegistration{Tenant: tenant, Mailbox: aor, Contact: uri, Source: req.Source(),
			Transport: strings.ToLower(req.Transport()), Path: paths, CallID: req.CallID().Value(),
			CSeq: req.CSeq().SeqNo, ExpiresAt: time.Now().Add(time.Duration(exp) * time.Second).UTC()}
		if err := s.deps.Registrations.SaveSIPRegistration(ctx, r); err != nil {
			return nil, fmt.Errorf("saving binding %s: %w", uri, err)
		}
		saved = append(saved, *r)
	}
	return saved, nil
}
