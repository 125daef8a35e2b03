//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || loong64 || s390x || mips64 || mips64le)

package udpbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr on 64-bit Linux (the build tag): msghdr,
// the datagram's length, padding to 8 bytes.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// side is the preallocated state of one direction: headers, I/O vectors
// and socket addresses, grown to the largest batch seen and reused.
type side struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for sockaddr_in too
	// The syscall's arguments and results, so that fn (created once) needs
	// no closure allocation per call.
	count int
	done  int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func (s *side) grow(n int) {
	if n <= len(s.hdrs) {
		return
	}
	s.hdrs = make([]mmsghdr, n)
	s.iovs = make([]unix.Iovec, n)
	s.names = make([]unix.RawSockaddrInet6, n)
	for i := range s.hdrs {
		s.hdrs[i].hdr.Iov = &s.iovs[i]
		s.hdrs[i].hdr.SetIovlen(1)
		s.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&s.names[i]))
	}
}

type sys struct {
	rc    syscall.RawConn
	rd    side
	wr    side
	rdErr bool
}

func (c *Conn) init() error {
	rc, err := c.c.SyscallConn()
	if err != nil {
		return fmt.Errorf("udpbatch: %w", err)
	}
	c.rc = rc
	// Raw system calls: with MSG_DONTWAIT they never block (the poller
	// waits for us), so telling the scheduler about each would only cost
	// a hand-off of the processor per batch.
	c.rd.fn = func(fd uintptr) bool {
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.rd.hdrs[0])),
			uintptr(c.rd.count), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false // wait for the poller
		}
		c.rd.done, c.rd.errno = int(r), e
		return true
	}
	c.wr.fn = func(fd uintptr) bool {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&c.wr.hdrs[0])),
			uintptr(c.wr.count), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false
		}
		c.wr.done, c.wr.errno = int(r), e
		return true
	}
	return nil
}

// ReadBatch waits for at least one datagram and reads up to len(ms) of
// them with one system call. It returns how many it read.
func (c *Conn) ReadBatch(ms []Message) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	s := &c.rd
	s.grow(len(ms))
	for i := range ms {
		h := &s.hdrs[i]
		buf := ms[i].Buf
		if len(buf) == 0 {
			return 0, errors.New("udpbatch: empty read buffer")
		}
		s.iovs[i].Base = &buf[0]
		s.iovs[i].SetLen(len(buf))
		h.hdr.Namelen = uint32(unsafe.Sizeof(s.names[i]))
		h.hdr.Flags = 0
		h.n = 0
	}
	s.count, s.done, s.errno = len(ms), 0, 0
	if err := c.rc.Read(s.fn); err != nil {
		return 0, err
	}
	if s.errno != 0 {
		return 0, &net.OpError{Op: "recvmmsg", Net: "udp", Err: s.errno}
	}
	for i := range s.done {
		ms[i].N = int(s.hdrs[i].n)
		ms[i].Addr = decode(&s.names[i])
	}
	return s.done, nil
}

// WriteBatch sends every message, with as few system calls as the kernel
// allows. A datagram the kernel refuses (e.g. no route) is skipped; the
// first such error is returned after the rest went out. It returns how
// many were sent.
func (c *Conn) WriteBatch(ms []Message) (int, error) {
	s := &c.wr
	s.grow(min(len(ms), maxWrite))
	sent := 0
	var first error
	for len(ms) > 0 {
		n := min(len(ms), maxWrite)
		for i := range n {
			h := &s.hdrs[i]
			buf := ms[i].Buf
			if len(buf) == 0 {
				s.iovs[i].Base = nil
			} else {
				s.iovs[i].Base = &buf[0]
			}
			s.iovs[i].SetLen(len(buf))
			h.hdr.Namelen = encode(&s.names[i], ms[i].Addr, c.v6)
		}
		s.count, s.done, s.errno = n, 0, 0
		if err := c.rc.Write(s.fn); err != nil {
			return sent, err
		}
		switch {
		case s.done > 0:
			sent += s.done
			ms = ms[s.done:]
		default:
			// The first datagram failed: skip it and go on.
			if first == nil {
				first = &net.OpError{Op: "sendmmsg", Net: "udp", Err: s.errno}
			}
			ms = ms[1:]
		}
	}
	return sent, first
}

// maxWrite is the most datagrams per sendmmsg (the kernel's UIO_MAXIOV).
const maxWrite = 1024

func decode(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return unmap(netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port))
	}
	return netip.AddrPort{}
}

// encode writes a as the socket's family expects and returns its length.
func encode(sa *unix.RawSockaddrInet6, a netip.AddrPort, v6 bool) uint32 {
	port := a.Port()
	pb := (*[2]byte)(unsafe.Pointer(&sa.Port))
	if !v6 {
		if !a.Addr().Unmap().Is4() {
			return 0 // an IPv6 peer on an IPv4 socket: the kernel refuses it
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], port)
		sa4.Addr = a.Addr().Unmap().As4()
		sa4.Zero = [8]uint8{}
		return unix.SizeofSockaddrInet4
	}
	sa.Family = unix.AF_INET6
	binary.BigEndian.PutUint16(pb[:], port)
	sa.Flowinfo = 0
	sa.Addr = a.Addr().As16() // IPv4 becomes ::ffff:a.b.c.d
	sa.Scope_id = 0
	return unix.SizeofSockaddrInet6
}

// SetBuffers asks for n-byte kernel receive and send buffers: beyond
// net.core.rmem_max/wmem_max when the process may (CAP_NET_ADMIN), else
// up to those limits.
func (c *Conn) SetBuffers(n int) {
	_ = c.rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		}
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, n) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, n)
		}
	})
}

// RecvBuffer is the socket's kernel receive buffer as the kernel reports
// it (Linux reports twice what was granted, for its bookkeeping).
func (c *Conn) RecvBuffer() (int, bool) {
	n, ok := 0, false
	_ = c.rc.Control(func(fd uintptr) {
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		n, ok = v, err == nil
	})
	return n, ok
}

// Drops is how many datagrams the kernel dropped for this socket because
// its receive buffer was full (SO_RXQ_OVFL is per message; this reads the
// socket's counter through SO_MEMINFO's drop field).
func (c *Conn) Drops() (uint64, bool) {
	var drops uint32
	ok := false
	_ = c.rc.Control(func(fd uintptr) {
		// SK_MEMINFO_DROPS is index 8 of the u32 array SO_MEMINFO returns.
		var info [9]uint32
		l := uint32(unsafe.Sizeof(info))
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&l)), 0)
		if e == 0 && l >= uint32(unsafe.Sizeof(info)) {
			drops, ok = info[8], true
		}
	})
	return uint64(drops), ok
}
