package sip

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// key30 is a 30-byte AES_CM key||salt, key28 a 28-byte GCM one.
var (
	key30 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xAB}, 30))
	key28 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xCD}, 28))
)

func TestParseCrypto(t *testing.T) {
	cases := []struct {
		in     string
		ok     bool
		tag    int
		suite  string
		keyLen int
	}{
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30, true, 1, "AES_CM_128_HMAC_SHA1_80", 30},
		{"2 AES_CM_128_HMAC_SHA1_32 inline:" + key30 + "|2^31", true, 2, "AES_CM_128_HMAC_SHA1_32", 30},
		{"3 AEAD_AES_128_GCM inline:" + key28, true, 3, "AEAD_AES_128_GCM", 28},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.TrimRight(key30, "="), true, 1, "AES_CM_128_HMAC_SHA1_80", 30}, // no padding
		{"1 AES_CM_128_HMAC_SHA1_80 INLINE:" + key30 + "|1048576", true, 1, "AES_CM_128_HMAC_SHA1_80", 30},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|1:4", false, 0, "", 0},         // MKI
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1:4", false, 0, "", 0},              // MKI without lifetime
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " UNENCRYPTED_SRTP", false, 0, "", 0}, // session parameter
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + ";inline:" + key30, false, 0, "", 0},  // two keys
		{"1 AES_256_CM_HMAC_SHA1_80 inline:" + key30, false, 0, "", 0},                       // unsupported suite
		{"1 AEAD_AES_128_GCM inline:" + key30, false, 0, "", 0},                              // wrong length
		{"1 AES_CM_128_HMAC_SHA1_80 inline:!!!", false, 0, "", 0},
		{"1 AES_CM_128_HMAC_SHA1_80 uri:http://x", false, 0, "", 0},
		{"x AES_CM_128_HMAC_SHA1_80 inline:" + key30, false, 0, "", 0},
		{"1 AES_CM_128_HMAC_SHA1_80", false, 0, "", 0},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|0", false, 0, "", 0},
		{"", false, 0, "", 0},
	}
	for _, c := range cases {
		got, err := ParseCrypto(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseCrypto(%q) err = %v, want ok %v", c.in, err, c.ok)
			continue
		}
		if !c.ok {
			if !errors.Is(err, errCryptoParse) {
				t.Errorf("ParseCrypto(%q) err = %v, not errCryptoParse", c.in, err)
			}
			if strings.Contains(err.Error(), key30) || strings.Contains(err.Error(), strings.TrimRight(key30, "=")) {
				t.Errorf("the error shows the key: %v", err)
			}
			continue
		}
		if got.Tag != c.tag || got.Suite != c.suite || len(got.Key) != c.keyLen {
			t.Errorf("ParseCrypto(%q) = tag %d suite %s key %d bytes", c.in, got.Tag, got.Suite, len(got.Key))
		}
		// What we write reads back the same.
		back, err := ParseCrypto(got.Attr())
		if err != nil || back.Tag != got.Tag || back.Suite != got.Suite || !bytes.Equal(back.Key, got.Key) {
			t.Errorf("round trip of %q: %+v, %v", got.Attr(), back, err)
		}
	}
}

func TestNewCrypto(t *testing.T) {
	for suite, p := range suites {
		c, err := newCrypto(7, suite)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Key) != keyLen(p) || c.Tag != 7 {
			t.Errorf("%s: %d-byte key, tag %d", suite, len(c.Key), c.Tag)
		}
		d, _ := newCrypto(7, suite)
		if bytes.Equal(c.Key, d.Key) {
			t.Errorf("%s: two keys alike", suite)
		}
	}
	if _, err := newCrypto(1, "NULL"); err == nil {
		t.Error("unsupported suite accepted")
	}
}

const offerSAVP = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n" +
	"m=audio 4000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"

// TestOfferAnswerSAVP: the first supported a=crypto of an RTP/SAVP offer
// is answered RTP/SAVP with its tag and suite and our own key.
func TestOfferAnswerSAVP(t *testing.T) {
	sdp := offerSAVP +
		"a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(make([]byte, 46)) + "\r\n" +
		"a=crypto:2 AEAD_AES_128_GCM inline:" + key28 + "\r\n" +
		"a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\r\n"
	o, err := ParseOffer([]byte(sdp))
	if err != nil {
		t.Fatal(err)
	}
	if !o.Secure || o.Crypto == nil || o.Crypto.Tag != 2 || o.Crypto.Suite != "AEAD_AES_128_GCM" {
		t.Fatalf("offer = %+v crypto %+v", o, o.Crypto)
	}
	ours, _ := newCrypto(o.Crypto.Tag, o.Crypto.Suite)
	ans := string(Answer(o, Local{IP: net.ParseIP("192.0.2.1"), Port: 20000, Crypto: &ours}))
	for _, want := range []string{"m=audio 20000 RTP/SAVP 0 101", "a=crypto:2 AEAD_AES_128_GCM inline:" + base64.StdEncoding.EncodeToString(ours.Key)} {
		if !strings.Contains(ans, want) {
			t.Errorf("answer lacks %q:\n%s", want, ans)
		}
	}
	if strings.Count(ans, "a=crypto") != 1 {
		t.Errorf("answer has %d a=crypto:\n%s", strings.Count(ans, "a=crypto"), ans)
	}
	// A plain offer gets no a=crypto even when the dialog has a key.
	plain, _ := ParseOffer([]byte(offerPCMU))
	if ans := string(Answer(plain, Local{IP: net.ParseIP("192.0.2.1"), Port: 20000, Crypto: &ours})); strings.Contains(ans, "crypto") || !strings.Contains(ans, "RTP/AVP") {
		t.Errorf("plain answer:\n%s", ans)
	}
	// Our own offer in required mode.
	off := string(NewOffer(Local{IP: net.ParseIP("192.0.2.1"), Port: 20000, Crypto: &ours}))
	if !strings.Contains(off, "RTP/SAVP 0 8 101 13") || !strings.Contains(off, "a=crypto:2 AEAD_AES_128_GCM") {
		t.Errorf("our SAVP offer:\n%s", off)
	}
	// RTP/SAVP without a usable a=crypto: 488's reason.
	if _, err := ParseOffer([]byte(offerSAVP + "a=crypto:1 F8_128_HMAC_SHA1_80 inline:" + key30 + "\r\n")); !errors.Is(err, errNoCrypto) {
		t.Errorf("SAVP without a supported suite: %v", err)
	}
}

func TestSRTPPolicy(t *testing.T) {
	secure := &Offer{Secure: true}
	plain := &Offer{}
	cases := []struct {
		o         *Offer
		mode, tr  string
		insecure  bool
		refused   bool
		name      string
		noSDPCase bool
	}{
		{secure, SRTPOptional, "TLS", false, false, "savp over tls", false},
		{plain, SRTPOptional, "UDP", false, false, "avp optional", false},
		{secure, SRTPOptional, "UDP", false, true, "savp over udp", false},
		{secure, SRTPOptional, "TCP", true, false, "savp over tcp allowed", false},
		{secure, SRTPOff, "TLS", false, true, "savp off", false},
		{plain, SRTPRequired, "TLS", false, true, "avp required", false},
		{plain, SRTPOff, "UDP", false, false, "avp off", false},
		{nil, SRTPRequired, "UDP", false, true, "no sdp required udp", true},
		{nil, SRTPRequired, "TLS", false, false, "no sdp required tls", true},
	}
	for _, c := range cases {
		s := &Server{cfg: Config{SRTP: c.mode, SRTPAllowInsecure: c.insecure}}
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "1001", Host: "h"})
		req.SetTransport(c.tr)
		_, err := s.srtpPolicy(c.o, req)
		if (err != nil) != c.refused {
			t.Errorf("%s: err %v, want refused %v", c.name, err, c.refused)
		}
		if err != nil {
			if code, _, _ := Status(err); code != 488 {
				t.Errorf("%s: status %d, want 488", c.name, code)
			}
		}
	}
}

// FuzzParseCrypto: no input panics, and what parses writes back to itself.
func FuzzParseCrypto(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20")
	f.Add("3 AEAD_AES_128_GCM inline:" + key28)
	f.Add("1 AES_CM_128_HMAC_SHA1_32 inline:" + key30 + "|2^20|1:4 KDR=1")
	f.Fuzz(func(t *testing.T, v string) {
		c, err := ParseCrypto(v)
		if err != nil {
			return
		}
		back, err := ParseCrypto(c.Attr())
		if err != nil || back.Tag != c.Tag || back.Suite != c.Suite || !bytes.Equal(back.Key, c.Key) {
			t.Fatalf("%q parsed to %+v, which writes back as %q: %+v %v", v, c, c.Attr(), back, err)
		}
	})
}

// TestBothStreams: an offer with an RTP/SAVP and an RTP/AVP audio stream
// gets the one media.srtp and the transport allow; the other is rejected
// with port 0 in the answer.
func TestBothStreams(t *testing.T) {
	sdp := offerSAVP + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\r\n" +
		"m=audio 4002 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
	cases := []struct {
		mode, tr string
		secure   bool
		port     int
		refused  bool
	}{
		{SRTPOptional, "TLS", true, 4000, false},
		{SRTPOptional, "UDP", false, 4002, false}, // keys in clear: the plain stream
		{SRTPOff, "TLS", false, 4002, false},
		{SRTPRequired, "TLS", true, 4000, false},
		{SRTPRequired, "UDP", false, 0, true},
	}
	for _, c := range cases {
		o, err := ParseOffer([]byte(sdp))
		if err != nil {
			t.Fatal(err)
		}
		s := &Server{cfg: Config{SRTP: c.mode}}
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "1001", Host: "h"})
		req.SetTransport(c.tr)
		got, err := s.srtpPolicy(o, req)
		if (err != nil) != c.refused {
			t.Errorf("%s over %s: %v", c.mode, c.tr, err)
			continue
		}
		if c.refused {
			continue
		}
		if got.Secure != c.secure || got.Remote.Port != c.port {
			t.Errorf("%s over %s: chose secure %v port %d", c.mode, c.tr, got.Secure, got.Remote.Port)
		}
		var l Local
		l.IP = net.ParseIP("192.0.2.1")
		l.Port = 20000
		if got.Secure {
			cr, _ := newCrypto(got.Crypto.Tag, got.Crypto.Suite)
			l.Crypto = &cr
		}
		ans := string(Answer(got, l))
		want := []string{"m=audio 20000 RTP/SAVP 0 101", "m=audio 0 RTP/AVP 0"}
		if !got.Secure {
			want = []string{"m=audio 0 RTP/SAVP 0", "m=audio 20000 RTP/AVP 0 101"}
		}
		for _, w := range want {
			if !strings.Contains(ans, w) {
				t.Errorf("%s over %s: answer lacks %q:\n%s", c.mode, c.tr, w, ans)
			}
		}
	}
}
