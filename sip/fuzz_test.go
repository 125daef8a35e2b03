package sip

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

// FuzzRequestEntry feeds raw bytes through sipgo's parser, our validation
// gate and, when the gate lets the request in, every function of ours that
// reads a parsed request before or while answering it. None may panic.
// The seed corpus (testdata/fuzz/FuzzRequestEntry) holds a normal INVITE
// with SDP, SUBSCRIBE, INFO with dtmf-relay and RFC 4475 messages, so that
// the fuzzer reaches a To-less INVITE by itself.
func FuzzRequestEntry(f *testing.F) {
	s := &Server{}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sip.NewParser().ParseSIP(data)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		if validateRequest(req) != nil {
			return
		}
		_ = SelectTarget(req)
		_, _ = callerOf(req, true)
		_, _ = callerOf(req, false)
		_ = requestURITarget(req)
		_, _ = s.sessionInterval(req)
		_ = CheckRequire(req)
		_ = isAccess(req.Recipient.User, []string{"5555"})
		if ct := req.ContentType(); ct != nil {
			_, _ = ParseINFODigit(ct.Value(), req.Body())
		}
		if o, err := ParseOffer(req.Body()); err == nil {
			_ = Answer(o, Local{})
		}
		// What (*Dialog).answer and every refusal build from the request.
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.To().Params.Add("tag", "fuzz")
		code, reason, hdrs := Status(ErrUnknownMailbox)
		_ = sip.NewResponseFromRequest(req, code, reason, nil)
		_ = hdrs
	})
}

// FuzzSDPOffer: any body must parse or be refused, never panic, and an
// accepted offer must yield an answer.
func FuzzSDPOffer(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := ParseOffer(body)
		if err != nil {
			return
		}
		_ = o.Hold()
		_ = Answer(o, Local{})
	})
}
