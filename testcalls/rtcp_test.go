package testcalls

// Media the server sends while it records a 40 s message, counted on the
// wire against the real binary: phones and SBCs hang up on a call without
// incoming RTP (docs/sip.md). The in-process test of sip/ checks packet
// spacing over 12 s; this one counts over a long recording.

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/vmserver/voicemail/internal/siptest"
)

// rtcpCounter counts the RTCP packets reaching a socket.
type rtcpCounter struct {
	mu              sync.Mutex
	reports, byes   int
	senderReports   int
	receiverReports int
}

func (c *rtcpCounter) run(conn *net.UDPConn) {
	buf := make([]byte, 2048)
	for {
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		c.mu.Lock()
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.SenderReport:
				c.reports++
				c.senderReports++
			case *rtcp.ReceiverReport:
				c.reports++
				c.receiverReports++
			case *rtcp.Goodbye:
				c.byes++
			}
		}
		c.mu.Unlock()
	}
}

func (c *rtcpCounter) counts() (reports, byes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reports, c.byes
}

func sumPackets(m map[uint8]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestRTPAndRTCPDuring40sRecording: while the caller speaks for 40 s and
// the server plays nothing, the server still sends RTP — G.711 frames at
// the 20 ms ptime, or comfort noise at least every 200 ms when the offer
// has CN — and at least 6 RTCP reports on the RTP port + 1, then an RTCP
// BYE.
func TestRTPAndRTCPDuring40sRecording(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		noCN bool
		min  int // packets from the server in the 40 s
	}{
		{"G711", true, 40 * 1000 / 20 * 95 / 100}, // 1 per 20 ms, 5% slack for a loaded machine
		{"CN", false, 40 * 1000 / 200},            // comfort noise: at least every 200 ms
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, "")
			c, err := siptest.Dial(t.Context(), siptest.Config{
				Server: s.sipAddr(), RequestURI: fmt.Sprintf("sip:1001@%s", s.sipAddr()), NoCN: tc.noCN,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Status() != 200 {
				t.Fatalf("INVITE answered %d", c.Status())
			}
			rc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: c.RTPPort() + 1})
			if err != nil {
				t.Fatalf("RTCP socket on the RTP port + 1: %v", err)
			}
			defer rc.Close()
			var rtcpIn rtcpCounter
			go rtcpIn.run(rc)

			waitLog(t, s, `"msg":"recording"`, 30*time.Second)
			rtpBefore := sumPackets(c.ReceivedPackets())
			reportsBefore, _ := rtcpIn.counts()
			// 40 s of speech: never a silence long enough to end the recording.
			if err := c.SendAudio(t.Context(), longSpeech(t, 40*8000)); err != nil {
				t.Fatal(err)
			}
			pkts := c.ReceivedPackets()
			rtpDuring := sumPackets(pkts) - rtpBefore
			reports, _ := rtcpIn.counts()
			reports -= reportsBefore
			if _, err := c.Bye(t.Context()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond) // the RTCP BYE
			_, byes := rtcpIn.counts()
			t.Logf("during the 40 s recording: %d RTP packets (by payload type over the call: %v), %d RTCP reports; %d RTCP BYE", rtpDuring, pkts, reports, byes)

			if rtpDuring < tc.min {
				t.Errorf("%d RTP packets from the server during the 40 s recording, want at least %d", rtpDuring, tc.min)
			}
			if !tc.noCN && pkts[siptest.CN] == 0 {
				t.Error("no comfort noise, although the offer had CN")
			}
			if reports < 6 {
				t.Errorf("%d RTCP reports during the 40 s recording, want at least 6", reports)
			}
			if byes == 0 {
				t.Error("no RTCP BYE at the end of the call")
			}
			msgs := s.waitMessages(t, "1001", 1, 20*time.Second)
			if d := msgs[0].DurationMS; d < 39000 || d > 41000 {
				t.Errorf("message of %d ms, want 40 s", d)
			}
		})
	}
}
