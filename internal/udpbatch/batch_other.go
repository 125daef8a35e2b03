//go:build !(linux && (amd64 || arm64 || riscv64 || ppc64le || loong64 || s390x || mips64 || mips64le))

package udpbatch

// sys is empty: one datagram per system call.
type sys struct{}

func (c *Conn) init() error { return nil }

// ReadBatch reads one datagram (this system has no recvmmsg).
func (c *Conn) ReadBatch(ms []Message) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	n, from, err := c.c.ReadFromUDPAddrPort(ms[0].Buf)
	if err != nil {
		return 0, err
	}
	ms[0].N, ms[0].Addr = n, unmap(from)
	return 1, nil
}

// WriteBatch sends the messages one by one.
func (c *Conn) WriteBatch(ms []Message) (int, error) {
	sent := 0
	var first error
	for i := range ms {
		if _, err := c.c.WriteToUDPAddrPort(ms[i].Buf, ms[i].Addr); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		sent++
	}
	return sent, first
}

// SetBuffers asks for n-byte kernel receive and send buffers.
func (c *Conn) SetBuffers(n int) {
	_ = c.c.SetReadBuffer(n)
	_ = c.c.SetWriteBuffer(n)
}

// RecvBuffer is not known on this system.
func (c *Conn) RecvBuffer() (int, bool) { return 0, false }

// Drops is not known on this system.
func (c *Conn) Drops() (uint64, bool) { return 0, false }
