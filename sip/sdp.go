package sip

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pion/sdp/v3"

	"github.com/vmserver/voicemail/media"
)

// errNoCodec means the offer has no audio stream with PCMU or PCMA: 488.
var errNoCodec = errors.New("no common codec: offer PCMU (0) or PCMA (8)")

// Offer is what we took from a remote SDP (RFC 3264 offer/answer).
type Offer struct {
	desc      *sdp.SessionDescription
	audio     int // index of the chosen audio m-line
	Codec     media.Codec
	CodecPT   uint8
	DTMF      uint8 // telephone-event payload type, 0 = none
	Remote    *net.UDPAddr
	Ptime     time.Duration
	Direction string // sendrecv, sendonly, recvonly, inactive
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
	for i, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 || !isRTPAVP(m.MediaName.Protos) {
			continue
		}
		o := &Offer{desc: &d, audio: i, Ptime: 20 * time.Millisecond, Direction: direction(d.Attributes, m.Attributes)}
		found := false
		for _, f := range m.MediaName.Formats {
			pt, err := strconv.Atoi(f)
			if err != nil || pt < 0 || pt > 127 {
				continue
			}
			name := rtpmapName(m, pt)
			if name == "" { // static payload types need no rtpmap (RFC 3551)
				name = map[int]string{0: "pcmu", 8: "pcma"}[pt]
			}
			switch {
			case name == "pcmu" && !found:
				o.Codec, o.CodecPT, found = media.PCMU, uint8(pt), true
			case name == "pcma" && !found:
				o.Codec, o.CodecPT, found = media.PCMA, uint8(pt), true
			case name == "telephone-event" && o.DTMF == 0:
				o.DTMF = uint8(pt)
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
			return nil, fmt.Errorf("sdp: connection address %q is not an IP address", addr)
		}
		o.Remote = &net.UDPAddr{IP: ip, Port: m.MediaName.Port.Value}
		return o, nil
	}
	return nil, errNoCodec
}

func isRTPAVP(protos []string) bool {
	p := strings.ToUpper(strings.Join(protos, "/"))
	return p == "RTP/AVP" || p == "RTP/AVPF"
}

// rtpmapName is the lower-case encoding name of pt, "" without an rtpmap.
func rtpmapName(m *sdp.MediaDescription, pt int) string {
	prefix := strconv.Itoa(pt) + " "
	for _, a := range m.Attributes {
		if a.Key == "rtpmap" && strings.HasPrefix(a.Value, prefix) {
			name, _, _ := strings.Cut(strings.TrimSpace(a.Value[len(prefix):]), "/")
			return strings.ToLower(name)
		}
	}
	return ""
}

func direction(session, media []sdp.Attribute) string {
	dir := "sendrecv"
	for _, list := range [][]sdp.Attribute{session, media} {
		for _, a := range list {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				dir = a.Key
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
}

// Answer builds the SDP answer: the same m-lines in the same order, the
// chosen audio stream with one codec and the echoed telephone-event, every
// other stream rejected with port 0 and one format (RFC 3264 §6).
func Answer(o *Offer, l Local) []byte {
	d := baseSession(l)
	for i, m := range o.desc.MediaDescriptions {
		if i != o.audio {
			f := "0"
			if len(m.MediaName.Formats) > 0 {
				f = m.MediaName.Formats[0]
			}
			d.MediaDescriptions = append(d.MediaDescriptions, &sdp.MediaDescription{
				MediaName: sdp.MediaName{Media: m.MediaName.Media, Port: sdp.RangedPort{Value: 0}, Protos: m.MediaName.Protos, Formats: []string{f}},
			})
			continue
		}
		d.MediaDescriptions = append(d.MediaDescriptions, audioMedia(l, o.CodecPT, o.Codec, o.DTMF, o.Ptime, answerDirection(o.Direction), m.MediaName.Protos))
	}
	b, _ := d.Marshal()
	return b
}

// NewOffer builds our offer for an INVITE that came without SDP: PCMU,
// PCMA and telephone-event 101.
func NewOffer(l Local) []byte {
	d := baseSession(l)
	m := audioMedia(l, 0, media.PCMU, 101, 20*time.Millisecond, "sendrecv", []string{"RTP", "AVP"})
	m.MediaName.Formats = []string{"0", "8", "101"}
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

func audioMedia(l Local, pt uint8, c media.Codec, dtmf uint8, ptime time.Duration, dir string, protos []string) *sdp.MediaDescription {
	formats := []string{strconv.Itoa(int(pt))}
	attrs := []sdp.Attribute{sdp.NewAttribute("rtpmap", fmt.Sprintf("%d %s/8000", pt, c))}
	if dtmf != 0 {
		formats = append(formats, strconv.Itoa(int(dtmf)))
		attrs = append(attrs,
			sdp.NewAttribute("rtpmap", fmt.Sprintf("%d telephone-event/8000", dtmf)),
			// RFC 4733 §2.5.2.1: the events we understand.
			sdp.NewAttribute("fmtp", fmt.Sprintf("%d 0-15", dtmf)))
	}
	attrs = append(attrs, sdp.NewAttribute("ptime", strconv.Itoa(int(ptime/time.Millisecond))), sdp.NewPropertyAttribute(dir))
	return &sdp.MediaDescription{
		MediaName:  sdp.MediaName{Media: "audio", Port: sdp.RangedPort{Value: l.Port}, Protos: protos, Formats: formats},
		Attributes: attrs,
	}
}

func addrType(ip net.IP) string {
	if ip.To4() == nil {
		return "IP6"
	}
	return "IP4"
}
