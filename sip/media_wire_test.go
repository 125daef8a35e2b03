package sip_test

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/vmserver/voicemail/internal/testlog"
	"github.com/vmserver/voicemail/media"
	vsip "github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/store"
)

// mediaPair is a phone's RTP socket on an even port and its RTCP socket
// on the next one (RFC 3550 §11).
type mediaPair struct {
	rtp, rtcp *net.UDPConn
}

func newMediaPair(t *testing.T) *mediaPair {
	t.Helper()
	for range 50 {
		a, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := a.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 || port == 65534 {
			a.Close()
			continue
		}
		b, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
		if err != nil {
			a.Close()
			continue
		}
		t.Cleanup(func() { a.Close(); b.Close() })
		return &mediaPair{rtp: a, rtcp: b}
	}
	t.Fatal("no even/odd UDP port pair")
	return nil
}

func (m *mediaPair) port() int { return m.rtp.LocalAddr().(*net.UDPAddr).Port }

// sdpCN is an offer with PCMU, telephone-event and comfort noise.
func sdpCN(port int, dir string) string {
	return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(port) + " RTP/AVP 0 101 13\r\na=rtpmap:101 telephone-event/8000\r\na=rtpmap:13 CN/8000\r\na=" + dir + "\r\n"
}

// rtpLog collects the RTP packets that reach a socket.
type rtpLog struct {
	mu   sync.Mutex
	pkts []rtp.Packet
}

func (l *rtpLog) run(c *net.UDPConn) {
	buf := make([]byte, 2048)
	for {
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		var p rtp.Packet
		if p.Unmarshal(append([]byte(nil), buf[:n]...)) == nil {
			l.mu.Lock()
			l.pkts = append(l.pkts, p)
			l.mu.Unlock()
		}
	}
}

func (l *rtpLog) snapshot() []rtp.Packet {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]rtp.Packet(nil), l.pkts...)
}

// TestKeepAliveAndRTCPDuringRecording: while the server records a message
// (and plays nothing) the caller still gets RTP — audio every 20 ms, then
// comfort noise, never 200 ms of RTP time without a packet, with no
// sequence gap — and RTCP reports on the RTP port + 1, then an RTCP BYE at the end.
func TestKeepAliveAndRTCPDuringRecording(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	p := newPhone(t, ts.addr)
	m := newMediaPair(t)
	var rtpIn rtpLog
	go rtpIn.run(m.rtp)
	var rtcpMu sync.Mutex
	var reports, byes int
	var reportSSRC []uint32
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := m.rtcp.ReadFromUDP(buf)
			if err != nil {
				return
			}
			pkts, err := rtcp.Unmarshal(buf[:n])
			if err != nil {
				continue
			}
			rtcpMu.Lock()
			for _, pk := range pkts {
				switch r := pk.(type) {
				case *rtcp.SenderReport:
					reports++
					reportSSRC = append(reportSSRC, r.SSRC)
				case *rtcp.ReceiverReport:
					reports++
					reportSSRC = append(reportSSRC, r.SSRC)
				case *rtcp.Goodbye:
					byes++
				}
			}
			rtcpMu.Unlock()
		}
	}()

	p.send("INVITE", 1, sdpCN(m.port(), "sendrecv"))
	ok := p.expect("SIP/2.0 200", 5*time.Second)
	if !strings.Contains(ok, "CN/8000") {
		t.Fatalf("answer without comfort noise:\n%s", ok)
	}
	p.send("ACK", 1, "")
	// Greeting and beep, then the recording, on which we stay silent.
	const listen = 12 * time.Second
	end := time.After(listen)
	for done := false; !done; {
		select {
		case <-end:
			done = true
		default:
			if msg, ok := p.read(200 * time.Millisecond); ok && strings.HasPrefix(msg, "BYE ") {
				t.Fatalf("the server hung up during the recording:\n%s", msg)
			}
		}
	}
	p.send("BYE", 2, "")
	p.expect("SIP/2.0 200", 5*time.Second)
	time.Sleep(300 * time.Millisecond) // the RTCP BYE

	pkts := rtpIn.snapshot()
	if len(pkts) < 2 {
		t.Fatalf("%d RTP packets in %s", len(pkts), listen)
	}
	cn, late := 0, 0
	for i := 1; i < len(pkts); i++ {
		prev, cur := pkts[i-1], pkts[i]
		if cur.SSRC != prev.SSRC {
			t.Fatalf("packet %d: SSRC changed %08x -> %08x", i, prev.SSRC, cur.SSRC)
		}
		if cur.SequenceNumber != prev.SequenceNumber+1 {
			t.Errorf("packet %d: sequence %d after %d (a packet missing or reordered)", i, cur.SequenceNumber, prev.SequenceNumber)
		}
		step := cur.Timestamp - prev.Timestamp
		limit := uint32(160) // 20 ms of audio
		if cur.PayloadType == 13 {
			cn++
			limit = 1600 // comfort noise: at least every 200 ms
		}
		// A loaded machine (-race, CI) makes the media clock skip frames
		// now and then (the timestamp keeps real time): never a hole of
		// more than 200 ms, and most audio packets a ptime apart.
		if step > limit {
			late++
		}
		if step > 1600 {
			t.Errorf("packet %d (PT %d): %d samples after the previous one, want at most 1600 (200 ms)", i, cur.PayloadType, step)
		}
	}
	if late > len(pkts)/10 {
		t.Errorf("%d of %d packets came more than a ptime (or 200 ms of comfort noise) after the previous one", late, len(pkts))
	}
	span := time.Duration(pkts[len(pkts)-1].Timestamp-pkts[0].Timestamp) * time.Second / 8000
	if span < listen-2*time.Second {
		t.Errorf("RTP covers %s of the %s call", span, listen)
	}
	if cn == 0 {
		t.Error("no comfort noise while recording, although the offer had CN")
	}
	rtcpMu.Lock()
	defer rtcpMu.Unlock()
	if reports < 2 {
		t.Errorf("%d RTCP reports in %s, want at least 2", reports, listen)
	}
	for _, s := range reportSSRC {
		if s != pkts[0].SSRC {
			t.Errorf("RTCP report from SSRC %08x, RTP is %08x", s, pkts[0].SSRC)
		}
	}
	if byes == 0 {
		t.Error("no RTCP BYE at the end of the call")
	}
	t.Logf("%d RTP packets (%d comfort noise, %d after a skipped frame), %d RTCP reports, %d RTCP BYE", len(pkts), cn, late, reports, byes)
}

// waitRTP waits for an RTP packet on c; it reports whether one came.
func waitRTP(c *net.UDPConn, timeout time.Duration) bool {
	buf := make([]byte, 2048)
	deadline := time.Now().Add(timeout)
	for {
		_ = c.SetReadDeadline(deadline)
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return false
		}
		var p rtp.Packet
		if p.Unmarshal(buf[:n]) == nil && p.Version == 2 && (buf[1] < 192 || buf[1] > 223) {
			return true
		}
	}
}

// drainRTP discards what c received so far.
func drainRTP(c *net.UDPConn) {
	buf := make([]byte, 2048)
	for {
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, _, err := c.ReadFromUDP(buf); err != nil {
			return
		}
	}
}

// TestReInviteWithoutSDP: a re-INVITE without a body gets our offer in the
// 200 (o= version bumped, sendrecv even while on hold), retransmitted until
// the ACK, whose answer is applied: here it resumes from hold to a new
// RTP port; an INVITE overlapping the outstanding offer is refused (RFC 3261 §14.2, RFC 6337 §5.3).
func TestReInviteWithoutSDP(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	p := newPhone(t, ts.addr)
	first, second := newMediaPair(t), newMediaPair(t)

	p.send("INVITE", 1, sdpCN(first.port(), "sendrecv"))
	p.expect("SIP/2.0 200", 5*time.Second)
	p.send("ACK", 1, "")
	if !waitRTP(first.rtp, 3*time.Second) {
		t.Fatal("no RTP after the answer")
	}
	// Hold.
	p.send("INVITE", 2, sdpCN(first.port(), "sendonly"))
	if hold := p.expect("SIP/2.0 200", 5*time.Second); !strings.Contains(hold, "a=recvonly") {
		t.Fatalf("hold answer:\n%s", hold)
	}
	p.send("ACK", 2, "")
	time.Sleep(100 * time.Millisecond)
	drainRTP(first.rtp)
	if waitRTP(first.rtp, 500*time.Millisecond) {
		t.Fatal("RTP while on hold")
	}

	// No SDP: the 200 is our offer.
	p.send("INVITE", 3, "")
	offer := p.expect("SIP/2.0 200", 5*time.Second)
	for _, want := range []string{"Content-Type: application/sdp", "o=voicemail ", " 3 IN IP4 127.0.0.1", "a=sendrecv", "m=audio "} {
		if !strings.Contains(offer, want) {
			t.Fatalf("offer in the 200 lacks %q:\n%s", want, offer)
		}
	}
	// Unacknowledged, it is sent again (RFC 3261 §13.3.1.4).
	if again := p.expect("SIP/2.0 200", 3*time.Second); !strings.Contains(again, "CSeq: 3 INVITE") {
		t.Fatalf("retransmission is not the 200 to CSeq 3:\n%s", again)
	}
	// A second re-INVITE while our offer awaits its answer is refused
	// as overlapping (ErrPending: 500 with Retry-After).
	p.send("INVITE", 4, sdpCN(first.port(), "sendrecv"))
	if busy := p.expect("SIP/2.0 500", 5*time.Second); !strings.Contains(busy, "Retry-After") {
		t.Errorf("overlapping re-INVITE refused without Retry-After:\n%s", busy)
	}
	p.send("ACK", 4, "")
	// The answer in the ACK: resume, on another port.
	p.send("ACK", 3, sdpCN(second.port(), "sendrecv"))
	if !waitRTP(second.rtp, 3*time.Second) {
		t.Fatal("no RTP to the address of the answer in the ACK")
	}
	// The dialog goes on: a plain re-INVITE is still answered. The previous
	// transaction may still hold the dialog for an instant after the answer
	// was applied: a 500 with Retry-After then asks for a retry, as a phone
	// would do.
	cseq := 5
	for ; ; cseq++ {
		p.send("INVITE", cseq, sdpCN(second.port(), "sendrecv"))
		// The final response to this INVITE (not a 100, nor a late copy of
		// an earlier one).
		var res string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			m := p.expect("SIP/2.0 ", time.Until(deadline))
			if !strings.HasPrefix(m, "SIP/2.0 1") && strings.Contains(m, fmt.Sprintf("CSeq: %d INVITE", cseq)) {
				res = m
				break
			}
		}
		if strings.HasPrefix(res, "SIP/2.0 500") && strings.Contains(res, "Retry-After") && cseq < 8 {
			p.send("ACK", cseq, "")
			time.Sleep(300 * time.Millisecond)
			continue
		}
		if !strings.HasPrefix(res, "SIP/2.0 200") || !strings.Contains(res, " 4 IN IP4") {
			t.Errorf("next answer after the offer in a 200 (want 200, o= version 4):\n%s", res)
		}
		break
	}
	p.send("ACK", cseq, "")
	p.send("BYE", cseq+1, "")
	p.expect("SIP/2.0 200", 5*time.Second)
}

// TestRTPTimeoutEndsCallKeepingRecording: a caller that vanishes without a
// BYE in the middle of its message is hung up on after the RTP timeout;
// what it said is saved and the call's result is rtp_timeout.
func TestRTPTimeoutEndsCallKeepingRecording(t *testing.T) {
	t.Parallel()
	var buf testlog.Buffer
	ts := startServerLog(t, func(c *vsip.Config) { c.RTPTimeout = 2 * time.Second },
		slog.New(slog.NewJSONHandler(&buf, nil)))
	p := newPhone(t, ts.addr)
	m := newMediaPair(t)
	p.send("INVITE", 1, sdpCN(m.port(), "sendrecv"))
	ok := p.expect("SIP/2.0 200", 5*time.Second)
	p.send("ACK", 1, "")
	// Our audio goes to the server's RTP port; '#' skips the greeting.
	srvRTP := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: answerPort(t, ok)}
	p.sendBody("INFO", 2, "application/dtmf-relay", "Signal=#\r\nDuration=160\r\n")
	p.expect("SIP/2.0 200", 5*time.Second)
	tone := media.Tone(700, 3*time.Second, 0.5)
	frame := make([]byte, 160)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 0x1234}}
	next := time.Now()
	for i := 0; (i+1)*160 <= len(tone); i++ {
		media.PCMU.Encode(frame, tone[i*160:(i+1)*160])
		pkt.SequenceNumber, pkt.Timestamp, pkt.Payload = uint16(i), uint32(i*160), frame
		b, _ := pkt.Marshal()
		if _, err := m.rtp.WriteToUDP(b, srvRTP); err != nil {
			t.Fatal(err)
		}
		next = next.Add(20 * time.Millisecond)
		time.Sleep(time.Until(next))
	}
	// Then nothing: the server hangs up.
	bye := p.expect("BYE ", 10*time.Second)
	p.reply(bye, 200)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), `"result":"rtp_timeout"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no call media line with result rtp_timeout:\n%s", buf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(buf.String(), `"msg":"message saved"`) {
		t.Fatalf("the message was not saved:\n%s", buf.String())
	}
	msgs, _, err := ts.st.ListMessages(t.Context(), store.MessageFilter{Tenant: "default", Mailbox: "1001"})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("messages of 1001: %d, %v", len(msgs), err)
	}
	// 3 s of tone from the '#', less the beep: what was said is kept.
	if d := msgs[0].DurationMS; d < 1500 {
		t.Fatalf("saved message of %d ms, want the tone the caller sent", d)
	}
}

// answerPort is the audio port of the SDP in a 200.
func answerPort(t *testing.T, msg string) int {
	t.Helper()
	for _, line := range strings.Split(msg, "\r\n") {
		if rest, ok := strings.CutPrefix(line, "m=audio "); ok {
			n, err := strconv.Atoi(strings.Fields(rest)[0])
			if err == nil {
				return n
			}
		}
	}
	t.Fatalf("no m=audio in:\n%s", msg)
	return 0
}

// TestSessionTimerWeRefresh: with refresher=uas, or no refresher chosen,
// we refresh at half the interval — by UPDATE when the caller allows it,
// else by a re-INVITE with our unchanged SDP that we acknowledge — and
// the call goes on past the interval.
func TestSessionTimerWeRefresh(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *vsip.Config) { c.MinSE = 2 * time.Second })
	for _, tc := range []struct {
		name, expires, allow, method string
	}{
		{"uas asked, UPDATE allowed", "Session-Expires: 2;refresher=uas", "Allow: INVITE, ACK, BYE, UPDATE", "UPDATE"},
		{"no choice, no UPDATE", "Session-Expires: 2", "Allow: INVITE, ACK, BYE", "INVITE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPhone(t, ts.addr)
			p.send("INVITE", 1, p.sdp("sendrecv"), "Supported: timer", tc.expires, tc.allow)
			ok := p.expect("SIP/2.0 200", 5*time.Second)
			if !strings.Contains(ok, "Session-Expires: 2;refresher=uas") {
				t.Fatalf("200 does not make us the refresher:\n%s", ok)
			}
			p.send("ACK", 1, "")
			start := time.Now()
			for i := 0; i < 3; i++ {
				req := p.expect(tc.method+" ", 5*time.Second)
				if !strings.Contains(req, "Session-Expires: 2;refresher=uas") {
					t.Errorf("refresh %d lacks Session-Expires:\n%s", i, req)
				}
				if tc.method == "INVITE" && (!strings.Contains(req, "o=voicemail ") || !strings.Contains(req, " 1 IN IP4")) {
					t.Errorf("refreshing re-INVITE is not our unchanged SDP:\n%s", req)
				}
				p.reply(req, 200)
				if tc.method == "INVITE" {
					ack := p.expect("ACK ", 5*time.Second)
					if got, want := cseqOf(ack), strings.Replace(cseqOf(req), "INVITE", "ACK", 1); got != want {
						t.Errorf("ACK CSeq %q, want %q", got, want)
					}
				}
			}
			if time.Since(start) < 2*time.Second {
				t.Errorf("three refreshes in %s: want one per half interval", time.Since(start))
			}
			// Past the interval, the call is still up: our BYE answers.
			p.send("BYE", 2, "")
			p.expect("SIP/2.0 200", 5*time.Second)
		})
	}
}

// cseqOf is the CSeq value of a message.
func cseqOf(msg string) string {
	for _, line := range strings.Split(msg, "\r\n") {
		if v, ok := strings.CutPrefix(line, "CSeq: "); ok {
			return v
		}
	}
	return ""
}
