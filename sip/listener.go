package sip

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// connLimits wraps a TCP listener (below TLS, when TLS is on): at most
// maxPer connections per source IP (more are closed at once), and a
// connection on which nothing arrives for idle is closed. sipgo v1.7.2
// offers neither for accepted connections (docs/sip.md).
type connLimits struct {
	net.Listener
	idle    time.Duration // 0 = never
	maxPer  int           // 0 = no cap
	refused prometheus.Counter
	log     *slog.Logger

	mu    sync.Mutex
	perIP map[string]int
}

func limitListener(l net.Listener, idle time.Duration, maxPer int, refused prometheus.Counter, log *slog.Logger) net.Listener {
	if idle <= 0 && maxPer <= 0 {
		return l
	}
	return &connLimits{Listener: l, idle: idle, maxPer: maxPer, refused: refused, log: log, perIP: map[string]int{}}
}

// Accept returns the next connection within the cap; those beyond it are
// closed here, so that sipgo's accept loop goes on.
func (l *connLimits) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := c.RemoteAddr().String()
		if h, _, err := net.SplitHostPort(ip); err == nil {
			ip = h
		}
		l.mu.Lock()
		over := l.maxPer > 0 && l.perIP[ip] >= l.maxPer
		if !over {
			l.perIP[ip]++
		}
		l.mu.Unlock()
		if over {
			l.refused.Inc()
			l.log.Debug("sip: connection refused: too many from this source", "source", ip, "max", l.maxPer)
			_ = c.Close()
			continue
		}
		return &limitedConn{Conn: c, l: l, ip: ip}, nil
	}
}

func (l *connLimits) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}

// limitedConn counts against its source until closed; each Read waits at
// most idle for data.
type limitedConn struct {
	net.Conn
	l    *connLimits
	ip   string
	once sync.Once
}

func (c *limitedConn) Read(b []byte) (int, error) {
	if c.l.idle > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.l.idle))
	}
	return c.Conn.Read(b)
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.release(c.ip) })
	return c.Conn.Close()
}
