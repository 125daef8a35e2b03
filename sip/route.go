package sip

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/vmserver/voicemail/store"
)

// Target is the mailbox a deposit call is for and why the call reached
// voicemail (docs/sip.md).
type Target struct {
	Mailbox string
	Busy    bool
	// Source says which header chose the mailbox: "target", "history-info",
	// "diversion" or "request-uri" (for logs).
	Source string
}

// SelectTarget picks the mailbox from, in order: the RFC 4458 target= URI
// parameter, History-Info (RFC 7044), the topmost Diversion (RFC 5806), the
// Request-URI user. The cause comes from the same source when it has one,
// else from a cause= parameter on the Request-URI.
func SelectTarget(req *sip.Request) Target {
	ruri := &req.Recipient
	uriCause, _ := ruri.UriParams.Get("cause")

	if t, ok := ruri.UriParams.Get("target"); ok && t != "" {
		return Target{Mailbox: userOf(unescape(t)), Busy: causeBusy(uriCause), Source: "target"}
	}
	if t, ok := fromHistoryInfo(req); ok {
		if !t.Busy {
			t.Busy = causeBusy(uriCause)
		}
		return t
	}
	if t, ok := fromDiversion(req); ok {
		return t
	}
	return Target{Mailbox: userOf(ruri.User), Busy: causeBusy(uriCause), Source: "request-uri"}
}

// requestURITarget is the mailbox of the Request-URI alone: what a request
// from an untrusted source may choose (no target, cause or diverting header).
func requestURITarget(req *sip.Request) Target {
	return Target{Mailbox: userOf(req.Recipient.User), Source: "request-uri"}
}

// causeBusy maps an RFC 4458 cause (a SIP status code) to the greeting: 486
// is busy; 408, 480, 487, 302, 404, 503 and anything else are unavailable.
func causeBusy(cause string) bool { return strings.TrimSpace(cause) == "486" }

// historyEntry is one hi-entry: its URI and parameters.
type historyEntry struct {
	uri    sip.Uri
	params sip.HeaderParams
}

// fromHistoryInfo returns the hi-entry the first rc parameter points to.
func fromHistoryInfo(req *sip.Request) (Target, bool) {
	var entries []historyEntry
	for h := range Headers(req, "History-Info") {
		for _, part := range splitHeaderList(h.Value()) {
			var e historyEntry
			e.params = sip.NewParams()
			if _, err := sip.ParseAddressValue(part, &e.uri, &e.params); err != nil {
				continue
			}
			entries = append(entries, e)
		}
	}
	for _, e := range entries {
		rc, ok := e.params.Get("rc")
		if !ok {
			continue
		}
		for _, p := range entries {
			if idx, _ := p.params.Get("index"); idx == rc && p.uri.User != "" {
				return Target{Mailbox: userOf(p.uri.User), Busy: historyBusy(p, e), Source: "history-info"}, true
			}
		}
	}
	return Target{}, false
}

// historyBusy looks for a cause on the retargeted entry (Reason header
// escaped in the URI, RFC 7044 §9.1) and on the entry that points to it
// (RFC 4458 cause= parameter).
func historyBusy(entries ...historyEntry) bool {
	for _, e := range entries {
		if r, ok := e.uri.Headers.Get("Reason"); ok {
			r = unescape(r)
			for _, p := range strings.Split(r, ";") {
				if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "cause") {
					return causeBusy(v)
				}
			}
		}
		if c, ok := e.uri.UriParams.Get("cause"); ok {
			return causeBusy(c)
		}
	}
	return false
}

// fromDiversion uses the topmost Diversion entry: the most recent diverter.
func fromDiversion(req *sip.Request) (Target, bool) {
	h := Header(req, "Diversion")
	if h == nil {
		return Target{}, false
	}
	parts := splitHeaderList(h.Value())
	if len(parts) == 0 {
		return Target{}, false
	}
	var uri sip.Uri
	params := sip.NewParams()
	if _, err := sip.ParseAddressValue(parts[0], &uri, &params); err != nil || uri.User == "" {
		return Target{}, false
	}
	reason, _ := params.Get("reason")
	reason = strings.Trim(strings.ToLower(reason), `"`)
	return Target{Mailbox: userOf(uri.User), Busy: reason == "user-busy", Source: "diversion"}, true
}

// userOf turns "sip:1001@host", "tel:+1001;x=y" or "1001" into the user part.
func userOf(s string) string {
	s = strings.TrimSpace(s)
	s = strings.Trim(s, "<>")
	for _, scheme := range []string{"sips:", "sip:", "tel:"} {
		if len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
			s = s[len(scheme):]
			break
		}
	}
	if i := strings.IndexAny(s, "@;?"); i >= 0 {
		s = s[:i]
	}
	return s
}

func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// splitHeaderList splits a comma-separated header value, ignoring commas
// inside <> and quotes.
func splitHeaderList(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			depth--
		case c == ',' && depth == 0:
			if p := strings.TrimSpace(v[start:i]); p != "" {
				out = append(out, p)
			}
			start = i + 1
		}
	}
	if p := strings.TrimSpace(v[start:]); p != "" {
		out = append(out, p)
	}
	return out
}

// mailbox looks a mailbox up: ErrUnknownMailbox when there is none,
// ErrInternal when the store failed.
func (s *Server) mailbox(ctx context.Context, tenant, number string) (*store.Mailbox, error) {
	mb, err := s.deps.Store.GetMailbox(ctx, tenant, number)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownMailbox, number)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: mailbox %s: %w", ErrInternal, number, err)
	}
	return mb, nil
}

// SubscriberMailbox routes a SUBSCRIBE to its tenant (by the Request-URI's
// domain) and mailbox: the Request-URI's user, or for an access number the
// subscriber's own (From). Errors are ErrUnknownMailbox or ErrInternal.
func (s *Server) SubscriberMailbox(ctx context.Context, req *sip.Request) (tenant string, mb *store.Mailbox, err error) {
	tenant, err = s.deps.Store.TenantForDomain(ctx, req.Recipient.Host)
	if err != nil {
		return "", nil, fmt.Errorf("%w: tenant lookup: %w", ErrInternal, err)
	}
	number := req.Recipient.User
	if s.IsAccess(number) {
		number = req.From().Address.User // the caller's own mailbox
	}
	mb, err = s.mailbox(ctx, tenant, number)
	return tenant, mb, err
}
