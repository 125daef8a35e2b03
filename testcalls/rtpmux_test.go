package testcalls

import (
	"fmt"
	"regexp"
	"testing"
	"time"
)

// TestRTPMuxDeposits: with media.rtp_mux every call is answered on the
// same RTP port (announced with a=ssrc), and two calls recorded at the
// same time through it each store exactly their own caller's audio.
func TestRTPMuxDeposits(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	s := depositServer(t, "--media-rtp-mux", "true")
	pcmu := startSipp(t, s, "uac_deposit.xml", "1001",
		"codec_pt", "0", "codec_name", "PCMU", "pcap", pcapPath("audio_pcmu.pcap"), "pause_ms", pauseFor("audio_pcmu.pcap"))
	pcma := startSipp(t, s, "uac_deposit.xml", "1002",
		"codec_pt", "8", "codec_name", "PCMA", "pcap", pcapPath("audio_pcma.pcap"), "pause_ms", pauseFor("audio_pcma.pcap"))
	ports := map[string]bool{}
	for name, p := range map[string]*sippProc{"PCMU": pcmu, "PCMA": pcma} {
		res, ok := p.wait(90 * time.Second)
		if !ok || res.code != 0 {
			t.Fatalf("sipp %s failed\n%s", name, res)
		}
		m := regexp.MustCompile(`(?s)SIP/2.0 200 OK.*?m=audio (\d+) .*?a=ssrc:\d+ cname:`).FindStringSubmatch(res.msgLog)
		if m == nil {
			t.Fatalf("%s: no 200 OK with an audio port and a=ssrc in\n%s", name, res.msgLog)
		}
		ports[m[1]] = true
	}
	if want := fmt.Sprint(s.rtpMin + s.rtpMin&1); len(ports) != 1 || !ports[want] {
		t.Fatalf("answered RTP ports %v, want only the shared port %s", ports, want)
	}
	r := newestRecording(t, s, "1001", 1)
	checkExactSuffix(t, r.w.samples, 0, len(source))
	r = newestRecording(t, s, "1002", 1)
	checkExactSuffix(t, r.w.samples, 8, len(source))
}
