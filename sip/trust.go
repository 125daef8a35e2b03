package sip

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// ParseTrustedProxies reads sip.trusted_proxies: CIDRs, or single
// addresses meaning one host (docs/sip.md).
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("sip: trusted proxy %q: not a CIDR or an address", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// sourceAddr is the network address the request came from: the transport
// layer's, never a Via header (anyone may write one).
func sourceAddr(req *sip.Request) (netip.Addr, bool) {
	src := req.MessageData.Source()
	if src == "" {
		return netip.Addr{}, false
	}
	host, _, err := net.SplitHostPort(src)
	if err != nil {
		host = src
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// sourceIP is the source address as text ("" when unknown): what nonces
// are bound to and what the auth-failure hook is told.
func sourceIP(req *sip.Request) string {
	if a, ok := sourceAddr(req); ok {
		return a.String()
	}
	return ""
}

// Trusted reports whether req came from a trusted proxy: only then are
// P-Asserted-Identity, Diversion, History-Info and the RFC 4458 target and
// cause believed.
func (s *Server) Trusted(req *sip.Request) bool {
	a, ok := sourceAddr(req)
	if !ok {
		return false
	}
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
