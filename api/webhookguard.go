package api

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// WebhookPolicy decides where webhooks may be delivered: public addresses
// only, unless the operator allow-list (webhooks.allow_hosts) names the
// host or a network holding the address. It is checked when a webhook is
// created (every address the name resolves to) and again on every
// connection of a delivery, on the address actually dialled, so a name
// that resolves elsewhere later (DNS rebinding) is still refused.
type WebhookPolicy struct {
	hosts map[string]bool
	nets  []netip.Prefix
	// lookup resolves a host at creation; nil = the system resolver
	// (tests replace it to stay off the network).
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// ParseWebhookAllow reads the allow-list: host names, IP addresses or
// CIDR networks ("hooks.internal", "10.1.2.3", "10.0.0.0/8", "::1/128").
func ParseWebhookAllow(entries []string) (*WebhookPolicy, error) {
	p := &WebhookPolicy{hosts: map[string]bool{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if pr, err := netip.ParsePrefix(e); err == nil {
			p.nets = append(p.nets, pr.Masked())
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil {
			p.nets = append(p.nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		if !validHost(e) || strings.ContainsAny(e, "/[]:") {
			return nil, fmt.Errorf("want host names, addresses or CIDR networks, got %q", e)
		}
		p.hosts[strings.ToLower(strings.TrimSuffix(e, "."))] = true
	}
	return p, nil
}

// special are the IPv4 networks netip has no predicate for: "this
// network", shared address space (CGNAT), IETF protocol assignments,
// benchmarking, reserved and broadcast (RFC 6890).
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"), netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"), netip.MustParsePrefix("64:ff9b:1::/48"),
}

// blockedKind names why an address is not public, or "" when it is.
func blockedKind(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	case a.IsUnspecified():
		return "unspecified"
	}
	for _, p := range special {
		if p.Contains(a) {
			return "reserved"
		}
	}
	return ""
}

func (p *WebhookPolicy) hostAllowed(host string) bool {
	return p != nil && p.hosts[strings.ToLower(strings.TrimSuffix(host, "."))]
}

// checkAddr refuses a non-public address outside the allowed networks.
func (p *WebhookPolicy) checkAddr(a netip.Addr) error {
	a = a.Unmap()
	kind := blockedKind(a)
	if kind == "" {
		return nil
	}
	if p != nil {
		for _, n := range p.nets {
			if n.Contains(a) {
				return nil
			}
		}
	}
	return fmt.Errorf("webhook destination %s is a %s address (allow it with webhooks.allow_hosts)", a, kind)
}

// checkURL resolves the host of a new webhook's URL: every address must
// pass, or the host be allowed by name.
func (p *WebhookPolicy) checkURL(ctx context.Context, host string) error {
	if p.hostAllowed(host) {
		return nil
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return p.checkAddr(a)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lookup := func(ctx context.Context, host string) ([]netip.Addr, error) {
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	if p != nil && p.lookup != nil {
		lookup = p.lookup
	}
	addrs, err := lookup(ctx, host)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("the host %s cannot be resolved", host)
	}
	for _, a := range addrs {
		if err := p.checkAddr(a); err != nil {
			return err
		}
	}
	return nil
}

// control runs after the socket is made and before it connects: address
// is the IP the dialer chose, whatever the name resolved to earlier.
func (p *WebhookPolicy) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook destination %q: %w", address, err)
	}
	return p.checkAddr(ap.Addr())
}

// Client is the HTTP client for deliveries: no proxy from the
// environment (the check must see the real destination), no redirects
// (a 3xx is a failed delivery), and every connection checked.
func (p *WebhookPolicy) Client(timeout time.Duration) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := &net.Dialer{Timeout: timeout, Control: p.control}
		if host, _, err := net.SplitHostPort(addr); err == nil && p.hostAllowed(host) {
			d.Control = nil
		}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{
		Timeout:       timeout,
		Transport:     &http.Transport{Proxy: nil, DialContext: dial, TLSHandshakeTimeout: timeout, MaxIdleConnsPerHost: 2},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// secretBox encrypts webhook secrets at rest (AES-256-GCM with the key in
// data_dir/webhook_key); sealed values start with sealPrefix.
type secretBox struct{ aead cipher.AEAD }

const sealPrefix = "enc1:"

func newSecretBox(key []byte) (*secretBox, error) {
	if len(key) == 0 {
		// No key configured (tests, embedded use): a key for this process
		// only; serve always passes the one kept in data_dir.
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
	}
	k := sha256.Sum256(key) // any key length gives an AES-256 key
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("webhook key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &secretBox{aead: aead}, nil
}

// seal encrypts a secret; tenant is bound as associated data so a sealed
// secret copied to another tenant's webhook does not open.
func (b *secretBox) seal(tenant, secret string) string {
	nonce := make([]byte, b.aead.NonceSize())
	_, _ = rand.Read(nonce)
	ct := b.aead.Seal(nonce, nonce, []byte(secret), []byte(tenant))
	return sealPrefix + base64.RawStdEncoding.EncodeToString(ct)
}

// open decrypts a sealed secret; a secret stored before encryption (no
// prefix) is returned as it is.
func (b *secretBox) open(tenant, stored string) (string, error) {
	enc, ok := strings.CutPrefix(stored, sealPrefix)
	if !ok {
		return stored, nil
	}
	ct, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil || len(ct) < b.aead.NonceSize() {
		return "", errors.New("webhook secret: damaged")
	}
	n := b.aead.NonceSize()
	pt, err := b.aead.Open(nil, ct[:n], ct[n:], []byte(tenant))
	if err != nil {
		return "", errors.New("webhook secret: cannot decrypt (webhook_key changed?)")
	}
	return string(pt), nil
}
