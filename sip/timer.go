package sip

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// RFC 4028 session timers. The refresher is the one the caller asked for;
// when it did not choose, it is us (refresher=uas). When the caller
// refreshes we end a call whose refreshes stopped, so that a caller that
// vanished does not hold a recording (and a port) until max_seconds; when
// we refresh (refresh.go) we send an UPDATE, or a re-INVITE, at half the
// interval.

// defaultMinSE is the smallest session interval we accept (RFC 4028 §4:
// at least 90 s).
const defaultMinSE = 90 * time.Second

// headerSeconds reads the delta-seconds of a header (long or compact
// name) and its parameters.
func headerSeconds(req *sip.Request, names ...string) (time.Duration, sip.HeaderParams, bool) {
	for _, n := range names {
		h := Header(req, n)
		if h == nil {
			continue
		}
		v, rest, _ := strings.Cut(h.Value(), ";")
		secs, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || secs <= 0 {
			return 0, nil, false
		}
		params := sip.NewParams()
		for _, p := range strings.Split(rest, ";") {
			if k, val, _ := strings.Cut(strings.TrimSpace(p), "="); k != "" {
				params.Add(strings.ToLower(k), strings.ToLower(strings.TrimSpace(val)))
			}
		}
		return time.Duration(secs) * time.Second, params, true
	}
	return 0, nil, false
}

// supportsTimer reports whether the request lists the "timer" option tag.
func supportsTimer(req *sip.Request) bool {
	for _, name := range []string{"Supported", "k", "Require"} {
		for h := range Headers(req, name) {
			for _, tag := range strings.Split(h.Value(), ",") {
				if strings.EqualFold(strings.TrimSpace(tag), "timer") {
					return true
				}
			}
		}
	}
	return false
}

// sessionInterval returns the session interval a request asks for (0 =
// none, or the caller cannot refresh), or, when it is below our minimum,
// tooSmall set.
func (s *Server) sessionInterval(req *sip.Request) (interval time.Duration, tooSmall bool) {
	se, _, ok := headerSeconds(req, "Session-Expires", "x")
	if !ok || !supportsTimer(req) {
		// Without the caller's support we would have to refresh ourselves
		// (refresher=uas); a voicemail call is short, so we do without.
		return 0, false
	}
	if se < s.minSE() {
		return 0, true
	}
	return se, false
}

func (s *Server) minSE() time.Duration {
	if s.cfg.MinSE > 0 {
		return s.cfg.MinSE
	}
	return defaultMinSE
}

// refresherOf is the refresher a request asks for: "uac", or "uas" when
// it says so or leaves the choice to us (RFC 4028 §9).
func refresherOf(req *sip.Request) string {
	if _, params, ok := headerSeconds(req, "Session-Expires", "x"); ok {
		if r, _ := params.Get("refresher"); r == "uac" {
			return "uac"
		}
	}
	return "uas"
}

// sessionExpires is a Session-Expires value.
func sessionExpires(interval time.Duration, refresher string) string {
	return fmt.Sprintf("%d;refresher=%s", int(interval/time.Second), refresher)
}

// timerHeaders are the Session-Expires and Require headers of our 2xx.
func timerHeaders(interval time.Duration, refresher string) []sip.Header {
	return []sip.Header{
		sip.NewHeader("Session-Expires", sessionExpires(interval, refresher)),
		sip.NewHeader("Require", "timer"),
	}
}

// byeBefore is when, before the session expires, the side that does not
// refresh sends its BYE: the minimum of 32 s and a third of the interval
// (RFC 4028 §10).
func byeBefore(interval time.Duration) time.Duration {
	return interval - min(32*time.Second, interval/3)
}

// refreshed tells the call that the caller refreshed the session.
func (d *Dialog) refreshed() {
	select {
	case d.refreshCh <- struct{}{}:
	default:
	}
}
