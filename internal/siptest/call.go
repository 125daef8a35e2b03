package siptest

// This file is over 600 lines on purpose: one Call is an INVITE client
// transaction, its in-dialog requests and its RTP sender and receiver, all
// sharing the fields and the lock of the Call struct; split by concern it
// would spread one struct's invariants over several files.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
)

// Config describes the call to place.
type Config struct {
	// Server is host:port of the server's SIP UDP listener. Required.
	Server string
	// RequestURI of the INVITE, e.g. "sip:1001@127.0.0.1:5060" or
	// "sip:vm@127.0.0.1:5060;target=1002;cause=486". Required.
	RequestURI string
	// From is a name-addr without tag; default `"siptest" <sip:+14155550100@LocalIP>`.
	From string
	// To is a name-addr; default the Request-URI without its parameters.
	To string
	// Headers are extra header lines ("Diversion: <sip:1002@host>;reason=user-busy").
	Headers []string
	// Codecs are the payload types offered, in preference order; default PCMU, PCMA.
	// Any static payload type may be offered (e.g. 18 for G.729).
	Codecs []uint8
	// DTMF is the telephone-event payload type offered; default 101. NoDTMF offers none.
	DTMF   uint8
	NoDTMF bool
	// NoSDP sends the INVITE without a body; the 200 then carries the offer and
	// the ACK the answer.
	NoSDP bool
	// NoCN leaves comfort noise (PT 13) out of the SDP, as many phones do.
	NoCN bool
	// LocalIP to bind and advertise; default 127.0.0.1.
	LocalIP string
	// Timeout for the final response to the INVITE; default 15 s.
	Timeout time.Duration
	// Logf, if set, receives every SIP message sent and received.
	Logf func(format string, args ...any)
	// TLS, when set, sends SIP over one TLS connection to Server (a tls:
	// listener) instead of UDP (secure.go).
	TLS *tls.Config
	// SRTP, when set, offers RTP/SAVP with one a=crypto of this suite
	// (AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM)
	// and encrypts and decrypts the media (secure.go).
	SRTP string
}

// Call is one INVITE dialog with its RTP endpoint.
type Call struct {
	cfg     Config
	server  *net.UDPAddr
	sip     *net.UDPConn
	tlsConn *tls.Conn // with Config.TLS, instead of sip
	// sendMuTLS keeps messages whole on the TLS stream.
	sendMuTLS sync.Mutex
	rtpConn   *net.UDPConn
	srtp      *srtpState // with Config.SRTP
	callID    string
	fromTag   string
	branch    string // of the INVITE
	sessID    int64

	respCh chan *Message
	done   chan struct{} // closed when the dialog ends (BYE either way)
	doneMu sync.Once
	closed chan struct{}

	mu          sync.Mutex
	provisional []*Message
	final       *Message
	remoteTag   string
	remoteURI   string
	toHeader    string
	cseq        uint32
	acked       bool
	ackMsg      *Message
	codec       uint8
	dtmfPT      uint8
	remoteRTP   *net.UDPAddr
	latched     *net.UDPAddr
	received    []int16
	recvPackets map[uint8]int
	recvSSRC    map[uint32]bool
	byeFromPeer *Message

	sendMu sync.Mutex
	ssrc   uint32
	seq    uint16
	ts     uint32
	marker bool
}

// RandHex is n random bytes in hex: tags, branches, Call-IDs.
func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Rand32 is a random SSRC or initial sequence.
func Rand32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// Dial places the call: INVITE, waits for the final response, and ACKs it.
// It returns a Call for any final response (check Status); the error is only
// for transport failures and timeouts.
func Dial(ctx context.Context, cfg Config) (*Call, error) {
	if cfg.Server == "" || cfg.RequestURI == "" {
		return nil, errors.New("siptest: Server and RequestURI are required")
	}
	if cfg.LocalIP == "" {
		cfg.LocalIP = "127.0.0.1"
	}
	if cfg.Codecs == nil {
		cfg.Codecs = []uint8{PCMU, PCMA}
	}
	if cfg.DTMF == 0 && !cfg.NoDTMF {
		cfg.DTMF = 101
	}
	if cfg.NoDTMF {
		cfg.DTMF = 0
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.From == "" {
		cfg.From = fmt.Sprintf(`"siptest" <sip:+14155550100@%s>`, cfg.LocalIP)
	}
	if cfg.To == "" {
		u := cfg.RequestURI
		if i := strings.IndexByte(u, ';'); i >= 0 {
			u = u[:i]
		}
		cfg.To = "<" + u + ">"
	}
	srv, err := net.ResolveUDPAddr("udp", cfg.Server)
	if err != nil {
		return nil, err
	}
	c := &Call{
		cfg: cfg, server: srv,
		callID:  RandHex(12) + "@siptest",
		fromTag: RandHex(6),
		sessID:  int64(Rand32()),
		respCh:  make(chan *Message, 64),
		done:    make(chan struct{}),
		closed:  make(chan struct{}),
		ssrc:    Rand32(), seq: uint16(Rand32()), ts: Rand32(), marker: true,
		recvPackets: map[uint8]int{},
		recvSSRC:    map[uint32]bool{},
		toHeader:    cfg.To,
		remoteURI:   cfg.RequestURI,
	}
	ip := net.ParseIP(cfg.LocalIP)
	if err := c.dialSIP(ctx, ip); err != nil {
		return nil, err
	}
	if err := c.newSRTP(); err != nil {
		return nil, err
	}
	// An even RTP port, as RFC 3550 asks.
	for i := 0; i < 20; i++ {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
		if err != nil {
			c.closeSIP()
			return nil, err
		}
		if conn.LocalAddr().(*net.UDPAddr).Port%2 == 0 || i == 19 {
			c.rtpConn = conn
			break
		}
		conn.Close()
	}
	go c.readSIP()
	go c.readRTP()

	c.cseq = 1
	c.branch = "z9hG4bK" + RandHex(8)
	inv := c.newRequest("INVITE", cfg.RequestURI, c.branch, 1)
	for _, h := range cfg.Headers {
		name, val, _ := strings.Cut(h, ":")
		inv.Headers = append(inv.Headers, Header{strings.TrimSpace(name), strings.TrimSpace(val)})
	}
	if !cfg.NoSDP {
		inv.Headers = append(inv.Headers, Header{"Content-Type", "application/sdp"})
		inv.Body = c.secureSDP(c.sdp(cfg.LocalIP, c.RTPPort(), cfg.Codecs, cfg.DTMF, c.sessID))
	}
	tctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	final, err := c.transaction(tctx, inv, true)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.mu.Lock()
	c.final = final
	c.remoteTag = Tag(final.Get("To"))
	c.toHeader = final.Get("To")
	c.mu.Unlock()
	if final.StatusCode >= 300 {
		// ACK in the INVITE transaction (same branch, RFC 3261 17.1.1.3).
		ack := c.newRequest("ACK", cfg.RequestURI, c.branch, 1)
		c.setTo(ack, final.Get("To"))
		c.send(ack)
		c.end()
		return c, nil
	}
	if err := c.onAnswer(final); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Call) onAnswer(final *Message) error {
	if ct := final.Get("Contact"); ct != "" {
		c.remoteURI = URIOf(ct)
	}
	var ackBody []byte
	if len(final.Body) == 0 {
		return errors.New("siptest: 200 OK without SDP")
	}
	sdp, err := ParseSDP(final.Body)
	if err != nil {
		return err
	}
	if err := c.srtpAnswer(final.Body); err != nil {
		return err
	}
	codec, ok := uint8(255), false
	if c.cfg.NoSDP {
		// the 200 holds the offer: pick our first codec it offers
		for _, want := range c.cfg.Codecs {
			for _, f := range sdp.Formats {
				if f == want && !ok {
					codec, ok = f, true
				}
			}
		}
	} else {
		for _, f := range sdp.Formats {
			if (f == PCMU || f == PCMA) && !ok {
				codec, ok = f, true
			}
		}
	}
	if !ok {
		return fmt.Errorf("siptest: no usable codec in SDP %q", final.Body)
	}
	dtmf := sdp.TelephoneEvent()
	if c.cfg.NoDTMF {
		dtmf = 0
	}
	if c.cfg.NoSDP {
		ackBody = c.secureSDP(c.sdp(c.cfg.LocalIP, c.RTPPort(), []uint8{codec}, dtmf, c.sessID))
	}
	c.mu.Lock()
	c.codec, c.dtmfPT = codec, dtmf
	c.remoteRTP = &net.UDPAddr{IP: sdp.Addr, Port: sdp.Port}
	c.mu.Unlock()

	ack := c.newRequest("ACK", c.remoteURI, "z9hG4bK"+RandHex(8), 1)
	c.setTo(ack, final.Get("To"))
	if ackBody != nil {
		ack.Headers = append(ack.Headers, Header{"Content-Type", "application/sdp"})
		ack.Body = ackBody
	}
	c.mu.Lock()
	c.acked, c.ackMsg = true, ack
	c.mu.Unlock()
	c.send(ack)
	return nil
}

func (c *Call) setTo(m *Message, to string) {
	for i := range m.Headers {
		if m.Headers[i].Name == "To" {
			m.Headers[i].Value = to
		}
	}
}

func (c *Call) newRequest(method, ruri, branch string, cseq uint32) *Message {
	return &Message{
		Method: method, RequestURI: ruri,
		Headers: []Header{
			{"Via", fmt.Sprintf("SIP/2.0/%s %s:%d;branch=%s;rport", c.viaTransport(), c.cfg.LocalIP, c.sipPort(), branch)},
			{"Max-Forwards", "70"},
			{"From", c.cfg.From + ";tag=" + c.fromTag},
			{"To", c.toHeader},
			{"Call-ID", c.callID},
			{"CSeq", fmt.Sprintf("%d %s", cseq, method)},
			{"Contact", c.contact()},
			{"User-Agent", "siptest"},
		},
	}
}

func (c *Call) logf(format string, args ...any) {
	if c.cfg.Logf != nil {
		c.cfg.Logf(format, args...)
	}
}

func (c *Call) send(m *Message) {
	s := m.String()
	c.logf("siptest >>> %s", s)
	c.write([]byte(s), c.server)
}

// transaction sends a request (retransmitting as UDP requires) and returns its
// final response; provisional responses are recorded.
func (c *Call) transaction(ctx context.Context, req *Message, invite bool) (*Message, error) {
	num, method := req.CSeq()
	c.send(req)
	t1 := 500 * time.Millisecond
	interval := t1
	timer := time.NewTimer(interval)
	defer timer.Stop()
	retransmit := true
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("siptest: no final response to %s: %w", method, ctx.Err())
		case <-timer.C:
			if retransmit && c.tlsConn == nil { // no retransmissions over TLS (RFC 3261 §17.1.1.2)
				c.send(req)
				interval *= 2
				if !invite && interval > 4*time.Second {
					interval = 4 * time.Second
				}
				timer.Reset(interval)
			}
		case r := <-c.respCh:
			n, m := r.CSeq()
			if n != num || m != method {
				continue
			}
			if r.StatusCode < 200 {
				if invite {
					retransmit = false
				}
				c.mu.Lock()
				c.provisional = append(c.provisional, r)
				c.mu.Unlock()
				continue
			}
			return r, nil
		}
	}
}

func (c *Call) readSIP() {
	if c.tlsConn != nil {
		c.readTLS()
		return
	}
	buf := make([]byte, 65535)
	for {
		n, from, err := c.sip.ReadFromUDP(buf)
		if err != nil {
			return
		}
		c.dispatch(buf[:n], from)
	}
}

// dispatch handles one SIP message received from `from`.
func (c *Call) dispatch(b []byte, from *net.UDPAddr) {
	m, err := Parse(b)
	if err != nil {
		c.logf("siptest: unparsable message from %v: %v", from, err)
		return
	}
	c.logf("siptest <<< %s", b)
	if m.IsResponse() {
		num, method := m.CSeq()
		c.mu.Lock()
		acked, ack := c.acked, c.ackMsg
		c.mu.Unlock()
		if method == "INVITE" && num == 1 && m.StatusCode/100 == 2 && acked {
			c.send(ack) // 2xx retransmission: ACK again
			return
		}
		select {
		case c.respCh <- m:
		default:
		}
		return
	}
	c.handleRequest(m, from)
}

func (c *Call) handleRequest(m *Message, from *net.UDPAddr) {
	if m.Method == "ACK" {
		return
	}
	resp := &Message{StatusCode: 200, Reason: "OK"}
	for _, h := range m.Headers {
		switch canon(h.Name) {
		case "via", "from", "to", "call-id", "cseq":
			resp.Headers = append(resp.Headers, h)
		}
	}
	if Tag(m.Get("To")) == "" {
		for i := range resp.Headers {
			if resp.Headers[i].Name == "To" || canon(resp.Headers[i].Name) == "to" {
				resp.Headers[i].Value += ";tag=" + c.fromTag
			}
		}
	}
	switch m.Method {
	case "BYE":
		if m.Get("Call-ID") != c.callID {
			resp.StatusCode, resp.Reason = 481, "Call/Transaction Does Not Exist"
			break
		}
		c.mu.Lock()
		c.byeFromPeer = m
		c.mu.Unlock()
		defer c.end()
	case "INVITE": // re-INVITE: keep our media as is
		c.mu.Lock()
		codec, dtmf := c.codec, c.dtmfPT
		c.mu.Unlock()
		resp.Headers = append(resp.Headers, Header{"Contact", c.contact()},
			Header{"Content-Type", "application/sdp"})
		resp.Body = c.secureSDP(c.sdp(c.cfg.LocalIP, c.RTPPort(), []uint8{codec}, dtmf, c.sessID))
	}
	s := resp.String()
	c.logf("siptest >>> %s", s)
	c.write([]byte(s), from)
}

func (c *Call) end() { c.doneMu.Do(func() { close(c.done) }) }

func (c *Call) readRTP() {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.rtpConn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		b, ok := c.decrypt(buf[:n])
		if !ok {
			continue
		}
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil || p.Version != 2 {
			continue
		}
		c.mu.Lock()
		if c.latched == nil {
			c.latched = from
		}
		c.recvPackets[p.PayloadType]++
		c.recvSSRC[p.SSRC] = true
		if c.acked && p.PayloadType == c.codec {
			c.received = append(c.received, Decode(c.codec, p.Payload)...)
		}
		c.mu.Unlock()
	}
}

// Status is the final status code of the INVITE.
func (c *Call) Status() int { c.mu.Lock(); defer c.mu.Unlock(); return c.final.StatusCode }

// Final is the final response to the INVITE.
func (c *Call) Final() *Message { c.mu.Lock(); defer c.mu.Unlock(); return c.final }

// Provisional are the 1xx responses received, in order.
func (c *Call) Provisional() []*Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Message(nil), c.provisional...)
}

// Codec is the negotiated payload type (PCMU or PCMA).
func (c *Call) Codec() uint8 { c.mu.Lock(); defer c.mu.Unlock(); return c.codec }

// DTMFPayload is the negotiated telephone-event payload type, 0 if none.
func (c *Call) DTMFPayload() uint8 { c.mu.Lock(); defer c.mu.Unlock(); return c.dtmfPT }

// RTPPort is the local RTP port.
func (c *Call) RTPPort() int { return c.rtpConn.LocalAddr().(*net.UDPAddr).Port }

// RemoteRTP is where RTP is sent (the SDP address until a packet arrives, then
// the address packets come from, as symmetric RTP does).
func (c *Call) RemoteRTP() *net.UDPAddr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.remoteRTP == nil || c.remoteRTP.IP.IsUnspecified() {
		if c.latched != nil {
			return c.latched
		}
	}
	return c.remoteRTP
}

// Received returns a copy of the audio received so far, decoded, in arrival order.
func (c *Call) Received() []int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int16(nil), c.received...)
}

// ReceivedPackets returns how many RTP packets arrived per payload type.
func (c *Call) ReceivedPackets() map[uint8]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[uint8]int{}
	for k, v := range c.recvPackets {
		out[k] = v
	}
	return out
}

// Done is closed when the dialog has ended (BYE sent or received, or a failed INVITE).
func (c *Call) Done() <-chan struct{} { return c.done }

// PeerBye returns the BYE the server sent, if any.
func (c *Call) PeerBye() *Message { c.mu.Lock(); defer c.mu.Unlock(); return c.byeFromPeer }

func (c *Call) sendRTP(pt uint8, marker bool, ts uint32, payload []byte) error {
	dst := c.RemoteRTP()
	if dst == nil {
		return errors.New("siptest: no remote RTP address")
	}
	p := rtp.Packet{
		Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker,
			SequenceNumber: c.seq, Timestamp: ts, SSRC: c.ssrc},
		Payload: payload,
	}
	c.seq++
	b, err := p.Marshal()
	if err != nil {
		return err
	}
	if b, err = c.encrypt(b); err != nil {
		return err
	}
	_, err = c.rtpConn.WriteToUDP(b, dst)
	return err
}

// SendAudio sends pcm as 20 ms packets of the negotiated codec, paced from a
// clock, and returns when all are sent (or ctx ends). A partial last frame is
// padded with silence.
func (c *Call) SendAudio(ctx context.Context, pcm []int16) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	codec := c.Codec()
	start := time.Now()
	for i := 0; i*160 < len(pcm); i++ {
		frame := make([]int16, 160)
		copy(frame, pcm[i*160:])
		if d := time.Until(start.Add(time.Duration(i) * 20 * time.Millisecond)); d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-c.closed:
				return errors.New("siptest: call closed")
			case <-time.After(d):
			}
		}
		if err := c.sendRTP(codec, c.marker, c.ts, Encode(codec, frame)); err != nil {
			return err
		}
		c.marker = false
		c.ts += 160
	}
	return nil
}

var dtmfEvents = map[rune]byte{
	'0': 0, '1': 1, '2': 2, '3': 3, '4': 4, '5': 5, '6': 6, '7': 7, '8': 8, '9': 9,
	'*': 10, '#': 11, 'A': 12, 'B': 13, 'C': 14, 'D': 15,
}

// SendDigit sends one RFC 4733 event lasting d (at least 40 ms), with the end
// packet sent three times, then advances the timestamp as if audio had been sent.
func (c *Call) SendDigit(ctx context.Context, digit rune, d time.Duration) error {
	ev, ok := dtmfEvents[digit]
	if !ok {
		return fmt.Errorf("siptest: no RFC 4733 event for %q", digit)
	}
	pt := c.DTMFPayload()
	if pt == 0 {
		return errors.New("siptest: no telephone-event negotiated")
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if d < 40*time.Millisecond {
		d = 40 * time.Millisecond
	}
	steps := int(d / (20 * time.Millisecond))
	start := time.Now()
	ts := c.ts
	payload := func(end bool, dur int) []byte {
		b := []byte{ev, 10, byte(dur >> 8), byte(dur)} // volume 10 dBm0 below
		if end {
			b[1] |= 0x80
		}
		return b
	}
	for i := 1; i <= steps; i++ {
		if w := time.Until(start.Add(time.Duration(i-1) * 20 * time.Millisecond)); w > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(w):
			}
		}
		if err := c.sendRTP(pt, i == 1, ts, payload(false, i*160)); err != nil {
			return err
		}
	}
	for i := 0; i < 3; i++ {
		if err := c.sendRTP(pt, false, ts, payload(true, steps*160)); err != nil {
			return err
		}
	}
	c.ts += uint32(steps * 160)
	return nil
}

// Bye ends the call and returns the response to the BYE. If the server has
// already hung up it returns (nil, nil).
func (c *Call) Bye(ctx context.Context) (*Message, error) {
	select {
	case <-c.done:
		return nil, nil
	default:
	}
	c.mu.Lock()
	c.cseq++
	n := c.cseq
	uri := c.remoteURI
	c.mu.Unlock()
	bye := c.newRequest("BYE", uri, "z9hG4bK"+RandHex(8), n)
	c.setTo(bye, c.toHeader)
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := c.transaction(tctx, bye, false)
	c.end()
	return r, err
}

// Close releases the sockets (it does not send BYE).
func (c *Call) Close() {
	select {
	case <-c.closed:
		return
	default:
	}
	close(c.closed)
	c.end()
	c.closeSIP()
	c.rtpConn.Close()
}
