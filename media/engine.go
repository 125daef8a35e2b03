package media

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ErrClosed is returned by an Engine after Close.
var ErrClosed = errors.New("media: engine closed")

// Default RTP port range when EngineConfig leaves both bounds zero.
const (
	DefaultPortMin = 10000
	DefaultPortMax = 20000
)

// EngineConfig configures an Engine.
type EngineConfig struct {
	IP               net.IP // address to bind RTP sockets on; nil = all
	PortMin, PortMax int    // RTP on even ports, RTCP on the next, in [PortMin, PortMax]; 0,0 = 10000-20000
	// Mux puts every session on one shared RTP port (PortMin, rounded up
	// to even) and RTCP port (the next), read and written many datagrams
	// per system call (media.rtp_mux, docs/performance.md).
	Mux    bool
	Logger *slog.Logger
}

// Engine owns the RTP port pool and the single pacing clock shared by the
// players of all sessions.
type Engine struct {
	log   *slog.Logger
	ports *portPool
	mux   *mux // nil = a port pair per session
	clock *clock
	// rtcpMean is the mean RTCP report interval of new sessions
	// (rtcpInterval; tests shorten it).
	rtcpMean time.Duration

	mu       sync.Mutex
	closed   bool
	sessions map[*Session]struct{}
}

// NewEngine validates cfg and starts the pacing clock.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if cfg.PortMin == 0 && cfg.PortMax == 0 {
		cfg.PortMin, cfg.PortMax = DefaultPortMin, DefaultPortMax
	}
	ports, err := newPortPool(cfg.IP, cfg.PortMin, cfg.PortMax)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	e := &Engine{
		log:      log,
		ports:    ports,
		rtcpMean: rtcpInterval,
		sessions: map[*Session]struct{}{},
	}
	var flush func()
	if cfg.Mux {
		if e.mux, err = newMux(cfg.IP, cfg.PortMin, log); err != nil {
			return nil, err
		}
		flush = e.mux.flush
	}
	e.clock = newClock(flush)
	return e, nil
}

// NewSession binds a random even port and the next one (RTP, RTCP) from
// the pool and starts the session's receive goroutines and its player on
// the shared clock; with Mux, the session joins the shared port instead.
func (e *Engine) NewSession(cfg SessionConfig) (*Session, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	st, err := newSRTPState(cfg.SRTP)
	if err != nil {
		return nil, err
	}
	var conn, rtcpConn *net.UDPConn
	var port int
	if e.mux != nil {
		conn, rtcpConn, port = e.mux.conn, e.mux.rtcpConn, e.mux.port
	} else if conn, rtcpConn, port, err = e.ports.bind(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = e.log
	}
	s := newSession(e, conn, rtcpConn, port, cfg, st)
	e.sessions[s] = struct{}{}
	e.clock.add(s)
	return s, nil
}

// FreePorts returns how many ports the pool holds (for tests and metrics).
func (e *Engine) FreePorts() int { return e.ports.available() }

// Lateness is how late, on average over the last ~160 ms, the shared clock
// finishes sending each tick's frames. A few hundred microseconds when
// idle; tens of milliseconds mean the process cannot keep its players on
// time and should take no more calls.
func (e *Engine) Lateness() time.Duration { return e.clock.lateness() }

// release is called by Session.Close.
func (e *Engine) release(s *Session) {
	e.mu.Lock()
	delete(e.sessions, s)
	e.mu.Unlock()
	if e.mux == nil {
		e.ports.release(s.port)
	}
}

// Close closes every session and stops the clock.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	live := make([]*Session, 0, len(e.sessions))
	for s := range e.sessions {
		live = append(live, s)
	}
	e.mu.Unlock()
	var errs []error
	for _, s := range live {
		errs = append(errs, s.Close())
	}
	e.clock.close()
	if e.mux != nil {
		errs = append(errs, e.mux.close())
	}
	return errors.Join(errs...)
}
