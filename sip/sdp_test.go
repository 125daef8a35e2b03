package sip

import (
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vmserver/voicemail/media"
)

const offerPCMU = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n" +
	"m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:30\r\n"

func TestOfferAnswer(t *testing.T) {
	cases := []struct {
		name, sdp string
		codec     media.Codec
		dtmf      uint8
		ptime     time.Duration
		remote    string
		dir       string
		answer    []string // substrings of the answer
	}{
		{"pcmu first", offerPCMU, media.PCMU, 101, 30 * time.Millisecond, "10.0.0.1:4000", "sendrecv",
			[]string{"m=audio 20000 RTP/AVP 0 101", "a=rtpmap:0 PCMU/8000", "a=fmtp:101 0-15", "a=ptime:30", "a=sendrecv", "c=IN IP4 192.0.2.1"}},
		{"pcma preferred", "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18 8 0 96\r\nc=IN IP4 10.0.0.2\r\na=rtpmap:96 telephone-event/8000\r\n",
			media.PCMA, 96, 20 * time.Millisecond, "10.0.0.2:4000", "sendrecv", []string{"m=audio 20000 RTP/AVP 8 96", "a=fmtp:96 0-15"}},
		{"hold sendonly", strings.Replace(offerPCMU, "a=ptime:30\r\n", "a=sendonly\r\n", 1), media.PCMU, 101, 20 * time.Millisecond, "10.0.0.1:4000", "sendonly", []string{"a=recvonly"}},
		{"video rejected", offerPCMU + "m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n", media.PCMU, 101, 30 * time.Millisecond, "10.0.0.1:4000", "sendrecv",
			[]string{"m=audio 20000 RTP/AVP 0 101", "m=video 0 RTP/AVP 96"}},
		{"video first", "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\nm=audio 4000 RTP/AVP 8\r\n", media.PCMA, 0, 20 * time.Millisecond, "10.0.0.1:4000", "sendrecv",
			[]string{"m=video 0 RTP/AVP 96\r\nm=audio 20000 RTP/AVP 8\r\n"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := ParseOffer([]byte(c.sdp))
			if err != nil {
				t.Fatal(err)
			}
			if o.Codec != c.codec || o.DTMF != c.dtmf || o.Ptime != c.ptime || o.Remote.String() != c.remote || o.Direction != c.dir {
				t.Fatalf("offer = %+v", o)
			}
			ans := string(Answer(o, Local{IP: net.ParseIP("192.0.2.1"), Port: 20000, SessionID: 7, Version: 1}))
			for _, want := range c.answer {
				if !strings.Contains(ans, want) {
					t.Errorf("answer lacks %q:\n%s", want, ans)
				}
			}
			if _, err := ParseOffer([]byte(ans)); c.name != "hold sendonly" && err != nil {
				t.Errorf("answer does not parse: %v", err)
			}
		})
	}
}

func TestOfferRejected(t *testing.T) {
	for name, sdp := range map[string]string{
		"g729 only": "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n",
		"no audio":  "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 4000 RTP/AVP 96\r\n",
		"garbage":   "hello",
		"srtp":      "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n",
	} {
		if _, err := ParseOffer([]byte(sdp)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestNewOffer(t *testing.T) {
	b := NewOffer(Local{IP: net.ParseIP("192.0.2.1"), Port: 20002, SessionID: 1, Version: 1})
	o, err := ParseOffer(b)
	if err != nil {
		t.Fatal(err)
	}
	if o.Codec != media.PCMU || o.DTMF != 101 || o.Remote.Port != 20002 {
		t.Errorf("offer %+v\n%s", o, b)
	}
	if !strings.Contains(string(b), "m=audio 20002 RTP/AVP 0 8 101") {
		t.Errorf("formats:\n%s", b)
	}
}

func TestOfferCNAndRTCP(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
	cases := []struct {
		name, sdp string
		cn        uint8
		mux       bool
		rtcp      string
		answer    []string // substrings of the answer
		absent    []string // not in the answer
	}{
		{"no cn, port+1", head + "m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n", 0, false, "10.0.0.1:4001",
			[]string{"m=audio 20000 RTP/AVP 0 101\r\n"}, []string{"CN/8000", "rtcp-mux"}},
		{"static cn", head + "m=audio 4000 RTP/AVP 0 13 101\r\na=rtpmap:101 telephone-event/8000\r\n", 13, false, "10.0.0.1:4001",
			[]string{"m=audio 20000 RTP/AVP 0 101 13\r\n", "a=rtpmap:13 CN/8000"}, []string{"rtcp-mux"}},
		{"dynamic cn", head + "m=audio 4000 RTP/AVP 8 98\r\na=rtpmap:98 CN/8000\r\n", 98, false, "10.0.0.1:4001",
			[]string{"m=audio 20000 RTP/AVP 8 98\r\n", "a=rtpmap:98 CN/8000"}, nil},
		{"wideband cn ignored", head + "m=audio 4000 RTP/AVP 0 97 13\r\na=rtpmap:97 CN/16000\r\n", 13, false, "10.0.0.1:4001",
			[]string{"m=audio 20000 RTP/AVP 0 13\r\n"}, []string{"97"}},
		{"rtcp-mux", head + "m=audio 4000 RTP/AVP 0 13\r\na=rtcp-mux\r\n", 13, true, "10.0.0.1:4000",
			[]string{"a=rtcp-mux"}, nil},
		{"a=rtcp port", head + "m=audio 4000 RTP/AVP 0\r\na=rtcp:4005\r\n", 0, false, "10.0.0.1:4005", nil, []string{"rtcp-mux"}},
		{"a=rtcp address", head + "m=audio 4000 RTP/AVP 0\r\na=rtcp:53020 IN IP4 126.16.64.4\r\n", 0, false, "126.16.64.4:53020", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := ParseOffer([]byte(c.sdp))
			if err != nil {
				t.Fatal(err)
			}
			if o.CN != c.cn || o.RTCPMux != c.mux || o.RTCP.String() != c.rtcp {
				t.Fatalf("cn %d mux %v rtcp %v", o.CN, o.RTCPMux, o.RTCP)
			}
			ans := string(Answer(o, Local{IP: net.ParseIP("192.0.2.1"), Port: 20000, SessionID: 7, Version: 1}))
			for _, want := range c.answer {
				if !strings.Contains(ans, want) {
					t.Errorf("answer lacks %q:\n%s", want, ans)
				}
			}
			for _, not := range c.absent {
				if strings.Contains(ans, not) {
					t.Errorf("answer has %q:\n%s", not, ans)
				}
			}
			a, err := ParseOffer([]byte(ans))
			if err != nil {
				t.Fatalf("answer does not parse: %v", err)
			}
			if a.CN != c.cn || a.RTCPMux != c.mux {
				t.Errorf("answer cn %d mux %v", a.CN, a.RTCPMux)
			}
		})
	}
	for name, sdp := range map[string]string{
		"rtcp port":    head + "m=audio 4000 RTP/AVP 0\r\na=rtcp:abc\r\n",
		"rtcp address": head + "m=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP4 host.example\r\n",
	} {
		if _, err := ParseOffer([]byte(sdp)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestNewOfferCNAndMux(t *testing.T) {
	b := string(NewOffer(Local{IP: net.ParseIP("192.0.2.1"), Port: 20002, SessionID: 1, Version: 1}))
	for _, want := range []string{"m=audio 20002 RTP/AVP 0 8 101 13\r\n", "a=rtpmap:13 CN/8000", "a=rtcp-mux"} {
		if !strings.Contains(b, want) {
			t.Errorf("offer lacks %q:\n%s", want, b)
		}
	}
}

// TestOfferSSRC: the caller's a=ssrc (RFC 5576) is read; our answer
// announces ours only when asked (the shared RTP port).
func TestOfferSSRC(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
	for _, c := range []struct {
		name, attrs string
		want        uint32
	}{
		{"none", "", 0},
		{"with cname", "a=ssrc:4294967295 cname:x@y\r\n", 4294967295},
		{"first of two", "a=ssrc:12 cname:a\r\na=ssrc:13 cname:a\r\n", 12},
		{"not a number", "a=ssrc:abc cname:a\r\n", 0},
		{"too big", "a=ssrc:4294967296 cname:a\r\n", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := ParseOffer([]byte(head + "m=audio 4000 RTP/AVP 0\r\n" + c.attrs))
			if err != nil {
				t.Fatal(err)
			}
			if o.SSRC != c.want {
				t.Fatalf("SSRC = %d, want %d", o.SSRC, c.want)
			}
			plain := string(Answer(o, Local{IP: net.ParseIP("192.0.2.1"), Port: 20000}))
			if strings.Contains(plain, "a=ssrc") {
				t.Fatalf("answer announces an SSRC unasked:\n%s", plain)
			}
			shared := string(Answer(o, Local{IP: net.ParseIP("192.0.2.1"), Port: 20000, SSRC: 77, CNAME: "vm@1"}))
			if !strings.Contains(shared, "a=ssrc:77 cname:vm@1\r\n") {
				t.Fatalf("answer lacks a=ssrc:\n%s", shared)
			}
		})
	}
}

// TestOfferMemory: a call keeps its offer for its life; the offer must
// keep what the answer needs, not the parsed description and the text it
// points into (1.4 KiB for this offer; 0.3 KiB kept now). Not parallel:
// it reads the heap.
func TestOfferMemory(t *testing.T) {
	body := []byte("v=0\r\no=linphone 1234 5678 IN IP4 192.168.1.20\r\ns=Talk\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\n" +
		"a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n" +
		"m=audio 7078 RTP/AVP 0 8 101 13\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp:7079\r\n" +
		"a=rtcp-fb:* trr-int 1000\r\na=ptime:20\r\na=sendrecv\r\nm=video 9078 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n")
	const n = 2000
	keep := make([]*Offer, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range keep {
		o, err := ParseOffer(body)
		if err != nil {
			t.Fatal(err)
		}
		keep[i] = o
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("%d bytes kept per offer", per)
	if per > 700 {
		t.Errorf("%d bytes kept per offer, want at most 700", per)
	}
	runtime.KeepAlive(keep)
}
