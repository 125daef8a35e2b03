package media

// SRTP and SRTCP (RFC 3711) on github.com/pion/srtp/v3. The keys come
// from signalling (SDES, package sip); media only encrypts and decrypts.
// Each pion Context is used by one goroutine or under one lock, and every
// per-packet call writes into a buffer the session owns, so the packet
// path does not allocate.

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// srtpReplayWindow is the replay window of received packets (RFC 3711
// §3.3.2: at least 64).
const srtpReplayWindow = 128

// srtpOverhead is the most a packet grows when encrypted: a 16-byte GCM
// tag or a 10-byte HMAC tag, plus 4 bytes of SRTCP index.
const srtpOverhead = 16 + 4

// SRTPConfig are the master keys of one SRTP session: ours encrypts what
// we send, the caller's decrypts what we receive. Each is the master key
// followed by the master salt, as SDES carries them (RFC 4568 §6.1).
type SRTPConfig struct {
	Profile   srtp.ProtectionProfile
	LocalKey  []byte
	RemoteKey []byte
}

// equal reports whether two configurations hold the same keys.
func (c *SRTPConfig) equal(o *SRTPConfig) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.Profile == o.Profile && bytes.Equal(c.LocalKey, o.LocalKey) && bytes.Equal(c.RemoteKey, o.RemoteKey)
}

// srtpState holds the contexts of one key set. txRTP is used under the
// session's txMu, txRTCP under rtcpMu, rxRTP by the RTP receive goroutine
// only (RTP and multiplexed RTCP), rxRTCP by the RTCP goroutine only.
type srtpState struct {
	cfg    *SRTPConfig
	txRTP  *srtp.Context
	rtcpMu *sync.Mutex // shared with txRTCP when a re-key keeps it
	txRTCP *srtp.Context
	rxRTP  *srtp.Context
	rxRTCP *srtp.Context
	b      srtpBufs
}

func newSRTPState(c *SRTPConfig) (*srtpState, error) {
	if c == nil {
		return nil, nil
	}
	split := func(k []byte) ([]byte, []byte, error) {
		kl, err := c.Profile.KeyLen()
		if err != nil {
			return nil, nil, fmt.Errorf("media: srtp profile: %w", err)
		}
		sl, err := c.Profile.SaltLen()
		if err != nil {
			return nil, nil, fmt.Errorf("media: srtp profile: %w", err)
		}
		if len(k) != kl+sl {
			return nil, nil, fmt.Errorf("media: srtp key||salt is %d bytes, want %d", len(k), kl+sl)
		}
		return k[:kl], k[kl:], nil
	}
	lk, ls, err := split(c.LocalKey)
	if err != nil {
		return nil, err
	}
	rk, rs, err := split(c.RemoteKey)
	if err != nil {
		return nil, err
	}
	st := &srtpState{cfg: c, rtcpMu: &sync.Mutex{}}
	mk := func(k, s []byte, rx bool) (*srtp.Context, error) {
		var opts []srtp.ContextOption
		if rx {
			opts = append(opts, srtp.SRTPReplayProtection(srtpReplayWindow), srtp.SRTCPReplayProtection(srtpReplayWindow))
		}
		ctx, err := srtp.CreateContext(k, s, c.Profile, opts...)
		if err != nil {
			return nil, fmt.Errorf("media: srtp context: %w", err)
		}
		return ctx, nil
	}
	var errs [4]error
	st.txRTP, errs[0] = mk(lk, ls, false)
	st.txRTCP, errs[1] = mk(lk, ls, false)
	st.rxRTP, errs[2] = mk(rk, rs, true)
	st.rxRTCP, errs[3] = mk(rk, rs, true)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return st, nil
}

// srtpBufs are the buffers of one key set, one per user of a context.
type srtpBufs struct {
	rxHdr   rtp.Header // RTP receive goroutine
	rxPlain [maxDatagram + srtpOverhead]byte
	rtcpHdr rtcp.Header // RTCP receive goroutine
	rtcpIn  [2048]byte
	muxHdr  rtcp.Header // RTP goroutine, multiplexed RTCP
	muxIn   [2048]byte
	txHdr   rtp.Header // under txMu
	txOut   [rtpHeaderLen + MaxPayload + srtpOverhead]byte
}

// decryptRTP returns the plain RTP packet of b, in a buffer valid until
// the next call; b itself when SRTP is off. Called by the RTP receive
// goroutine.
func (s *Session) decryptRTP(b []byte) ([]byte, bool) {
	st := s.srtp.Load()
	if st == nil {
		return b, true
	}
	out, err := st.rxRTP.DecryptRTP(st.b.rxPlain[:0], b, &st.b.rxHdr)
	if err != nil {
		s.srtpFailed()
		return nil, false
	}
	return out, true
}

// decryptRTCP is decryptRTP for SRTCP; viaRTP says which goroutine calls.
func (s *Session) decryptRTCP(b []byte, viaRTP bool) ([]byte, bool) {
	st := s.srtp.Load()
	if st == nil {
		return b, true
	}
	ctx, dst, hdr := st.rxRTCP, st.b.rtcpIn[:0], &st.b.rtcpHdr
	if viaRTP {
		ctx, dst, hdr = st.rxRTP, st.b.muxIn[:0], &st.b.muxHdr
	}
	out, err := ctx.DecryptRTCP(dst, b, hdr)
	if err != nil {
		s.srtpFailed()
		return nil, false
	}
	return out, true
}

// srtpFailed counts a packet that failed authentication (a wrong key, an
// injector, a replay) and logs the first per call, without any key.
func (s *Session) srtpFailed() {
	if s.srtpFails.Add(1) == 1 {
		s.log.Warn("srtp: packet failed authentication or replay check; dropped", "rtp_port", s.port)
	}
}

// encryptRTP returns b encrypted when SRTP is on, in a buffer valid until
// the next call. Called with txMu.
func (s *Session) encryptRTP(b []byte) ([]byte, bool) {
	st := s.srtp.Load()
	if st == nil {
		return b, true
	}
	out, err := st.txRTP.EncryptRTP(st.b.txOut[:0], b, &st.b.txHdr)
	if err != nil {
		return nil, false
	}
	return out, true
}

// encryptRTCP returns a compound RTCP packet encrypted when SRTP is on.
// RTCP is sent every few seconds: it may allocate.
func (s *Session) encryptRTCP(b []byte) ([]byte, bool) {
	st := s.srtp.Load()
	if st == nil {
		return b, true
	}
	st.rtcpMu.Lock()
	defer st.rtcpMu.Unlock()
	out, err := st.txRTCP.EncryptRTCP(nil, b, nil)
	if err != nil {
		s.log.Warn("srtcp: report not encrypted", "rtp_port", s.port, "err", err)
		return nil, false
	}
	return out, true
}

// setSRTP applies new keys from a re-INVITE; the same keys again keep the
// current contexts (and their replay and rollover state).
func (s *Session) setSRTP(c *SRTPConfig) error {
	cur := s.srtp.Load()
	if cur == nil && c == nil {
		return nil
	}
	if cur != nil && cur.cfg.equal(c) {
		return nil
	}
	if c == nil {
		// Falling back to plain RTP inside a call would leak the rest of it;
		// signalling refuses that before it gets here.
		return errors.New("media: cannot turn SRTP off during a call")
	}
	st, err := newSRTPState(c)
	if err != nil {
		return err
	}
	if cur != nil && cur.cfg.Profile == c.Profile {
		// A side whose key did not change keeps its contexts: a fresh one
		// would restart the rollover counter under the same key and
		// encrypt a second time with keystream already used (RFC 3711
		// §9.1), or forget the replay window.
		if bytes.Equal(cur.cfg.LocalKey, c.LocalKey) {
			st.txRTP, st.txRTCP, st.rtcpMu = cur.txRTP, cur.txRTCP, cur.rtcpMu
		}
		if bytes.Equal(cur.cfg.RemoteKey, c.RemoteKey) {
			st.rxRTP, st.rxRTCP = cur.rxRTP, cur.rxRTCP
		}
	}
	s.txMu.Lock()
	s.srtp.Store(st)
	s.txMu.Unlock()
	return nil
}
