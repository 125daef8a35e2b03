// Package udpbatch reads and writes many UDP datagrams per system call
// (recvmmsg/sendmmsg on Linux), without allocating per datagram. It
// exists for the media engine's shared RTP port and the load generator:
// at thousands of calls, one system call and one goroutine wake-up per
// 20 ms packet is most of the CPU (docs/performance.md). The SIP server
// uses it only to size its UDP listeners' buffers and read their drops.
//
// On other systems (and 32-bit Linux) it falls back to one datagram per
// call, with the same API.
package udpbatch

import (
	"net"
	"net/netip"
)

// Message is one datagram. For ReadBatch, Buf is where it is read into
// (its length is the most that is read) and N and Addr are set; for
// WriteBatch, Buf is the datagram and Addr where it goes.
type Message struct {
	Buf  []byte
	N    int
	Addr netip.AddrPort
}

// Conn batches the I/O of one UDP socket. One goroutine may call
// ReadBatch while another calls WriteBatch; neither may be called by two
// goroutines at once.
type Conn struct {
	c *net.UDPConn
	// v6 is true for an AF_INET6 socket (IPv4 peers as v4-mapped).
	v6 bool
	sys
}

// New wraps c. c stays owned by the caller: closing it ends a blocked
// ReadBatch with net.ErrClosed.
func New(c *net.UDPConn) (*Conn, error) {
	la, _ := c.LocalAddr().(*net.UDPAddr)
	v6 := la != nil && la.IP.To4() == nil
	b := &Conn{c: c, v6: v6}
	if err := b.init(); err != nil {
		return nil, err
	}
	return b, nil
}

// unmap turns a v4-mapped IPv6 address into IPv4, so that one peer has one
// key whatever the socket's family.
func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
