package sip

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// guard wraps a request handler so that one request can never take the
// process down: malformed requests are answered 400/505 before any of our
// code reads them, and a panic is recovered, logged with its stack, counted
// in voicemail_panics_total and answered 500 when still possible.
func (s *Server) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if r := recover(); r != nil {
				s.Recovered("request", r, "method", string(req.Method))
				// The transaction may already be answered; a second final
				// response is refused by sipgo, which is fine.
				_ = safeRespond(tx, req, ErrInternal)
			}
		}()
		if err := validateRequest(req); err != nil {
			if req.Method == sip.ACK {
				return // an ACK is never answered (RFC 3261 §17.2.3)
			}
			_ = safeRespond(tx, req, err)
			return
		}
		// A copy of an INVITE we answered is absorbed before flood
		// control: the first one was admitted (Dialog.send2xx).
		if req.Method == sip.INVITE && s.invites.seen(req) {
			return
		}
		if !s.admit(req, tx) {
			return // refused or dropped by flood control (ratelimit.go)
		}
		h(req, tx)
	}
}

// Recovered logs and counts (voicemail_panics_total) a panic recovered in
// where: a request, a call, a NOTIFY.
func (s *Server) Recovered(where string, r any, attrs ...any) {
	s.metrics.panics.WithLabelValues(where).Inc()
	s.log.Error("recovered from panic", append([]any{"where", where, "panic", fmt.Sprint(r), "stack", string(debug.Stack())}, attrs...)...)
}

// singleHeaders may appear once in a request: RFC 4475 §3.1.2 (multi01,
// mcl01: two Content-Lengths make the body length unknowable).
var singleHeaders = [...]string{"To", "From", "Call-ID", "CSeq", "Content-Length", "Max-Forwards"}

// repeatedSingleHeader names the first of singleHeaders req carries twice,
// or returns "". One pass over the headers without allocating: it runs for
// every request (see Header).
func repeatedSingleHeader(req *sip.Request) string {
	var seen [len(singleHeaders)]bool
	for _, h := range req.Headers() {
		n := h.Name()
		for i, name := range singleHeaders {
			if strings.EqualFold(n, name) {
				if seen[i] {
					return name
				}
				seen[i] = true
				break
			}
		}
	}
	return ""
}

// safeRespond answers with the status of refusal without trusting the
// request's headers: a response built from a request that lacks them could
// itself panic.
func safeRespond(tx sip.ServerTransaction, req *sip.Request, refusal error) (err error) {
	code, reason, hdrs := Status(refusal)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sip: respond %d: %v", code, r)
		}
	}()
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.SipVersion = "SIP/2.0" // never echo a garbled version (RFC 4475 §3.1.2.8)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	return tx.Respond(res)
}

// validateRequest checks what RFC 3261 §8.1.1 makes mandatory and what our
// handlers rely on, returning the refusal (nil when valid). sipgo's parser
// accepts requests without these (RFC 4475 §3.1.2), so the check is ours.
func validateRequest(req *sip.Request) error {
	if v := req.SipVersion; v != "" && !strings.EqualFold(v, "SIP/2.0") {
		return ErrVersion
	}
	missing := func(what string) error { return RefuseReason(ErrBadRequest, "Missing "+what) }
	if req.To() == nil {
		return missing("To")
	}
	if req.From() == nil {
		return missing("From")
	}
	if req.CallID() == nil || req.CallID().Value() == "" {
		return missing("Call-ID")
	}
	cseq := req.CSeq()
	if cseq == nil {
		return missing("CSeq")
	}
	if !strings.EqualFold(string(cseq.MethodName), string(req.Method)) {
		return RefuseReason(ErrBadRequest, "CSeq Method Mismatch")
	}
	if req.Via() == nil {
		return missing("Via")
	}
	if !supportedScheme(req.Recipient.Scheme) {
		return ErrUnsupportedScheme
	}
	if req.Recipient.Host == "" {
		return RefuseReason(ErrBadRequest, "Bad Request-URI")
	}
	if name := repeatedSingleHeader(req); name != "" {
		return RefuseReason(ErrBadRequest, "Multiple "+name)
	}
	// escruri: URI headers belong in a URI one dereferences, never in a
	// Request-URI.
	if h := req.Recipient.Headers; h != nil && h.Length() > 0 {
		return RefuseReason(ErrBadRequest, "Headers In Request-URI")
	}
	// bext01: a Require we do not support is refused before any handler
	// acts (RFC 3261 §8.2.2.3), for every method but ACK and CANCEL.
	if req.Method != sip.ACK && req.Method != sip.CANCEL {
		if err := CheckRequire(req); err != nil {
			return err
		}
	}
	return nil
}

// supportedScheme: the Request-URI schemes we can route (RFC 3261 §8.2.2.1:
// any other is 416).
func supportedScheme(scheme string) bool {
	switch strings.ToLower(scheme) {
	case "sip", "sips", "tel":
		return true
	}
	return false
}
