package testcalls

// Wire conformance the way phones, PBXs and SBCs use it, as sipp
// scenarios: a re-INVITE without SDP, and session timers (RFC 4028) with
// either side refreshing. sipp sends no media in these: the server runs
// without the silence and RTP timeouts so that only SIP ends the call.

import (
	"regexp"
	"strconv"
	"testing"
)

// quietServer is a server that keeps a call without media going.
func quietServer(t *testing.T) *server {
	t.Helper()
	return startServer(t, "", "--recording-silence-seconds", "0", "--media-rtp-timeout", "0")
}

var originVersion = regexp.MustCompile(`(?m)^\s*o=(\S+) \d+ (\d+) IN `)

// The offer in the 200 to a re-INVITE without SDP is the server's current
// description with the o= version bumped (RFC 3264 §8); the scenario checks
// it is sendrecv with PCMU and answers it in the ACK.
func TestSippReInviteWithoutSDP(t *testing.T) {
	requireTool(t, "sipp", "sip-tester") // no play_pcap_audio here: root is not needed
	t.Parallel()
	s := quietServer(t)
	res := runSipp(t, s, "uac_reinvite_nosdp.xml", "1001")
	// sipp's own o= lines have the user name sipp.
	var ours []int
	for _, m := range originVersion.FindAllStringSubmatch(res.msgLog, -1) {
		if m[1] == "sipp" {
			continue
		}
		v, _ := strconv.Atoi(m[2])
		ours = append(ours, v)
	}
	t.Logf("the server's o= versions: %v", ours)
	if len(ours) < 2 || ours[len(ours)-1] <= ours[0] {
		t.Errorf("the server's o= versions %v: the offer in the 200 to the re-INVITE must bump it", ours)
	}
}

// The caller refreshes (refresher=uac): the server keeps that choice and
// accepts a refreshing re-INVITE and an UPDATE.
func TestSippSessionTimerCallerRefreshes(t *testing.T) {
	requireTool(t, "sipp", "sip-tester") // no play_pcap_audio here: root is not needed
	t.Parallel()
	runSipp(t, quietServer(t), "uac_timer_uac.xml", "1001")
}

// The server refreshes (refresher=uas) at half the 90 s interval: with an
// UPDATE when the caller allows it, else a re-INVITE.
func TestSippSessionTimerServerRefreshes(t *testing.T) {
	requireTool(t, "sipp", "sip-tester") // no play_pcap_audio here: root is not needed
	t.Parallel()
	for _, sc := range []string{"uac_timer_uas_update.xml", "uac_timer_uas_reinvite.xml"} {
		t.Run(sc, func(t *testing.T) {
			t.Parallel()
			runSipp(t, quietServer(t), sc, "1001")
		})
	}
}
