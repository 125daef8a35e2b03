package sip

import (
	"errors"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Why a request is refused. Handlers (here, in call/ and in mwi/) name one
// of these; statuses below is the one place that maps each to its SIP
// status, reason phrase and the headers that always go with it.
var (
	ErrBadRequest        = errors.New("bad request")
	ErrVersion           = errors.New("SIP version not supported")
	ErrUnknownMailbox    = errors.New("unknown mailbox")
	ErrMethodNotAllowed  = errors.New("method not allowed")
	ErrNotImplemented    = errors.New("method not implemented")
	ErrNotAcceptable     = errors.New("no acceptable body type")
	ErrUnsupportedMedia  = errors.New("unsupported media type")
	ErrUnsupportedScheme = errors.New("unsupported URI scheme")
	ErrBadExtension      = errors.New("unsupported extension required")
	ErrIntervalTooSmall  = errors.New("session interval too small")
	ErrNoDialog          = errors.New("no such dialog or transaction")
	ErrNoSubscription    = errors.New("no such subscription")
	ErrLoop              = errors.New("merged request")
	ErrNotAcceptableHere = errors.New("offer not acceptable")
	ErrBadEvent          = errors.New("unsupported event package")
	ErrOutOfOrder        = errors.New("CSeq out of order")
	ErrPending           = errors.New("another offer in progress")
	ErrInternal          = errors.New("internal error")
	ErrUnavailable       = errors.New("service unavailable")
	ErrDraining          = errors.New("draining")
	ErrStorageFull       = errors.New("message storage full")
	// Digest authentication (auth.go): no or stale credentials; wrong ones
	// or a user not allowed here.
	ErrUnauthorized = errors.New("authentication required")
	ErrForbidden    = errors.New("forbidden")
	// A REGISTER asking for a shorter expiry than we keep (register.go).
	ErrIntervalTooBrief = errors.New("registration interval too brief")
)

// statuses maps each refusal to its response. An error not listed is 500.
var statuses = []struct {
	err    error
	code   int
	reason string
	hdrs   [][2]string // name, value: built afresh for every response
}{
	{ErrBadRequest, 400, "Bad Request", nil},
	{ErrVersion, 505, "Version Not Supported", nil},
	{ErrUnknownMailbox, 404, "Not Found", nil},
	{ErrUnauthorized, 401, "Unauthorized", nil},
	{ErrForbidden, 403, "Forbidden", nil},
	{ErrMethodNotAllowed, 405, "Method Not Allowed", [][2]string{{"Allow", allowed}}},
	{ErrNotImplemented, 501, "Not Implemented", [][2]string{{"Allow", allowed}}},
	{ErrNotAcceptable, 406, "Not Acceptable", nil},
	{ErrUnsupportedMedia, 415, "Unsupported Media Type", nil},
	{ErrUnsupportedScheme, 416, "Unsupported URI Scheme", nil},
	{ErrBadExtension, 420, "Bad Extension", nil},
	{ErrIntervalTooSmall, 422, "Session Interval Too Small", nil},
	{ErrIntervalTooBrief, 423, "Interval Too Brief", nil},
	{ErrNoDialog, 481, "Call/Transaction Does Not Exist", nil},
	{ErrNoSubscription, 481, "Subscription Does Not Exist", nil},
	{ErrLoop, 482, "Loop Detected", nil},
	{ErrNotAcceptableHere, 488, "Not Acceptable Here", nil},
	{ErrBadEvent, 489, "Bad Event", nil},
	// RFC 3261 §12.2.2 and §14.2: the caller may retry shortly.
	{ErrOutOfOrder, 500, "Server Internal Error", [][2]string{{"Retry-After", "1"}}},
	{ErrPending, 500, "Server Internal Error", [][2]string{{"Retry-After", "2"}}},
	{ErrInternal, 500, "Server Internal Error", nil},
	{ErrUnavailable, 503, "Service Unavailable", [][2]string{{"Retry-After", "5"}}},
	{ErrDraining, 503, "Service Unavailable", [][2]string{{"Retry-After", "30"}}},
	// Free space comes back when messages are deleted or an operator acts:
	// minutes, not seconds (docs/api-limits.md).
	{ErrStorageFull, 503, "Service Unavailable", [][2]string{{"Retry-After", "300"}}},
}

// refusal adds what one request's refusal needs to a listed error: the
// headers that explain it (Unsupported, Accept, Min-SE, Warning) and, for
// 400, a precise reason phrase.
type refusal struct {
	err    error
	reason string
	hdrs   []sip.Header
}

func (r *refusal) Error() string {
	if r.reason != "" {
		return r.err.Error() + ": " + r.reason
	}
	return r.err.Error()
}

func (r *refusal) Unwrap() error { return r.err }

// Refuse returns err with headers for its response.
func Refuse(err error, hdrs ...sip.Header) error { return &refusal{err: err, hdrs: hdrs} }

// RefuseReason returns err answered with its own reason phrase.
func RefuseReason(err error, reason string) error { return &refusal{err: err, reason: reason} }

// Warning is a Warning header (RFC 3261 §20.43) with our agent name.
func Warning(code int, text string) sip.Header {
	return sip.NewHeader("Warning", strconv.Itoa(code)+` voicemail "`+strings.ReplaceAll(text, `"`, "'")+`"`)
}

// Status returns the SIP status, reason phrase and headers of a refusal.
func Status(err error) (code int, reason string, hdrs []sip.Header) {
	code, reason = 500, "Server Internal Error"
	for _, s := range statuses {
		if errors.Is(err, s.err) {
			code, reason = s.code, s.reason
			for _, h := range s.hdrs {
				hdrs = append(hdrs, sip.NewHeader(h[0], h[1]))
			}
			break
		}
	}
	var r *refusal
	if errors.As(err, &r) {
		if r.reason != "" {
			reason = r.reason
		}
		hdrs = append(hdrs, r.hdrs...)
	}
	return code, reason, hdrs
}

// Reply answers req with the status of err (with our To-tag when toTag is
// set) and returns that status.
func Reply(tx sip.ServerTransaction, req *sip.Request, err error, toTag string) int {
	code, reason, hdrs := Status(err)
	_ = respond(tx, req, code, reason, nil, toTag, hdrs...)
	return code
}

// OK answers req 200 with headers.
func OK(tx sip.ServerTransaction, req *sip.Request, hdrs ...sip.Header) error {
	return respond(tx, req, 200, "OK", nil, "", hdrs...)
}
