package siptest

// SIP over TLS and SRTP with SDES keys (RFC 4568) for a Call: the same
// call as over UDP, on one TLS connection and with encrypted media.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/pion/srtp/v3"
)

var srtpSuites = map[string]srtp.ProtectionProfile{
	"AES_CM_128_HMAC_SHA1_80": srtp.ProtectionProfileAes128CmHmacSha1_80,
	"AES_CM_128_HMAC_SHA1_32": srtp.ProtectionProfileAes128CmHmacSha1_32,
	"AEAD_AES_128_GCM":        srtp.ProtectionProfileAeadAes128Gcm,
}

// SRTPStats is what the call's RTP socket saw with SRTP on.
type SRTPStats struct {
	Authentic int // packets that decrypted and authenticated with the server's key
	Failed    int // packets that did not (plain RTP among them)
	Clear     int // authentic packets of 16 payload bytes or more whose payload on the wire equals the plain one
}

type srtpState struct {
	suite   string
	profile srtp.ProtectionProfile
	local   []byte // our key||salt
	remote  []byte // the server's, from its answer

	mu    sync.Mutex
	tx    *srtp.Context
	rx    *srtp.Context
	stats SRTPStats
	// early holds packets that arrived before the answer told the key
	// (the server may send as soon as it has our address); they are
	// checked when the key is known.
	early [][]byte
}

func (c *Call) dialSIP(ctx context.Context, ip net.IP) error {
	if c.cfg.TLS == nil {
		var err error
		c.sip, err = net.ListenUDP("udp", &net.UDPAddr{IP: ip})
		return err
	}
	d := tls.Dialer{NetDialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}, Config: c.cfg.TLS}
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Server)
	if err != nil {
		return fmt.Errorf("siptest: tls: %w", err)
	}
	c.tlsConn = conn.(*tls.Conn)
	return nil
}

func (c *Call) closeSIP() {
	if c.tlsConn != nil {
		c.tlsConn.Close()
		return
	}
	c.sip.Close()
}

func (c *Call) viaTransport() string {
	if c.tlsConn != nil {
		return "TLS"
	}
	return "UDP"
}

func (c *Call) sipPort() int {
	if c.tlsConn != nil {
		return c.tlsConn.LocalAddr().(*net.TCPAddr).Port
	}
	return c.sip.LocalAddr().(*net.UDPAddr).Port
}

func (c *Call) contact() string {
	if c.tlsConn != nil {
		return fmt.Sprintf("<sip:siptest@%s:%d;transport=tls>", c.cfg.LocalIP, c.sipPort())
	}
	return fmt.Sprintf("<sip:siptest@%s:%d>", c.cfg.LocalIP, c.sipPort())
}

// write sends one message: over the TLS connection, or to `to` over UDP.
func (c *Call) write(b []byte, to *net.UDPAddr) {
	if c.tlsConn != nil {
		c.sendMuTLS.Lock()
		_, _ = c.tlsConn.Write(b)
		c.sendMuTLS.Unlock()
		return
	}
	_, _ = c.sip.WriteToUDP(b, to)
}

// readTLS reads messages framed by Content-Length (RFC 3261 §18.3) from
// the TLS connection; CRLF keep-alives are skipped.
func (c *Call) readTLS() {
	r := bufio.NewReader(c.tlsConn)
	from := &net.UDPAddr{IP: c.server.IP, Port: c.server.Port}
	for {
		var head bytes.Buffer
		length := 0
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.TrimSpace(line) == "" {
				if head.Len() == 0 {
					continue // keep-alive
				}
				head.WriteString(line)
				break
			}
			head.WriteString(line)
			name, val, ok := strings.Cut(line, ":")
			if n := strings.ToLower(strings.TrimSpace(name)); ok && (n == "content-length" || n == "l") {
				length, _ = strconv.Atoi(strings.TrimSpace(val))
			}
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		c.dispatch(append(head.Bytes(), body...), from)
	}
}

func (c *Call) newSRTP() error {
	if c.cfg.SRTP == "" {
		return nil
	}
	p, ok := srtpSuites[c.cfg.SRTP]
	if !ok {
		return fmt.Errorf("siptest: unsupported SRTP suite %q", c.cfg.SRTP)
	}
	kl, _ := p.KeyLen()
	sl, _ := p.SaltLen()
	st := &srtpState{suite: c.cfg.SRTP, profile: p, local: make([]byte, kl+sl)}
	_, _ = rand.Read(st.local)
	tx, err := srtp.CreateContext(st.local[:kl], st.local[kl:], p)
	if err != nil {
		return err
	}
	st.tx = tx
	c.srtp = st
	return nil
}

// secureSDP turns our plain SDP into RTP/SAVP with our key, with SRTP on.
func (c *Call) secureSDP(b []byte) []byte {
	if c.srtp == nil {
		return b
	}
	s := strings.Replace(string(b), " RTP/AVP ", " RTP/SAVP ", 1)
	s += fmt.Sprintf("a=crypto:1 %s inline:%s\r\n", c.srtp.suite, base64.StdEncoding.EncodeToString(c.srtp.local))
	return []byte(s)
}

// srtpAnswer takes the server's key from its SDP (answer or offer).
func (c *Call) srtpAnswer(body []byte) error {
	if c.srtp == nil {
		if bytes.Contains(body, []byte("RTP/SAVP")) {
			return errors.New("siptest: the server answered RTP/SAVP to RTP/AVP")
		}
		return nil
	}
	if !bytes.Contains(body, []byte(" RTP/SAVP ")) {
		return errors.New("siptest: the server answered SRTP with plain RTP/AVP")
	}
	for _, line := range strings.Split(string(body), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=crypto:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 3 || f[1] != c.srtp.suite {
			return fmt.Errorf("siptest: answer's a=crypto %q is not our suite", v)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(f[2], "inline:"))
		kl, _ := c.srtp.profile.KeyLen()
		sl, _ := c.srtp.profile.SaltLen()
		if err != nil || len(key) != kl+sl {
			return fmt.Errorf("siptest: answer's key: %v, %d bytes", err, len(key))
		}
		rx, err := srtp.CreateContext(key[:kl], key[kl:], c.srtp.profile, srtp.SRTPReplayProtection(128))
		if err != nil {
			return err
		}
		c.srtp.mu.Lock()
		c.srtp.remote, c.srtp.rx = key, rx
		for _, b := range c.srtp.early {
			c.srtp.check(b)
		}
		c.srtp.early = nil
		c.srtp.mu.Unlock()
		return nil
	}
	return errors.New("siptest: RTP/SAVP answer without a=crypto")
}

// decrypt returns the plain packet of an SRTP one (b itself without SRTP);
// false for a packet that does not authenticate or is RTCP.
func (c *Call) decrypt(b []byte) ([]byte, bool) {
	if c.srtp == nil {
		return b, true
	}
	if len(b) >= 2 && b[1] >= 192 && b[1] <= 223 {
		return nil, false // SRTCP on a multiplexed port
	}
	st := c.srtp
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.rx == nil {
		if len(st.early) < 100 {
			st.early = append(st.early, bytes.Clone(b))
		}
		return nil, false
	}
	return st.check(b)
}

// check decrypts one packet and counts it. Called with mu.
func (st *srtpState) check(b []byte) ([]byte, bool) {
	out, err := st.rx.DecryptRTP(nil, b, nil)
	if err != nil {
		st.stats.Failed++
		return nil, false
	}
	st.stats.Authentic++
	// The payload starts after the 12-byte header in both (the server
	// sends no CSRC nor extension). Only audio-sized payloads count: a
	// 1-byte comfort noise payload matches its ciphertext once in 256.
	if len(out) >= 12+16 && len(b) >= len(out) && bytes.Equal(b[12:len(out)], out[12:]) {
		st.stats.Clear++
	}
	return out, true
}

// encrypt returns b as SRTP with SRTP on.
func (c *Call) encrypt(b []byte) ([]byte, error) {
	if c.srtp == nil {
		return b, nil
	}
	c.srtp.mu.Lock()
	defer c.srtp.mu.Unlock()
	return c.srtp.tx.EncryptRTP(nil, b, nil)
}

// SRTPStats returns what the RTP socket saw so far (zero without SRTP).
func (c *Call) SRTPStats() SRTPStats {
	if c.srtp == nil {
		return SRTPStats{}
	}
	c.srtp.mu.Lock()
	defer c.srtp.mu.Unlock()
	return c.srtp.stats
}
