package sip

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unique"

	"github.com/pion/sdp/v3"

	"github.com/vmserver/voicemail/media"
)

// errNoCodec means the offer has no audio stream with PCMU or PCMA: 488.
var errNoCodec = errors.New("no common codec: offer PCMU (0) or PCMA (8)")

// Offer is what we took from a remote SDP (RFC 3264 offer/answer).
type Offer struct {
	lines   []mline // every m-line, for the answer
	audio   int     // index of the chosen audio m-line
	Codec   media.Codec
	CodecPT uint8
	DTMF    uint8 // telephone-event payload type, 0 = none
	CN      uint8 // comfort noise (RFC 3389) payload type, usually 13; 0 = none
	Remote  *net.UDPAddr
	// RTCP is where the remote wants RTCP: the a=rtcp attribute
	// (RFC 3605), else the RTP port + 1 (RFC 3550 §11); Remote with
	// rtcp-mux.
	RTCP      *net.UDPAddr
	RTCPMux   bool // a=rtcp-mux (RFC 5761): RTCP on the RTP port; the answer says so too
	Ptime     time.Duration
	Direction string // sendrecv, sendonly, recvonly, inactive
	// Secure is an RTP/SAVP stream (SRTP); Crypto is the first of its
	// a=crypto attributes we support (RFC 4568), with the caller's key.
	Secure bool
	Crypto *Crypto
	// SSRC is the remote's first a=ssrc (RFC 5576) of the stream, 0 = none.
	SSRC uint32
	// other is the first usable audio stream of the other kind (RTP/AVP
	// for an RTP/SAVP offer, or the reverse), when the offer has both.
	other *Offer
}

// mline is what an answer needs of an m-line of the offer: a call keeps
// its offer for its life, and the parsed description (~1.4 KiB) with the
// text it points into was a twentieth of a deposit's memory.
type mline struct {
	media  string
	protos []string
	format string // the first, to reject the line with (RFC 3264 §6)
}

// sdpToken returns s interned: what the offer keeps must not point into
// the message's text, and the usual values (audio, RTP, AVP, 0…) are
// then shared by every call.
func sdpToken(s string) string { return unique.Make(s).Value() }

func mlines(d *sdp.SessionDescription) []mline {
	out := make([]mline, len(d.MediaDescriptions))
	for i, m := range d.MediaDescriptions {
		l := mline{media: sdpToken(m.MediaName.Media), format: "0", protos: make([]string, len(m.MediaName.Protos))}
		if len(m.MediaName.Formats) > 0 {
			l.format = sdpToken(m.MediaName.Formats[0])
		}
		for j, p := range m.MediaName.Protos {
			l.protos[j] = sdpToken(p)
		}
		out[i] = l
	}
	return out
}

// Hold reports whether the remote asked us not to send (RFC 3264 §8.4).
func (o *Offer) Hold() bool {
	return o.Direction == "sendonly" || o.Direction == "inactive" || o.Remote == nil || o.Remote.IP.IsUnspecified()
}

// ParseOffer reads an SDP offer (or answer) and picks the first audio stream
// with PCMU or PCMA, in the offerer's preference order.
func ParseOffer(body []byte) (*Offer, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(string(body)); err != nil {
		return nil, fmt.Errorf("sdp: %w", err)
	}
	var first *Offer
	noCrypto := false
	var lines []mline
	for i, m := range d.MediaDescriptions {
		secure := isSAVP(m.MediaName.Protos)
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 || (!isRTPAVP(m.MediaName.Protos) && !secure) {
			continue
		}
		if lines == nil {
			lines = mlines(&d)
		}
		o := &Offer{lines: lines, audio: i, Ptime: 20 * time.Millisecond, Direction: direction(d.Attributes, m.Attributes), Secure: secure}
		if secure {
			var values []string
			for _, a := range m.Attributes {
				if a.Key == "crypto" {
					values = append(values, a.Value)
				}
			}
			c, ok := pickCrypto(values)
			if !ok {
				noCrypto = true
				continue
			}
			o.Crypto = &c
		}
		found := false
		for _, f := range m.MediaName.Formats {
			pt, err := strconv.Atoi(f)
			if err != nil || pt < 0 || pt > 127 {
				continue
			}
			name, rate := rtpmap(m, pt)
			if name == "" { // static payload types need no rtpmap (RFC 3551)
				name, rate = map[int]string{0: "pcmu", 8: "pcma", 13: "cn"}[pt], 8000
			}
			if rate != 8000 {
				continue
			}
			switch {
			case name == "pcmu" && !found:
				o.Codec, o.CodecPT, found = media.PCMU, uint8(pt), true
			case name == "pcma" && !found:
				o.Codec, o.CodecPT, found = media.PCMA, uint8(pt), true
			case name == "telephone-event" && o.DTMF == 0:
				o.DTMF = uint8(pt)
			case name == "cn" && o.CN == 0:
				o.CN = uint8(pt)
			}
		}
		if !found {
			continue
		}
		if v, ok := m.Attribute("ptime"); ok {
			if ms, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && ms >= 10 && ms <= 200 {
				o.Ptime = time.Duration(ms) * time.Millisecond
			}
		}
		addr := ""
		if m.ConnectionInformation != nil && m.ConnectionInformation.Address != nil {
			addr = m.ConnectionInformation.Address.Address
		} else if d.ConnectionInformation != nil && d.ConnectionInformation.Address != nil {
			addr = d.ConnectionInformation.Address.Address
		}
		ip := net.ParseIP(addr)
		if ip == nil {
			if first != nil {
				break // a broken alternative does not spoil the first stream
			}
			return nil, fmt.Errorf("sdp: connection address %q is not an IP address", addr)
		}
		o.Remote = &net.UDPAddr{IP: ip, Port: m.MediaName.Port.Value}
		_, o.RTCPMux = m.Attribute("rtcp-mux")
		if v, ok := m.Attribute("ssrc"); ok {
			id, _, _ := strings.Cut(v, " ")
			if n, err := strconv.ParseUint(id, 10, 32); err == nil {
				o.SSRC = uint32(n)
			}
		}
		o.RTCP = &net.UDPAddr{IP: ip, Port: o.Remote.Port + 1}
		if o.RTCPMux {
			o.RTCP.Port = o.Remote.Port
		} else if v, ok := m.Attribute("rtcp"); ok {
			a, err := rtcpAttr(v, ip)
			if err != nil {
				if first != nil {
					break
				}
				return nil, err
			}
			o.RTCP = a
		}
		if first == nil {
			first = o
			continue
		}
		if o.Secure != first.Secure {
			first.other = o // an RTP/SAVP and an RTP/AVP stream: media.srtp picks (sdes.go)
			break
		}
	}
	if first != nil {
		return first, nil
	}
	if noCrypto {
		return nil, errNoCrypto
	}
	return nil, errNoCodec
}

func isRTPAVP(protos []string) bool {
	p := strings.ToUpper(strings.Join(protos, "/"))
	return p == "RTP/AVP" || p == "RTP/AVPF"
}

// rtpmap is the lower-case encoding name and clock rate of pt; "" without
// an rtpmap.
func rtpmap(m *sdp.MediaDescription, pt int) (name string, rate int) {
	prefix := strconv.Itoa(pt) + " "
	for _, a := range m.Attributes {
		if a.Key == "rtpmap" && strings.HasPrefix(a.Value, prefix) {
			name, rest, _ := strings.Cut(strings.TrimSpace(a.Value[len(prefix):]), "/")
			r, _, _ := strings.Cut(rest, "/")
			rate, _ = strconv.Atoi(r)
			return strings.ToLower(name), rate
		}
	}
	return "", 0
}

// rtcpAttr reads "a=rtcp:port [IN IP4 addr]" (RFC 3605 §2.1); without an
// address the RTCP IP is the media's.
func rtcpAttr(v string, ip net.IP) (*net.UDPAddr, error) {
	f := strings.Fields(v)
	if len(f) == 0 {
		return nil, fmt.Errorf("sdp: empty a=rtcp")
	}
	port, err := strconv.Atoi(f[0])
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("sdp: a=rtcp port %q", f[0])
	}
	if len(f) >= 4 {
		if ip = net.ParseIP(f[3]); ip == nil {
			return nil, fmt.Errorf("sdp: a=rtcp address %q is not an IP address", f[3])
		}
	}
	return &net.UDPAddr{IP: ip, Port: port}, nil
}

func direction(session, media []sdp.Attribute) string {
	dir := "sendrecv"
	for _, list := range [][]sdp.Attribute{session, media} {
		for _, a := range list {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				dir = sdpToken(a.Key) // not a.Key: see mline
			}
		}
	}
	return dir
}

// answerDirection mirrors the offer (RFC 3264 §6.1).
func answerDirection(offer string) string {
	switch offer {
	case "sendonly":
		return "recvonly"
	case "recvonly":
		return "sendonly"
	case "inactive":
		return "inactive"
	}
	return "sendrecv"
}

// Local is our side of the session description.
type Local struct {
	IP        net.IP
	Port      int
	SessionID uint64
	Version   uint64
	// Crypto is our SRTP key for an RTP/SAVP stream (sdes.go); nil = RTP.
	Crypto *Crypto
	// SSRC and CNAME, when SSRC is not 0, are announced with a=ssrc
	// (RFC 5576): on the shared RTP port (media.rtp_mux) they tell a
	// peer that sends several calls from one socket which stream is
	// which call's.
	SSRC  uint32
	CNAME string
}

// Answer builds the SDP answer: the same m-lines in the same order, the
// chosen audio stream with one codec and the echoed telephone-event, every
// other stream rejected with port 0 and one format (RFC 3264 §6).
func Answer(o *Offer, l Local) []byte {
	d := baseSession(l)
	for i, m := range o.lines {
		if i != o.audio {
			d.MediaDescriptions = append(d.MediaDescriptions, &sdp.MediaDescription{
				MediaName: sdp.MediaName{Media: m.media, Port: sdp.RangedPort{Value: 0}, Protos: m.protos, Formats: []string{m.format}},
			})
			continue
		}
		d.MediaDescriptions = append(d.MediaDescriptions, audioMedia(l, audioParams{
			pt: o.CodecPT, codec: o.Codec, dtmf: o.DTMF, cn: o.CN, mux: o.RTCPMux,
			ptime: o.Ptime, dir: answerDirection(o.Direction), protos: m.protos,
			crypto: l.Crypto,
		}))
	}
	b, _ := d.Marshal()
	return b
}

// NewOffer builds our offer for an INVITE that came without SDP: PCMU,
// PCMA, telephone-event 101, comfort noise 13 and rtcp-mux (we listen on
// the RTP port + 1 too, so an answer without it works).
func NewOffer(l Local) []byte {
	d := baseSession(l)
	protos := []string{"RTP", "AVP"}
	if l.Crypto != nil {
		protos = []string{"RTP", "SAVP"}
	}
	m := audioMedia(l, audioParams{pt: 0, codec: media.PCMU, dtmf: 101, cn: 13, mux: true,
		ptime: 20 * time.Millisecond, dir: "sendrecv", protos: protos, crypto: l.Crypto})
	m.MediaName.Formats = []string{"0", "8", "101", "13"}
	m.Attributes = append([]sdp.Attribute{sdp.NewAttribute("rtpmap", "0 PCMU/8000"), sdp.NewAttribute("rtpmap", "8 PCMA/8000")}, m.Attributes[1:]...)
	d.MediaDescriptions = append(d.MediaDescriptions, m)
	b, _ := d.Marshal()
	return b
}

func baseSession(l Local) *sdp.SessionDescription {
	return &sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "voicemail", SessionID: l.SessionID, SessionVersion: l.Version,
			NetworkType: "IN", AddressType: addrType(l.IP), UnicastAddress: l.IP.String(),
		},
		SessionName:           "voicemail",
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType(l.IP), Address: &sdp.Address{Address: l.IP.String()}},
		TimeDescriptions:      []sdp.TimeDescription{{Timing: sdp.Timing{}}},
	}
}

// audioParams is what our audio m-line says.
type audioParams struct {
	pt     uint8
	codec  media.Codec
	dtmf   uint8 // 0 = none
	cn     uint8 // 0 = none
	mux    bool
	ptime  time.Duration
	dir    string
	protos []string
	crypto *Crypto // a=crypto with our key, for RTP/SAVP
}

func audioMedia(l Local, p audioParams) *sdp.MediaDescription {
	formats := []string{strconv.Itoa(int(p.pt))}
	attrs := []sdp.Attribute{sdp.NewAttribute("rtpmap", fmt.Sprintf("%d %s/8000", p.pt, p.codec))}
	if p.dtmf != 0 {
		formats = append(formats, strconv.Itoa(int(p.dtmf)))
		attrs = append(attrs,
			sdp.NewAttribute("rtpmap", fmt.Sprintf("%d telephone-event/8000", p.dtmf)),
			// RFC 4733 §2.5.2.1: the events we understand.
			sdp.NewAttribute("fmtp", fmt.Sprintf("%d 0-15", p.dtmf)))
	}
	if p.cn != 0 {
		formats = append(formats, strconv.Itoa(int(p.cn)))
		attrs = append(attrs, sdp.NewAttribute("rtpmap", fmt.Sprintf("%d CN/8000", p.cn)))
	}
	attrs = append(attrs, sdp.NewAttribute("ptime", strconv.Itoa(int(p.ptime/time.Millisecond))), sdp.NewPropertyAttribute(p.dir))
	if p.mux {
		attrs = append(attrs, sdp.NewPropertyAttribute("rtcp-mux"))
	}
	if p.crypto != nil && isSAVP(p.protos) {
		attrs = append(attrs, sdp.NewAttribute("crypto", p.crypto.Attr()))
	}
	if l.SSRC != 0 {
		attrs = append(attrs, sdp.NewAttribute("ssrc", fmt.Sprintf("%d cname:%s", l.SSRC, l.CNAME)))
	}
	return &sdp.MediaDescription{
		MediaName:  sdp.MediaName{Media: "audio", Port: sdp.RangedPort{Value: l.Port}, Protos: p.protos, Formats: formats},
		Attributes: attrs,
	}
}

func addrType(ip net.IP) string {
	if ip.To4() == nil {
		return "IP6"
	}
	return "IP4"
}
