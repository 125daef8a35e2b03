package media

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
)

// ErrNoPort is returned when no port of the pool could be bound.
var ErrNoPort = errors.New("media: no free RTP port")

// portPool hands out even ports (RFC 3550 §11: RTP on the even port, RTCP
// on the next odd one), chosen at random among the free ones so that a
// third party cannot guess the port of the next call and send to it
// before the caller does.
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
	for port := lo + lo&1; port < hi; port += 2 { // port+1 must fit the range too
		p.free = append(p.free, port)
	}
	if len(p.free) == 0 {
		return nil, fmt.Errorf("media: no even/odd port pair in %d-%d", lo, hi)
	}
	return p, nil
}

// bind takes a random free port whose pair (port, port+1) binds; pairs
// that fail (used by another process) stay in the pool for later calls.
// It returns the RTP socket and the RTCP socket.
func (p *portPool) bind() (rtpConn, rtcpConn *net.UDPConn, port int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	network := "udp"
	if p.ip.To4() != nil {
		network = "udp4"
	}
	var lastErr error
	// A partial Fisher-Yates shuffle: free[:k] holds the ports tried so far.
	for k := range len(p.free) {
		j := k + rand.IntN(len(p.free)-k)
		p.free[k], p.free[j] = p.free[j], p.free[k]
		port := p.free[k]
		a, err := net.ListenUDP(network, &net.UDPAddr{IP: p.ip, Port: port})
		if err != nil {
			lastErr = err
			continue
		}
		b, err := net.ListenUDP(network, &net.UDPAddr{IP: p.ip, Port: port + 1})
		if err != nil {
			a.Close()
			lastErr = err
			continue
		}
		last := len(p.free) - 1
		p.free[k] = p.free[last]
		p.free = p.free[:last]
		return a, b, port, nil
	}
	if lastErr != nil {
		return nil, nil, 0, fmt.Errorf("%w: %v", ErrNoPort, lastErr)
	}
	return nil, nil, 0, ErrNoPort
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
