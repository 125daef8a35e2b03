package media

import (
	"net"
	"net/netip"
	"testing"
)

// BenchmarkMuxLookupShared: the session of a packet when 250 calls share
// one source address (a media relay or vmload), found by SSRC.
func BenchmarkMuxLookupShared(b *testing.B) {
	e, err := NewEngine(EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 32000, PortMax: 32999, Mux: true})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	remote := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 41000}
	const n = 250
	for i := range n {
		s, err := e.NewSession(SessionConfig{Codec: PCMU, Remote: remote, RemoteSSRC: uint32(1000 + i)})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
	}
	from := netip.MustParseAddrPort("127.0.0.1:41000")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ssrc := uint32(1000 + i%n)
		if s := e.mux.lookup(from, ssrc, false); s == nil || s.muxSSRC != ssrc {
			b.Fatal("wrong session")
		}
	}
}
