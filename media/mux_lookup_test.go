package media

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
)

// BenchmarkMuxLookupShared: the session of a packet when many calls share
// a few source addresses (a media relay, or vmload's eight sockets), found
// by address and SSRC; the packets come round-robin as a tick's would.
func BenchmarkMuxLookupShared(b *testing.B) {
	for _, c := range []struct{ calls, addrs int }{{250, 1}, {3000, 8}} {
		b.Run(fmt.Sprintf("calls=%d/addresses=%d", c.calls, c.addrs), func(b *testing.B) {
			e, err := NewEngine(EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 32000, PortMax: 32999, Mux: true})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			from := make([]netip.AddrPort, c.addrs)
			for i := range from {
				from[i] = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(41000+2*i))
			}
			for i := range c.calls {
				remote := net.UDPAddrFromAddrPort(from[i%c.addrs])
				s, err := e.NewSession(SessionConfig{Codec: PCMU, Remote: remote, RemoteSSRC: uint32(1000 + i)})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := i % c.calls
				ssrc := uint32(1000 + k)
				if s := e.mux.lookup(from[k%c.addrs], ssrc, false); s == nil || s.muxSSRC != ssrc {
					b.Fatal("wrong session")
				}
			}
		})
	}
}
