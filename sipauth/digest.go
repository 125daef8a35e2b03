// Package sipauth is SIP digest authentication (RFC 3261 §22, RFC 7616
// with MD5 and SHA-256, qop=auth as RFC 8760 allows for SIP): the HA1 a
// mailbox's secret is stored as, the Authorization header parser, the
// response check and stateless nonces that every instance of a cluster can
// verify. Pure functions: no I/O, no store. See docs/sip.md.
package sipauth

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// Algorithms we offer and accept (RFC 7616 §3.2: the strongest first).
const (
	SHA256 = "SHA-256"
	MD5    = "MD5"
)

// Algorithms is the order in which challenges are offered.
var Algorithms = []string{SHA256, MD5}

func newHash(alg string) (func() hash.Hash, error) {
	switch strings.ToUpper(alg) {
	case SHA256:
		return sha256.New, nil
	case MD5, "":
		// RFC 3261 §22.4: no algorithm parameter means MD5.
		return md5.New, nil
	}
	return nil, fmt.Errorf("sipauth: unsupported algorithm %q", alg)
}

func hexHash(h func() hash.Hash, parts ...string) string {
	d := h()
	d.Write([]byte(strings.Join(parts, ":")))
	return hex.EncodeToString(d.Sum(nil))
}

// HA1 is H(username:realm:secret) (RFC 7616 §3.4.2), what the store keeps
// instead of the secret.
func HA1(alg, username, realm, secret string) (string, error) {
	h, err := newHash(alg)
	if err != nil {
		return "", err
	}
	return hexHash(h, username, realm, secret), nil
}

// Response is the request-digest for ha1 (RFC 7616 §3.4.1; without qop,
// RFC 2069 form as RFC 3261 §22.4 still allows).
func Response(alg, ha1, method, uri, nonce, nc, cnonce, qop string) (string, error) {
	h, err := newHash(alg)
	if err != nil {
		return "", err
	}
	ha2 := hexHash(h, method, uri)
	if qop == "" {
		return hexHash(h, ha1, nonce, ha2), nil
	}
	return hexHash(h, ha1, nonce, nc, cnonce, qop, ha2), nil
}

// Credentials are the parameters of a Digest Authorization header.
type Credentials struct {
	Username, Realm, Nonce, URI, Response string
	Algorithm, CNonce, NC, QOP, Opaque    string
}

// ErrMalformed is returned for an Authorization header that is not a
// usable Digest credential.
var ErrMalformed = errors.New("sipauth: malformed credentials")

// ParseAuthorization parses `Digest k=v, k="v", …` (RFC 7616 §3.4).
// Unknown parameters are ignored; username, realm, nonce, uri and response
// are required, and cnonce and nc when qop is present.
func ParseAuthorization(v string) (Credentials, error) {
	v = strings.TrimSpace(v)
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Digest") {
		return Credentials{}, fmt.Errorf("%w: scheme %q", ErrMalformed, scheme)
	}
	params, err := parseParams(rest)
	if err != nil {
		return Credentials{}, err
	}
	c := Credentials{
		Username: params["username"], Realm: params["realm"], Nonce: params["nonce"],
		URI: params["uri"], Response: strings.ToLower(params["response"]), Algorithm: params["algorithm"],
		CNonce: params["cnonce"], NC: params["nc"], QOP: params["qop"], Opaque: params["opaque"],
	}
	for _, req := range []struct{ name, v string }{{"username", c.Username}, {"realm", c.Realm},
		{"nonce", c.Nonce}, {"uri", c.URI}, {"response", c.Response}} {
		if req.v == "" {
			return Credentials{}, fmt.Errorf("%w: no %s", ErrMalformed, req.name)
		}
	}
	if c.QOP != "" {
		if !strings.EqualFold(c.QOP, "auth") {
			return Credentials{}, fmt.Errorf("%w: qop %q", ErrMalformed, c.QOP)
		}
		if c.CNonce == "" || c.NC == "" {
			return Credentials{}, fmt.Errorf("%w: qop without cnonce or nc", ErrMalformed)
		}
	}
	if _, err := newHash(c.Algorithm); err != nil {
		return Credentials{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return c, nil
}

// parseParams reads a comma-separated list of token=token or
// token="quoted string" (RFC 7616 §3.4; backslash escapes in quotes).
func parseParams(s string) (map[string]string, error) {
	out := map[string]string{}
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',' || s[i] == '\r' || s[i] == '\n') {
			i++
		}
		if i >= len(s) {
			return out, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ',' && s[i] != ' ' && s[i] != '\t' {
			i++
		}
		name := strings.ToLower(s[start:i])
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if name == "" || i >= len(s) || s[i] != '=' {
			return nil, fmt.Errorf("%w: parameter %q without value", ErrMalformed, name)
		}
		i++
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		var val strings.Builder
		if i < len(s) && s[i] == '"' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					val.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == '"' {
					closed = true
					i++
					break
				}
				val.WriteByte(c)
				i++
			}
			if !closed {
				return nil, fmt.Errorf("%w: unterminated quote in %s", ErrMalformed, name)
			}
		} else {
			start := i
			for i < len(s) && s[i] != ',' && s[i] != ' ' && s[i] != '\t' {
				i++
			}
			val.WriteString(s[start:i])
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: duplicate %s", ErrMalformed, name)
		}
		out[name] = val.String()
	}
}

// Verify reports whether c is a correct answer for method with ha1 (the
// stored HA1 of c.Algorithm). The comparison takes the same time whatever
// the response.
func Verify(c Credentials, method, ha1 string) bool {
	want, err := Response(c.Algorithm, ha1, method, c.URI, c.Nonce, c.NC, c.CNonce, strings.ToLower(c.QOP))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(c.Response)) == 1
}

// Challenge is the value of a WWW-Authenticate header (RFC 7616 §3.3).
func Challenge(realm, nonce, alg string, stale bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `Digest realm="%s", nonce="%s", algorithm=%s, qop="auth"`, quote(realm), nonce, alg)
	if stale {
		b.WriteString(", stale=true")
	}
	return b.String()
}

func quote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// Realm is the digest realm of a tenant: the configured one when set, else
// the tenant's first SIP domain, else the tenant's name. The HA1 values are
// computed for it, so the API and the SIP server must agree.
func Realm(configured string, domains []string, tenant string) string {
	if configured != "" {
		return configured
	}
	if len(domains) > 0 && domains[0] != "" {
		return domains[0]
	}
	return tenant
}
