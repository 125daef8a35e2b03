package sip

// SDES (RFC 4568): SRTP master keys carried in the SDP a=crypto attribute
// of an RTP/SAVP stream. The keys are secrets: they are never logged
// (Crypto has no String method that would print them). docs/srtp.md.

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/srtp/v3"

	"github.com/vmserver/voicemail/media"
)

// SRTP modes (media.srtp).
const (
	SRTPOff      = "off"      // RTP/SAVP offers get 488
	SRTPOptional = "optional" // RTP/SAVP answered in kind, RTP/AVP too
	SRTPRequired = "required" // RTP/AVP offers get 488
)

// suites are the crypto suites we support, by RFC 4568 / RFC 7714 name.
var suites = map[string]srtp.ProtectionProfile{
	"AES_CM_128_HMAC_SHA1_80": srtp.ProtectionProfileAes128CmHmacSha1_80,
	"AES_CM_128_HMAC_SHA1_32": srtp.ProtectionProfileAes128CmHmacSha1_32,
	"AEAD_AES_128_GCM":        srtp.ProtectionProfileAeadAes128Gcm,
}

// ourSuite is the one suite we offer when we make the offer (an INVITE
// without SDP in required mode): the one every SDES phone supports.
const ourSuite = "AES_CM_128_HMAC_SHA1_80"

// Errors of a=crypto parsing; errNoCrypto makes a SAVP stream unusable.
var (
	errNoCrypto    = errors.New("RTP/SAVP stream without a supported a=crypto (AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM)")
	errCryptoParse = errors.New("malformed a=crypto")
)

// Crypto is one a=crypto attribute (RFC 4568 §9.1) with a single inline
// key and no session parameters: tag, suite and master key||salt.
type Crypto struct {
	Tag   int
	Suite string
	Key   []byte // master key followed by master salt
}

// profile is the pion profile of the suite; ok is false for a suite we
// do not support.
func (c Crypto) profile() (srtp.ProtectionProfile, bool) {
	p, ok := suites[c.Suite]
	return p, ok
}

// keyLen is the length of master key + salt for a supported suite.
func keyLen(p srtp.ProtectionProfile) int {
	k, _ := p.KeyLen()
	s, _ := p.SaltLen()
	return k + s
}

// ParseCrypto reads the value of an a=crypto attribute:
// "tag suite inline:key||salt[|lifetime][|mki:len] [session-params]".
// Several keys, MKIs and session parameters (UNENCRYPTED_SRTP, KDR…) are
// refused: RFC 4568 §6.3 lets an answerer reject what it does not
// support, and silently ignoring them would change the protection.
func ParseCrypto(v string) (Crypto, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return Crypto{}, fmt.Errorf("%w: want tag, suite and key params", errCryptoParse)
	}
	if len(f) > 3 {
		return Crypto{}, fmt.Errorf("%w: session parameters are not supported", errCryptoParse)
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 || len(f[0]) > 10 {
		return Crypto{}, fmt.Errorf("%w: tag %q", errCryptoParse, f[0])
	}
	c := Crypto{Tag: tag, Suite: f[1]}
	p, ok := c.profile()
	if !ok {
		return Crypto{}, fmt.Errorf("%w: unsupported suite %q", errCryptoParse, f[1])
	}
	kp := f[2]
	if strings.Contains(kp, ";") {
		return Crypto{}, fmt.Errorf("%w: several keys are not supported", errCryptoParse)
	}
	method, rest, ok := strings.Cut(kp, ":")
	if !ok || !strings.EqualFold(method, "inline") {
		return Crypto{}, fmt.Errorf("%w: key method must be inline", errCryptoParse)
	}
	parts := strings.Split(rest, "|")
	if len(parts) > 2 || (len(parts) == 2 && strings.Contains(parts[1], ":")) {
		// A second part with ':' is an MKI (RFC 4568 §6.1); a third part is
		// lifetime plus MKI.
		return Crypto{}, fmt.Errorf("%w: MKI is not supported", errCryptoParse)
	}
	if len(parts) == 2 && !validLifetime(parts[1]) {
		return Crypto{}, fmt.Errorf("%w: lifetime %q", errCryptoParse, parts[1])
	}
	key, err := base64.StdEncoding.DecodeString(parts[0])
	if err != nil {
		// Some phones leave out the padding.
		key, err = base64.RawStdEncoding.DecodeString(parts[0])
	}
	if err != nil {
		return Crypto{}, fmt.Errorf("%w: key is not base64", errCryptoParse)
	}
	if len(key) != keyLen(p) {
		return Crypto{}, fmt.Errorf("%w: %s key||salt is %d bytes, want %d", errCryptoParse, c.Suite, len(key), keyLen(p))
	}
	c.Key = key
	return c, nil
}

// validLifetime is a decimal or "2^n" packet count (RFC 4568 §6.1).
func validLifetime(s string) bool {
	if n, ok := strings.CutPrefix(s, "2^"); ok {
		s = n
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return err == nil && v > 0
}

// Attr is the attribute value, with the key: for our SDP only.
func (c Crypto) Attr() string {
	return fmt.Sprintf("%d %s inline:%s", c.Tag, c.Suite, base64.StdEncoding.EncodeToString(c.Key))
}

// newCrypto makes our key for suite, answering tag.
func newCrypto(tag int, suite string) (Crypto, error) {
	p, ok := suites[suite]
	if !ok {
		return Crypto{}, fmt.Errorf("srtp: unsupported suite %q", suite)
	}
	key := make([]byte, keyLen(p))
	if _, err := rand.Read(key); err != nil {
		return Crypto{}, fmt.Errorf("srtp: key: %w", err)
	}
	return Crypto{Tag: tag, Suite: suite, Key: key}, nil
}

// pickCrypto is the first a=crypto value we support, in the offerer's
// order (RFC 4568 §7.1.1: the offerer lists its preference first).
func pickCrypto(values []string) (Crypto, bool) {
	for _, v := range values {
		if c, err := ParseCrypto(v); err == nil {
			return c, true
		}
	}
	return Crypto{}, false
}

// isSAVP reports whether a transport protocol is secure RTP.
func isSAVP(protos []string) bool {
	p := strings.ToUpper(strings.Join(protos, "/"))
	return p == "RTP/SAVP" || p == "RTP/SAVPF"
}

// srtpConfig is what media needs: their key decrypts, ours encrypts.
func srtpConfig(remote, local Crypto) *media.SRTPConfig {
	p, _ := remote.profile()
	return &media.SRTPConfig{Profile: p, LocalKey: local.Key, RemoteKey: remote.Key}
}

// checkSRTP applies media.srtp to an offer arriving on transport: a SAVP
// offer in off mode, a plain one in required mode, and a SAVP offer over
// a transport other than TLS (its keys crossed the network in clear)
// unless allowInsecure, are refused with 488.
func checkSRTP(o *Offer, mode string, transport string, allowInsecure bool) error {
	if o == nil {
		return nil
	}
	switch {
	case o.Secure && mode == SRTPOff:
		return Refuse(ErrNotAcceptableHere, Warning(305, "SRTP is off here: offer RTP/AVP"))
	case !o.Secure && mode == SRTPRequired:
		return Refuse(ErrNotAcceptableHere, Warning(305, "SRTP is required: offer RTP/SAVP with a=crypto"))
	case o.Secure && !strings.EqualFold(transport, "tls") && !allowInsecure:
		return Refuse(ErrNotAcceptableHere, Warning(305, "SDES keys only over TLS: use sips or transport=tls"))
	}
	return nil
}

// srtpPolicy applies media.srtp to an INVITE's offer and returns the
// stream to answer: the first audio stream, or the offer's stream of the
// other kind (RTP/AVP beside RTP/SAVP, RFC 5939 §3.7 best-effort style)
// when only that one is acceptable. Offer nil: the INVITE had no SDP and we
// make the offer; in required mode it is RTP/SAVP with our key, which
// needs TLS as well.
func (s *Server) srtpPolicy(o *Offer, req *sip.Request) (*Offer, error) {
	if o == nil {
		if s.cfg.SRTP == SRTPRequired && !strings.EqualFold(req.Transport(), "tls") && !s.cfg.SRTPAllowInsecure {
			return nil, Refuse(ErrNotAcceptableHere, Warning(305, "SRTP is required and SDES keys go only over TLS"))
		}
		return nil, nil
	}
	err := checkSRTP(o, s.cfg.SRTP, req.Transport(), s.cfg.SRTPAllowInsecure)
	if err != nil && o.other != nil && checkSRTP(o.other, s.cfg.SRTP, req.Transport(), s.cfg.SRTPAllowInsecure) == nil {
		return o.other, nil
	}
	return o, err
}

// checkReoffer refuses a re-INVITE offer that media.srtp refuses, or one
// that would fall back to plain RTP in a call that is encrypted.
func (d *Dialog) checkReoffer(o *Offer, req *sip.Request) (*Offer, error) {
	if d.secure() && !o.Secure && o.other != nil {
		o = o.other
	}
	o, err := d.s.srtpPolicy(o, req)
	if err != nil {
		return nil, err
	}
	if d.secure() && !o.Secure {
		return nil, Refuse(ErrNotAcceptableHere, Warning(305, "this call is SRTP: offer RTP/SAVP"))
	}
	return o, nil
}

// secure reports whether the call negotiated SRTP.
func (d *Dialog) secure() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.crypto != nil
}

// srtpFor returns the media keys for an offer (nil for plain RTP): our
// key is made for the offer's suite, and kept across re-INVITEs of the
// same suite.
func (d *Dialog) srtpFor(o *Offer) (*media.SRTPConfig, error) {
	if o == nil || !o.Secure || o.Crypto == nil {
		return nil, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.crypto == nil || d.crypto.Suite != o.Crypto.Suite:
		c, err := newCrypto(o.Crypto.Tag, o.Crypto.Suite)
		if err != nil {
			return nil, err
		}
		d.crypto = &c
	case d.crypto.Tag != o.Crypto.Tag:
		c := *d.crypto
		c.Tag = o.Crypto.Tag
		d.crypto = &c
	}
	return srtpConfig(*o.Crypto, *d.crypto), nil
}

// offerCrypto makes our key for an offer we send (INVITE without SDP in
// required mode).
func (d *Dialog) offerCrypto() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.crypto != nil {
		return nil
	}
	c, err := newCrypto(1, ourSuite)
	if err != nil {
		return err
	}
	d.crypto = &c
	return nil
}

// checkAnswer refuses an answer (in an ACK) to our offer that does not
// match it: plain RTP to our RTP/SAVP offer, or another suite than ours.
func (d *Dialog) checkAnswer(o *Offer) error {
	d.mu.Lock()
	ours := d.crypto
	d.mu.Unlock()
	switch {
	case ours == nil && o.Secure:
		return errors.New("answer is RTP/SAVP to an RTP/AVP offer")
	case ours != nil && (!o.Secure || o.Crypto == nil):
		return errors.New("answer is RTP/AVP to an RTP/SAVP offer")
	case ours != nil && (o.Crypto.Suite != ours.Suite || o.Crypto.Tag != ours.Tag):
		return errors.New("answer picks a crypto suite we did not offer")
	}
	return nil
}

// srtpSuite names the negotiated suite for logs ("" = plain RTP); never
// the key.
func (d *Dialog) srtpSuite() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.crypto == nil {
		return ""
	}
	return d.crypto.Suite
}

// inlineKey matches the key of an a=crypto inline parameter.
var inlineKey = regexp.MustCompile(`(?i)(inline:)[A-Za-z0-9+/=]+`)

// redactKeys hides SDES keys in text bound for a log (a malformed
// message is logged with its bytes).
func redactKeys(s string) string {
	if !strings.Contains(strings.ToLower(s), "inline:") {
		return s
	}
	return inlineKey.ReplaceAllString(s, "${1}[redacted]")
}
