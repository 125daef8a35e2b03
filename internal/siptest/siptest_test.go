package siptest

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseRoundTrip(t *testing.T) {
	raw := "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKx\r\nf: <sip:a@b>;tag=1\r\n" +
		"t: <sip:1001@b>;tag=abc\r\ni: xyz\r\nCSeq: 1 INVITE\r\nContact: <sip:vm@127.0.0.1:5060;transport=udp>\r\n" +
		"c: application/sdp\r\nl: 5\r\n\r\nhelloEXTRA"
	m, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if m.StatusCode != 200 || Tag(m.Get("To")) != "abc" || string(m.Body) != "hello" || m.Get("Call-ID") != "xyz" {
		t.Fatalf("bad parse: %+v", m)
	}
	if n, meth := m.CSeq(); n != 1 || meth != "INVITE" {
		t.Fatalf("cseq %d %s", n, meth)
	}
	if u := URIOf(m.Get("Contact")); u != "sip:vm@127.0.0.1:5060;transport=udp" {
		t.Fatalf("contact uri %q", u)
	}
}

func TestSDP(t *testing.T) {
	b := BuildSDP("127.0.0.1", 4000, []uint8{PCMA, PCMU}, 101, 1)
	s, err := ParseSDP(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Port != 4000 || len(s.Formats) != 4 || s.Formats[0] != PCMA || s.Formats[3] != CN || s.TelephoneEvent() != 101 || !s.Addr.Equal(net.ParseIP("127.0.0.1")) {
		t.Fatalf("bad sdp %+v", s)
	}
}

func TestGoertzel(t *testing.T) {
	x := Tone(600, 8000, 8000)
	p600, p1400 := Goertzel(x, 600), Goertzel(x, 1400)
	if want := 8000.0 * 8000 / 4; math.Abs(p600-want)/want > 0.05 {
		t.Fatalf("power at 600 = %v, want about %v", p600, want)
	}
	if p1400 > p600/1000 {
		t.Fatalf("leak at 1400: %v vs %v", p1400, p600)
	}
}

// TestAgainstSippUAS checks the client end to end against sipp's built-in UAS
// with RTP echo: INVITE/200/ACK, audio out and back, BYE.
func TestAgainstSippUAS(t *testing.T) {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sipp not installed: apt-get install sip-tester (.ci/run does)")
		}
		t.Skip("sipp not installed: apt-get install sip-tester")
	}
	l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()
	mp := 21000 + os.Getpid()%2000*4
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, "-sn", "uas", "-m", "1", "-nostdin", "-i", "127.0.0.1",
		"-p", fmt.Sprint(port), "-mp", fmt.Sprint(mp), "-rtp_echo", "-timeout", "25s",
		"-trace_err", "-error_file", filepath.Join(dir, "err.log"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	time.Sleep(300 * time.Millisecond)

	c, err := Dial(ctx, Config{Server: fmt.Sprintf("127.0.0.1:%d", port),
		RequestURI: fmt.Sprintf("sip:1001@127.0.0.1:%d", port), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Status() != 200 {
		t.Fatalf("status %d", c.Status())
	}
	tone := Tone(600, 8000, 8000)
	if err := c.SendAudio(ctx, tone); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	got := c.Received()
	if len(got) < 4000 {
		t.Fatalf("echoed %d samples (packets %v)", len(got), c.ReceivedPackets())
	}
	if Goertzel(got, 600) < 100*Goertzel(got, 1400) {
		t.Fatalf("echo does not sound like 600 Hz")
	}
	r, err := c.Bye(ctx)
	if err != nil || r == nil || r.StatusCode != 200 {
		t.Fatalf("BYE: %v %v", r, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sipp uas: %v\n%s", err, out.String())
	}
}
