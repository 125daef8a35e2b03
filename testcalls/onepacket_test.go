package testcalls

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// toLessInvite is the one packet that used to kill the process: a valid
// INVITE with SDP and no To header (issue 11).
func toLessInvite(transport string, local net.Addr, user string) string {
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
	return fmt.Sprintf("INVITE sip:%s@127.0.0.1 SIP/2.0\r\n"+
		"Via: SIP/2.0/%s %s;branch=z9hG4bK-%d;rport\r\n"+
		"From: <sip:2002@127.0.0.1>;tag=t%d\r\n"+
		"Call-ID: noto-%d@test\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"+
		"Contact: <sip:2002@%s>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		user, strings.ToUpper(transport), local, time.Now().UnixNano(), time.Now().UnixNano(), time.Now().UnixNano(),
		local, len(sdp), sdp)
}

// firstFinal reads responses until a final one (not 1xx) and returns its
// status line.
func firstFinal(t *testing.T, read func() (string, error)) string {
	t.Helper()
	for {
		msg, err := read()
		if err != nil {
			t.Fatalf("no final response: %v", err)
		}
		line := strings.SplitN(msg, "\r\n", 2)[0]
		if !strings.HasPrefix(line, "SIP/2.0 1") {
			return line
		}
	}
}

// TestOnePacketDoesNotKill sends To-less INVITEs over UDP and TCP, to a
// mailbox and to the access number, while a message is being left; each
// gets 400, the server answers OPTIONS, the deposit in progress and a new
// one land whole.
func TestOnePacketDoesNotKill(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	done := make(chan struct{})
	go func() { defer close(done); leaveMessage(t, s) }() // a call in progress
	time.Sleep(2 * time.Second)

	for _, user := range []string{"1001", "5555"} {
		// UDP
		uc, err := net.Dial("udp", s.sipAddr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := uc.Write([]byte(toLessInvite("udp", uc.LocalAddr(), user))); err != nil {
			t.Fatal(err)
		}
		got := firstFinal(t, func() (string, error) {
			_ = uc.SetReadDeadline(time.Now().Add(5 * time.Second))
			b := make([]byte, 4096)
			n, err := uc.Read(b)
			return string(b[:n]), err
		})
		uc.Close()
		if !strings.HasPrefix(got, "SIP/2.0 400") {
			t.Errorf("UDP To-less INVITE to %s: %q, want 400", user, got)
		}
		// TCP
		tc, err := net.Dial("tcp", s.sipAddr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tc.Write([]byte(toLessInvite("tcp", tc.LocalAddr(), user))); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(tc)
		got = firstFinal(t, func() (string, error) {
			_ = tc.SetReadDeadline(time.Now().Add(5 * time.Second))
			var sb strings.Builder
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return sb.String(), err
				}
				sb.WriteString(line)
				if line == "\r\n" {
					return sb.String(), nil // responses here carry no body
				}
			}
		})
		tc.Close()
		if !strings.HasPrefix(got, "SIP/2.0 400") {
			t.Errorf("TCP To-less INVITE to %s: %q, want 400", user, got)
		}
	}
	<-done
	checkSpokenMessage(t, s) // the call that was in progress is whole
	if code, _, err := s.api("GET", "/healthz", nil, nil); err != nil || code != 200 {
		t.Fatalf("server not alive after the packets: %d %v", code, err)
	}
	leaveMessage(t, s) // and takes a new deposit
	s.waitMessages(t, "1001", 2, 20*time.Second)
}
