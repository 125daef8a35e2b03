package sip

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

func parseReq(t *testing.T, ruri string, hdrs ...string) *sip.Request {
	t.Helper()
	raw := "INVITE " + ruri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\n" +
		"From: \"Carol\" <sip:+17815551212@127.0.0.1>;tag=a\r\n" +
		"To: <" + ruri + ">\r\n" +
		"Call-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:c@127.0.0.1:5061>\r\n"
	for _, h := range hdrs {
		raw += h + "\r\n"
	}
	raw += "Content-Length: 0\r\n\r\n"
	msg, err := sip.NewParser().ParseSIP([]byte(raw))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return msg.(*sip.Request)
}

func TestSelectTarget(t *testing.T) {
	cases := []struct {
		name    string
		ruri    string
		hdrs    []string
		mailbox string
		busy    bool
		source  string
	}{
		{"request-uri", "sip:1001@vm.example", nil, "1001", false, "request-uri"},
		{"rfc4458 target busy", "sip:vm@vm.example;target=1002;cause=486", nil, "1002", true, "target"},
		{"rfc4458 escaped sip target", "sip:vm@vm.example;target=sip%3A1002%40pbx.example;cause=480", nil, "1002", false, "target"},
		{"rfc4458 tel target", "sip:vm@vm.example;target=tel%3A%2B15551002;cause=302", nil, "+15551002", false, "target"},
		{"target beats diversion", "sip:vm@vm.example;target=1001", []string{"Diversion: <sip:1002@pbx>;reason=user-busy"}, "1001", false, "target"},
		{"diversion busy", "sip:vm@vm.example", []string{"Diversion: <sip:1002@pbx>;reason=user-busy"}, "1002", true, "diversion"},
		{"diversion topmost wins", "sip:vm@vm.example", []string{"Diversion: <sip:1002@pbx>;reason=no-answer, <sip:1001@pbx>;reason=user-busy", "Diversion: <sip:1003@pbx>"}, "1002", false, "diversion"},
		{"history-info rc", "sip:vm@vm.example", []string{
			"History-Info: <sip:1002@pbx?Reason=SIP%3Bcause%3D486>;index=1",
			"History-Info: <sip:vm@vm.example;cause=486>;index=1.1;rc=1"}, "1002", true, "history-info"},
		{"history-info one header", "sip:vm@vm.example", []string{
			"History-Info: <sip:1001@pbx>;index=1, <sip:1002@pbx>;index=1.1;mp=1, <sip:vm@vm;cause=480>;index=1.1.1;rc=1.1"}, "1002", false, "history-info"},
		{"history-info beats diversion", "sip:vm@vm.example", []string{
			"Diversion: <sip:1001@pbx>",
			"History-Info: <sip:1002@pbx>;index=1,<sip:vm@vm>;index=1.1;rc=1"}, "1002", false, "history-info"},
		{"history-info without rc ignored", "sip:1001@vm.example", []string{"History-Info: <sip:1002@pbx>;index=1"}, "1001", false, "request-uri"},
		{"cause on request-uri", "sip:1001@vm.example;cause=486", nil, "1001", true, "request-uri"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := SelectTarget(parseReq(t, c.ruri, c.hdrs...))
			if got.Mailbox != c.mailbox || got.Busy != c.busy || got.Source != c.source {
				t.Errorf("got %+v, want mailbox %s busy %v source %s", got, c.mailbox, c.busy, c.source)
			}
		})
	}
}

func TestCaller(t *testing.T) {
	pai := "P-Asserted-Identity: \"Dave\" <sip:2002@pbx>"
	for _, c := range []struct {
		name    string
		hdrs    []string
		trusted bool
		want    string
	}{
		{"From", nil, false, "+17815551212"},
		{"From from a trusted proxy", nil, true, "+17815551212"},
		{"PAI from a trusted proxy", []string{pai}, true, "2002"},
		{"PAI from anyone else is ignored", []string{pai}, false, "+17815551212"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if n, _ := callerOf(parseReq(t, "sip:1001@vm", c.hdrs...), c.trusted); n != c.want {
				t.Errorf("caller %q, want %q", n, c.want)
			}
		})
	}
}

func TestRequestURITarget(t *testing.T) {
	req := parseReq(t, "sip:1001@vm.example;target=sip:2002%40pbx;cause=486", "Diversion: <sip:3003@pbx>;reason=user-busy",
		"History-Info: <sip:4004@pbx>;index=1,<sip:vm@vm>;index=1.1;rc=1")
	if got := requestURITarget(req); got.Mailbox != "1001" || got.Busy || got.Source != "request-uri" {
		t.Fatalf("untrusted target = %+v", got)
	}
	if got := SelectTarget(req); got.Mailbox != "2002" || !got.Busy {
		t.Fatalf("trusted target = %+v", got)
	}
}

func TestTrustedProxies(t *testing.T) {
	prefixes, err := ParseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: Config{TrustedProxies: prefixes}}
	for _, c := range []struct {
		src  string
		want bool
	}{
		{"10.1.2.3:5060", true}, {"192.0.2.7:5060", true}, {"192.0.2.8:5060", false},
		{"[2001:db8::1]:5060", true}, {"[::ffff:10.0.0.1]:5060", true}, {"127.0.0.1:5060", false}, {"", false},
	} {
		req := parseReq(t, "sip:1001@vm")
		req.SetSource(c.src)
		if got := s.Trusted(req); got != c.want {
			t.Errorf("Trusted(%q) = %v, want %v", c.src, got, c.want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example", ""} {
		if _, err := ParseTrustedProxies([]string{bad}); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted", bad)
		}
	}
}

func TestParseINFODigit(t *testing.T) {
	cases := []struct {
		ct, body string
		want     rune
		ok       bool
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', true},
		{"application/dtmf-relay", "signal= 10\r\nduration=100", '*', true},
		{"application/dtmf-relay", "Signal=11\r\n", '#', true},
		{"application/dtmf-relay", "Signal=#\r\n", '#', true},
		{"application/dtmf-relay", "Signal=a\r\n", 'A', true},
		{"application/dtmf", "7", '7', true},
		{"application/dtmf", "12", 0, false},
		{"application/dtmf-relay", "Duration=160", 0, false},
	}
	for _, c := range cases {
		got, ok := ParseINFODigit(c.ct, []byte(c.body))
		if got != c.want || ok != c.ok {
			t.Errorf("%s %q: got %q %v", c.ct, c.body, got, ok)
		}
	}
}
