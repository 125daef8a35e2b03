package media

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

// ErrNoPort is returned when no port of the pool could be bound.
var ErrNoPort = errors.New("media: no free RTP port")

// portPool hands out even ports (RFC 3550 §11: RTP on even, RTCP on the
// next odd port) in FIFO order, so a port freed by a call that just ended
// is reused last and late packets of that call find nobody.
type portPool struct {
	mu   sync.Mutex
	ip   net.IP
	free []int
}

func newPortPool(ip net.IP, lo, hi int) (*portPool, error) {
	if lo <= 0 || hi > 65535 || lo > hi {
		return nil, fmt.Errorf("media: bad RTP port range %d-%d", lo, hi)
	}
	p := &portPool{ip: ip}
	for port := lo + lo&1; port <= hi; port += 2 {
		p.free = append(p.free, port)
	}
	if len(p.free) == 0 {
		return nil, fmt.Errorf("media: no even port in %d-%d", lo, hi)
	}
	return p, nil
}

// bind takes free ports until one binds; ports that fail to bind (used by
// another process) go to the back of the queue.
func (p *portPool) bind() (*net.UDPConn, int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	network := "udp"
	if p.ip.To4() != nil {
		network = "udp4"
	}
	var lastErr error
	for range len(p.free) {
		port := p.free[0]
		p.free = p.free[1:]
		conn, err := net.ListenUDP(network, &net.UDPAddr{IP: p.ip, Port: port})
		if err == nil {
			return conn, port, nil
		}
		lastErr = err
		p.free = append(p.free, port)
	}
	if lastErr != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrNoPort, lastErr)
	}
	return nil, 0, ErrNoPort
}

func (p *portPool) release(port int) {
	p.mu.Lock()
	p.free = append(p.free, port)
	p.mu.Unlock()
}

func (p *portPool) available() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}
