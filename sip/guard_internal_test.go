package sip

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// singleHeaderRequest is an INVITE with the given extra header lines.
func singleHeaderRequest(t testing.TB, extra ...string) *sip.Request {
	t.Helper()
	raw := "INVITE sip:1001@127.0.0.1 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKguard\r\n" +
		"From: <sip:2002@127.0.0.1>;tag=a\r\n" +
		"To: <sip:1001@127.0.0.1>\r\n" +
		"Call-ID: guard@127.0.0.1\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Max-Forwards: 70\r\n" +
		"User-Agent: Guard Test\r\n" +
		"Supported: timer\r\n" +
		strings.Join(append(extra, ""), "\r\n") +
		"Content-Length: 0\r\n\r\n"
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, raw)
	}
	return m.(*sip.Request)
}

// TestRepeatedSingleHeader: a header RFC 3261 allows once, given twice in
// any spelling (compact form, case), is named; repeatable ones are not.
func TestRepeatedSingleHeader(t *testing.T) {
	for _, tc := range []struct {
		extra []string
		want  string
	}{
		{nil, ""},
		{[]string{"Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKx"}, ""},
		{[]string{"Supported: replaces"}, ""},
		{[]string{"To: <sip:1002@127.0.0.1>"}, "To"},
		{[]string{"t: <sip:1002@127.0.0.1>"}, "To"},
		{[]string{"f: <sip:2003@127.0.0.1>;tag=b"}, "From"},
		{[]string{"i: other@127.0.0.1"}, "Call-ID"},
		{[]string{"CSeq: 2 INVITE"}, "CSeq"},
		{[]string{"l: 0"}, "Content-Length"},
		{[]string{"max-forwards: 69"}, "Max-Forwards"},
	} {
		req := singleHeaderRequest(t, tc.extra...)
		if got := repeatedSingleHeader(req); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.extra, got, tc.want)
		}
	}
}

// TestValidateRequestNoAllocs: the check runs for every request; a
// well-formed one passes without allocating.
func TestValidateRequestNoAllocs(t *testing.T) {
	req := singleHeaderRequest(t)
	if err := validateRequest(req); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = validateRequest(req) }); n != 0 {
		t.Errorf("validateRequest: %.0f allocations, want 0", n)
	}
}
