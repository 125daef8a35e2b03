package sip

import (
	"iter"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// headered is a SIP request or response.
type headered interface{ Headers() []sip.Header }

// Header returns the first header of m named name (any case), or nil.
//
// sipgo's GetHeader and GetHeaders lower-case the name of every header
// they pass, and that allocates for each name outside sipgo's short list
// (User-Agent, Allow, Supported, P-Asserted-Identity…): a dozen
// allocations per lookup for a real phone's INVITE, and the server does
// several lookups per request. These compare in place.
func Header(m headered, name string) sip.Header {
	for _, h := range m.Headers() {
		if strings.EqualFold(h.Name(), name) {
			return h
		}
	}
	return nil
}

// Headers yields the headers of m named name (any case), in order.
func Headers(m headered, name string) iter.Seq[sip.Header] {
	return func(yield func(sip.Header) bool) {
		for _, h := range m.Headers() {
			if strings.EqualFold(h.Name(), name) && !yield(h) {
				return
			}
		}
	}
}
