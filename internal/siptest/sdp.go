package siptest

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Static G.711 payload types.
const (
	PCMU uint8 = 0
	PCMA uint8 = 8
)

// SDP is the part of a session description this client cares about: the
// first audio stream.
type SDP struct {
	Addr       net.IP
	Port       int
	Formats    []uint8          // payload types of the m=audio line, in order
	RTPMap     map[uint8]string // "PCMU/8000", "telephone-event/8000"...
	Fmtp       map[uint8]string
	Direction  string // sendrecv (default), sendonly, recvonly, inactive
	Ptime      int
	OriginVers string
}

// TelephoneEvent returns the payload type mapped to telephone-event/8000, or 0.
func (s *SDP) TelephoneEvent() uint8 {
	for pt, m := range s.RTPMap {
		if strings.HasPrefix(strings.ToLower(m), "telephone-event/8000") {
			return pt
		}
	}
	return 0
}

// ParseSDP parses the first m=audio section.
func ParseSDP(b []byte) (*SDP, error) {
	s := &SDP{RTPMap: map[uint8]string{}, Fmtp: map[uint8]string{}, Direction: "sendrecv"}
	var sessionAddr, mediaAddr net.IP
	inAudio, seenAudio := false, false
	for _, line := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		k, v := line[0], line[2:]
		switch k {
		case 'o':
			if f := strings.Fields(v); len(f) >= 3 {
				s.OriginVers = f[2]
			}
		case 'c':
			f := strings.Fields(v)
			if len(f) == 3 {
				ip := net.ParseIP(strings.Split(f[2], "/")[0])
				if !seenAudio {
					sessionAddr = ip
				} else if inAudio {
					mediaAddr = ip
				}
			}
		case 'm':
			if seenAudio {
				inAudio = false
				continue
			}
			f := strings.Fields(v)
			if len(f) >= 3 && f[0] == "audio" {
				seenAudio, inAudio = true, true
				p, err := strconv.Atoi(f[1])
				if err != nil {
					return nil, fmt.Errorf("siptest: bad m= port %q", f[1])
				}
				s.Port = p
				for _, pt := range f[3:] {
					n, err := strconv.Atoi(pt)
					if err == nil && n >= 0 && n < 128 {
						s.Formats = append(s.Formats, uint8(n))
					}
				}
			}
		case 'a':
			if seenAudio && !inAudio {
				continue
			}
			name, val, _ := strings.Cut(v, ":")
			switch name {
			case "rtpmap":
				f := strings.Fields(val)
				if len(f) == 2 {
					if n, err := strconv.Atoi(f[0]); err == nil {
						s.RTPMap[uint8(n)] = f[1]
					}
				}
			case "fmtp":
				f := strings.SplitN(val, " ", 2)
				if len(f) == 2 {
					if n, err := strconv.Atoi(f[0]); err == nil {
						s.Fmtp[uint8(n)] = f[1]
					}
				}
			case "ptime":
				s.Ptime, _ = strconv.Atoi(strings.TrimSpace(val))
			case "sendrecv", "sendonly", "recvonly", "inactive":
				s.Direction = name
			}
		}
	}
	if !seenAudio {
		return nil, fmt.Errorf("siptest: no m=audio line")
	}
	s.Addr = sessionAddr
	if mediaAddr != nil {
		s.Addr = mediaAddr
	}
	if s.Addr == nil {
		return nil, fmt.Errorf("siptest: no c= line")
	}
	return s, nil
}

func codecName(pt uint8) string {
	switch pt {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	case 18:
		return "G729"
	case 9:
		return "G722"
	case 3:
		return "GSM"
	}
	return fmt.Sprintf("PT%d", pt)
}

// CN is the comfort noise payload type (RFC 3389) every SDP of ours
// offers: the server's keep-alive while it is silent then arrives as PT 13,
// apart from the codec's audio packets that tests count and decode.
const CN uint8 = 13

// BuildSDP makes an SDP offer/answer for one audio stream, with comfort
// noise (CN).
func BuildSDP(ip string, port int, codecs []uint8, dtmf uint8, sessID int64) []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, "v=0\r\no=siptest %d 1 IN IP4 %s\r\ns=siptest\r\nc=IN IP4 %s\r\nt=0 0\r\n", sessID, ip, ip)
	fmt.Fprintf(&sb, "m=audio %d RTP/AVP", port)
	for _, c := range codecs {
		fmt.Fprintf(&sb, " %d", c)
	}
	if dtmf != 0 {
		fmt.Fprintf(&sb, " %d", dtmf)
	}
	fmt.Fprintf(&sb, " %d\r\n", CN)
	for _, c := range codecs {
		fmt.Fprintf(&sb, "a=rtpmap:%d %s/8000\r\n", c, codecName(c))
	}
	if dtmf != 0 {
		fmt.Fprintf(&sb, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-15\r\n", dtmf, dtmf)
	}
	fmt.Fprintf(&sb, "a=rtpmap:%d CN/8000\r\n", CN)
	sb.WriteString("a=ptime:20\r\na=sendrecv\r\n")
	return []byte(sb.String())
}

// sdp is BuildSDP for this call: without the CN lines when the call is
// configured NoCN.
func (c *Call) sdp(ip string, port int, codecs []uint8, dtmf uint8, sessID int64) []byte {
	b := BuildSDP(ip, port, codecs, dtmf, sessID)
	if !c.cfg.NoCN {
		return b
	}
	s := strings.Replace(string(b), fmt.Sprintf(" %d\r\n", CN), "\r\n", 1)
	s = strings.Replace(s, fmt.Sprintf("a=rtpmap:%d CN/8000\r\n", CN), "", 1)
	return []byte(s)
}
