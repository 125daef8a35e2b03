package sipauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// Nonce errors: a stale nonce is answered with a new challenge and
// stale=true (RFC 7616 §3.3), so the phone retries without asking its user.
var (
	ErrStale    = errors.New("sipauth: stale nonce")
	ErrBadNonce = errors.New("sipauth: invalid nonce")
)

const (
	nonceTSLen  = 8
	nonceRndLen = 8
	nonceMACLen = 16
	nonceLen    = nonceTSLen + nonceRndLen + nonceMACLen
)

// Nonces issues and checks stateless nonces: issue time, random bytes and
// an HMAC over them and the client's address. Any instance holding the same
// key verifies any instance's nonce, with nothing stored.
type Nonces struct {
	key []byte
	ttl time.Duration
}

// DeriveKey turns the shared secret of a cluster into the nonce key, so
// the configured secret is not used directly as an HMAC key elsewhere too.
func DeriveKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("voicemail sip digest nonce v1"))
	return m.Sum(nil)
}

// NewNonces makes nonces valid for ttl under key (DeriveKey).
func NewNonces(key []byte, ttl time.Duration) *Nonces {
	return &Nonces{key: append([]byte(nil), key...), ttl: ttl}
}

func (n *Nonces) mac(body []byte, bind string) []byte {
	m := hmac.New(sha256.New, n.key)
	m.Write(body)
	m.Write([]byte(bind))
	return m.Sum(nil)[:nonceMACLen]
}

// Issue returns a nonce issued at now for the client bind (its address):
// a nonce seen from elsewhere is invalid.
func (n *Nonces) Issue(now time.Time, bind string) string {
	b := make([]byte, nonceLen)
	binary.BigEndian.PutUint64(b, uint64(now.UnixNano()))
	_, _ = rand.Read(b[nonceTSLen : nonceTSLen+nonceRndLen])
	copy(b[nonceTSLen+nonceRndLen:], n.mac(b[:nonceTSLen+nonceRndLen], bind))
	return base64.RawURLEncoding.EncodeToString(b)
}

// Check verifies that nonce was issued by a holder of the key for bind:
// ErrBadNonce when it was not, ErrStale when it is older than the TTL.
func (n *Nonces) Check(nonce string, now time.Time, bind string) error {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != nonceLen {
		return ErrBadNonce
	}
	if subtle.ConstantTimeCompare(b[nonceTSLen+nonceRndLen:], n.mac(b[:nonceTSLen+nonceRndLen], bind)) != 1 {
		return ErrBadNonce
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b)))
	if age := now.Sub(issued); age > n.ttl || age < -time.Minute {
		return ErrStale
	}
	return nil
}
