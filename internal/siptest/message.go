// Package siptest is a minimal SIP UAC over UDP with an RTP endpoint, for tests
// that must hear what the voicemail server plays or control exactly what it
// receives. It uses only the standard library, pion/rtp and zaf/g711.
//
// It is not a SIP stack: one INVITE dialog per Call, no authentication, no
// forking, no TCP. Good enough for loopback tests against the server.
package siptest

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Header is one SIP header line.
type Header struct{ Name, Value string }

// Message is a parsed SIP request or response.
type Message struct {
	// Request
	Method     string
	RequestURI string
	// Response
	StatusCode int
	Reason     string

	Headers []Header
	Body    []byte
}

// IsResponse reports whether m is a response.
func (m *Message) IsResponse() bool { return m.StatusCode != 0 }

var compact = map[string]string{
	"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
	"c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to", "v": "via",
	"o": "event", "r": "refer-to", "u": "allow-events",
}

func canon(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if c, ok := compact[n]; ok {
		return c
	}
	return n
}

// Get returns the first value of the header (case-insensitive, compact forms understood).
func (m *Message) Get(name string) string {
	n := canon(name)
	for _, h := range m.Headers {
		if canon(h.Name) == n {
			return h.Value
		}
	}
	return ""
}

// GetAll returns every value of the header, comma-separated values split apart
// for headers that allow it (Via, Allow, Supported...).
func (m *Message) GetAll(name string) []string {
	n := canon(name)
	var out []string
	for _, h := range m.Headers {
		if canon(h.Name) == n {
			out = append(out, h.Value)
		}
	}
	return out
}

// Has reports whether the header is present.
func (m *Message) Has(name string) bool { return len(m.GetAll(name)) > 0 }

// CSeq returns the CSeq number and method.
func (m *Message) CSeq() (uint32, string) {
	f := strings.Fields(m.Get("CSeq"))
	if len(f) != 2 {
		return 0, ""
	}
	n, _ := strconv.ParseUint(f[0], 10, 32)
	return uint32(n), strings.ToUpper(f[1])
}

// Tag returns the tag parameter of a From/To header value.
func Tag(v string) string {
	// parameters after the closing '>' (or the whole value without brackets)
	if i := strings.LastIndexByte(v, '>'); i >= 0 {
		v = v[i+1:]
	}
	for _, p := range strings.Split(v, ";") {
		p = strings.TrimSpace(p)
		if k, val, ok := strings.Cut(p, "="); ok && strings.EqualFold(strings.TrimSpace(k), "tag") {
			return strings.TrimSpace(val)
		}
	}
	return ""
}

// URIOf returns the URI inside <...> of a name-addr, or the value up to the first ';'.
func URIOf(v string) string {
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			return v[i+1 : i+j]
		}
	}
	if i := strings.IndexByte(v, ';'); i >= 0 {
		return strings.TrimSpace(v[:i])
	}
	return strings.TrimSpace(v)
}

// Parse parses one SIP message from a UDP datagram.
func Parse(b []byte) (*Message, error) {
	head, body, found := bytes.Cut(b, []byte("\r\n\r\n"))
	if !found {
		head, body, found = bytes.Cut(b, []byte("\n\n"))
		if !found {
			return nil, fmt.Errorf("siptest: no end of headers")
		}
	}
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	if len(lines) == 0 {
		return nil, fmt.Errorf("siptest: empty message")
	}
	m := &Message{}
	first := strings.TrimSpace(lines[0])
	if strings.HasPrefix(first, "SIP/2.0 ") {
		parts := strings.SplitN(first, " ", 3)
		code, err := strconv.Atoi(parts[1])
		if err != nil {
			return nil, fmt.Errorf("siptest: bad status line %q", first)
		}
		m.StatusCode = code
		if len(parts) == 3 {
			m.Reason = parts[2]
		}
	} else {
		parts := strings.Fields(first)
		if len(parts) != 3 || parts[2] != "SIP/2.0" {
			return nil, fmt.Errorf("siptest: bad request line %q", first)
		}
		m.Method, m.RequestURI = parts[0], parts[1]
	}
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && len(m.Headers) > 0 { // folded line
			m.Headers[len(m.Headers)-1].Value += " " + strings.TrimSpace(l)
			continue
		}
		name, val, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("siptest: bad header line %q", l)
		}
		m.Headers = append(m.Headers, Header{strings.TrimSpace(name), strings.TrimSpace(val)})
	}
	if cl := m.Get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("siptest: bad Content-Length %q", cl)
		}
		if n > len(body) {
			return nil, fmt.Errorf("siptest: body shorter than Content-Length")
		}
		body = body[:n]
	}
	m.Body = append([]byte(nil), body...)
	return m, nil
}

// String renders the message for the wire (CRLF line ends, Content-Length set).
func (m *Message) String() string {
	var sb strings.Builder
	if m.IsResponse() {
		fmt.Fprintf(&sb, "SIP/2.0 %d %s\r\n", m.StatusCode, m.Reason)
	} else {
		fmt.Fprintf(&sb, "%s %s SIP/2.0\r\n", m.Method, m.RequestURI)
	}
	for _, h := range m.Headers {
		if canon(h.Name) == "content-length" {
			continue
		}
		fmt.Fprintf(&sb, "%s: %s\r\n", h.Name, h.Value)
	}
	fmt.Fprintf(&sb, "Content-Length: %d\r\n\r\n", len(m.Body))
	sb.Write(m.Body)
	return sb.String()
}
