package sip_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// rawRequest is an INVITE as a hostile or broken sender may write it.
func rawRequest(p *phone, firstLine string, drop string, cseqMethod string) string {
	body := p.sdp("sendrecv")
	hdrs := []string{
		fmt.Sprintf("Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%d;rport", p.port(), time.Now().UnixNano()),
		"From: <sip:2002@127.0.0.1>;tag=x1",
		fmt.Sprintf("To: <sip:1001@%s>", p.server),
		"Call-ID: " + p.callID,
		"CSeq: 1 " + cseqMethod,
		"Max-Forwards: 70",
		fmt.Sprintf("Contact: <sip:2002@127.0.0.1:%d>", p.port()),
		"Content-Type: application/sdp",
		fmt.Sprintf("Content-Length: %d", len(body)),
	}
	msg := firstLine + "\r\n"
	for _, h := range hdrs {
		if drop != "" && strings.HasPrefix(h, drop+":") {
			continue
		}
		msg += h + "\r\n"
	}
	return msg + "\r\n" + body
}

// A request missing a mandatory header, with a CSeq for another method or
// with another SIP version is refused before any handler reads it, and the
// server keeps answering.
func TestMalformedRequestsAreRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	for _, tc := range []struct {
		name, first, drop, cseq, want string
	}{
		{"no To", "INVITE sip:1001@127.0.0.1 SIP/2.0", "To", "INVITE", "SIP/2.0 400"},
		{"no To, access", "INVITE sip:5555@127.0.0.1 SIP/2.0", "To", "INVITE", "SIP/2.0 400"},
		{"no From", "INVITE sip:1001@127.0.0.1 SIP/2.0", "From", "INVITE", "SIP/2.0 400"},
		{"CSeq mismatch", "INVITE sip:1001@127.0.0.1 SIP/2.0", "", "OPTIONS", "SIP/2.0 400"},
		{"version 7", "INVITE sip:1001@127.0.0.1 SIP/7.0", "", "INVITE", "SIP/2.0 505"},
		{"no To, OPTIONS", "OPTIONS sip:1001@127.0.0.1 SIP/2.0", "To", "OPTIONS", "SIP/2.0 400"},
	} {
		p := newPhone(t, ts.addr)
		p.callID = fmt.Sprintf("%d@bad", time.Now().UnixNano())
		if _, err := p.conn.WriteToUDP([]byte(rawRequest(p, tc.first, tc.drop, tc.cseq)), p.server); err != nil {
			t.Fatal(err)
		}
		got := ""
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
			m, ok := p.read(time.Until(deadline))
			if ok && !strings.HasPrefix(m, "SIP/2.0 100") {
				got = strings.SplitN(m, "\r\n", 2)[0]
				break
			}
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: got %q, want %s", tc.name, got, tc.want)
		}
	}
	// Still alive: a normal OPTIONS gets 200.
	p := newPhone(t, ts.addr)
	p.send("OPTIONS", 1, "")
	p.expect("SIP/2.0 200", 3*time.Second)
}
