package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmserver/voicemail/internal/udpbatch"
)

// muxBatch is how many datagrams one receive system call takes at most.
const muxBatch = 64

// muxSocketBuffer is the kernel buffer asked for the shared RTP socket:
// about a second of 2,000 calls (a small datagram costs the kernel about
// 1 KiB of buffer), so a stall of the reading goroutine loses nothing.
// Above net.core.rmem_max only with CAP_NET_ADMIN (docs/performance.md).
const muxSocketBuffer = 64 << 20

// mux is the shared RTP port (media.rtp_mux, docs/performance.md): every
// session sends and receives on one RTP socket and one RTCP socket.
// Incoming datagrams are read many per system call and handed to their
// session by source address, then by SSRC; outgoing ones are queued
// during a clock tick and sent many per system call at its end. Strict
// RTP still runs per session on what reaches it.
type mux struct {
	log            *slog.Logger
	conn, rtcpConn *net.UDPConn
	rtpB, rtcpB    *udpbatch.Conn
	port           int

	mu     sync.RWMutex
	byAddr map[netip.AddrPort][]*Session // the SDP address and the accepted source of each session
	bySSRC map[uint32]*Session           // the SSRC each session receives (SDP a=ssrc, or the first accepted)

	// The send queue, filled during a clock tick and flushed at its end
	// (qmu is uncontended: the clock goroutine is the only sender; it
	// keeps a stray sender safe).
	qmu  sync.Mutex
	out  []udpbatch.Message
	bufs [][]byte // out[i].Buf's full-capacity buffers, reused
	nOut int

	// Drain markers (drain): a datagram from our own socket that, when
	// the reader sees it, proves every datagram queued before it was
	// handled. waiters is guarded by mu.
	marker   *net.UDPConn
	markerAP netip.AddrPort
	target   netip.AddrPort
	waiters  map[uint64]chan struct{}

	unmatched atomic.Uint64 // datagrams no session claimed
	sendFails atomic.Uint64
	done      chan struct{}
}

func newMux(ip net.IP, port int, log *slog.Logger) (*mux, error) {
	network := "udp"
	if ip.To4() != nil {
		network = "udp4"
	}
	port += port & 1 // RTP on the even port (RFC 3550 §11)
	a, err := net.ListenUDP(network, &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, fmt.Errorf("media: shared RTP port: %w", err)
	}
	b, err := net.ListenUDP(network, &net.UDPAddr{IP: ip, Port: port + 1})
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("media: shared RTCP port: %w", err)
	}
	m := &mux{log: log, conn: a, rtcpConn: b, port: port,
		byAddr: map[netip.AddrPort][]*Session{}, bySSRC: map[uint32]*Session{}, done: make(chan struct{})}
	if m.rtpB, err = udpbatch.New(a); err == nil {
		m.rtcpB, err = udpbatch.New(b)
	}
	if err != nil {
		a.Close()
		b.Close()
		return nil, err
	}
	m.rtpB.SetBuffers(muxSocketBuffer)
	m.rtcpB.SetBuffers(muxSocketBuffer / 8)
	// The marker socket talks to the shared port over the address it is
	// bound to (loopback when bound to all).
	mip := ip
	if mip == nil || mip.IsUnspecified() {
		mip = net.IPv4(127, 0, 0, 1)
	}
	if m.marker, err = net.ListenUDP(network, &net.UDPAddr{IP: mip}); err != nil {
		a.Close()
		b.Close()
		return nil, fmt.Errorf("media: shared RTP port marker socket: %w", err)
	}
	m.markerAP = unmapAP(m.marker.LocalAddr().(*net.UDPAddr).AddrPort())
	m.target = unmapAP(netip.AddrPortFrom(m.markerAP.Addr(), uint16(port)))
	m.waiters = map[uint64]chan struct{}{}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); m.readLoop(m.rtpB, false) }()
	go func() { defer wg.Done(); m.readLoop(m.rtcpB, true) }()
	go func() { wg.Wait(); close(m.done) }()
	return m, nil
}

// close stops the readers; the engine has closed every session first.
func (m *mux) close() error {
	err := errors.Join(m.conn.Close(), m.rtcpConn.Close(), m.marker.Close())
	<-m.done
	return err
}

// readLoop reads a socket in batches until it is closed. It hands each
// datagram to its session on this goroutine: one wake-up per batch, not
// per packet.
func (m *mux) readLoop(b *udpbatch.Conn, rtcpPort bool) {
	ms := make([]udpbatch.Message, muxBatch)
	for i := range ms {
		ms[i].Buf = make([]byte, 2048)
	}
	for {
		n, err := b.ReadBatch(ms)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		now := time.Now()
		for i := range n {
			m.dispatch(ms[i].Buf[:ms[i].N], ms[i].Addr, now, rtcpPort)
		}
		if n == len(ms) {
			// More is waiting: let signalling and the clock run between
			// batches, so that a busy port does not hold the processor
			// for a whole time slice (INVITE→200 under load).
			runtime.Gosched()
		}
	}
}

// dispatch finds the datagram's session and lets it handle it.
func (m *mux) dispatch(b []byte, from netip.AddrPort, now time.Time, rtcpPort bool) {
	if from == m.markerAP {
		m.marked(b)
		return
	}
	var ssrc uint32
	switch {
	case rtcpPort || isRTCP(b):
		if len(b) < 8 {
			m.unmatched.Add(1)
			return
		}
		ssrc = binary.BigEndian.Uint32(b[4:8]) // the sender of the first report
	case len(b) >= rtpHeaderLen:
		ssrc = binary.BigEndian.Uint32(b[8:12])
	default:
		m.unmatched.Add(1)
		return
	}
	s := m.lookup(from, ssrc, rtcpPort)
	if s == nil {
		m.unmatched.Add(1)
		return
	}
	if rtcpPort {
		s.handleRTCP(b, from, now, false)
	} else {
		s.handlePacket(b, from, now)
	}
}

// lookup picks the session of a datagram: the one session at its source
// address (for RTCP without rtcp-mux, the address one port below); of
// several sessions at one address (a media relay or a load generator
// sharing a socket), the one with its SSRC; from an unknown address, the
// session receiving that SSRC (a NAT rebinding mid-call: strict RTP then
// decides whether to learn the new address). Anything else is dropped:
// a packet is never guessed into another caller's recording.
func (m *mux) lookup(from netip.AddrPort, ssrc uint32, rtcpPort bool) *Session {
	m.mu.RLock()
	defer m.mu.RUnlock()
	at := from
	list := m.byAddr[at]
	if len(list) == 0 && rtcpPort && from.Port() > 0 {
		at = netip.AddrPortFrom(from.Addr(), from.Port()-1)
		list = m.byAddr[at]
	}
	if len(list) == 1 {
		return list[0]
	}
	// Many sessions at one address: the SSRC's owner, if it is one of
	// them, without walking the list (a relay may carry hundreds).
	if s := m.bySSRC[ssrc]; s != nil && s.muxSSRC == ssrc && slices.Contains(s.muxAddrs[:s.muxN], at) {
		return s
	}
	for _, s := range list {
		if s.muxSSRC == ssrc && s.muxHaveSSRC {
			return s
		}
	}
	return m.bySSRC[ssrc]
}

// track sets the addresses a session receives from (its SDP address
// and its accepted source; invalid ones are skipped). Called with the
// session's rxMu.
func (m *mux) track(s *Session, sdp, source netip.AddrPort) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.untrackLocked(s)
	for _, a := range [2]netip.AddrPort{sdp, source} {
		if !a.IsValid() || slices.Contains(s.muxAddrs[:s.muxN], a) {
			continue
		}
		s.muxAddrs[s.muxN] = a
		s.muxN++
		m.byAddr[a] = append(m.byAddr[a], s)
	}
}

// bindSSRC records the SSRC a session receives, so that its packets are
// found from a shared or a new address. The first session to claim an
// SSRC keeps it.
func (m *mux) bindSSRC(s *Session, ssrc uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.muxHaveSSRC && m.bySSRC[s.muxSSRC] == s {
		delete(m.bySSRC, s.muxSSRC)
	}
	s.muxSSRC, s.muxHaveSSRC = ssrc, true
	if _, taken := m.bySSRC[ssrc]; !taken {
		m.bySSRC[ssrc] = s
	}
}

// remove forgets a closing session.
func (m *mux) remove(s *Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.untrackLocked(s)
	if s.muxHaveSSRC && m.bySSRC[s.muxSSRC] == s {
		delete(m.bySSRC, s.muxSSRC)
	}
}

func (m *mux) untrackLocked(s *Session) {
	for _, a := range s.muxAddrs[:s.muxN] {
		list := m.byAddr[a]
		for i, t := range list {
			if t == s {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(m.byAddr, a)
		} else {
			m.byAddr[a] = list
		}
	}
	s.muxN = 0
}

// queue copies one outgoing RTP packet into the tick's batch. Called by
// the clock goroutine (Session.send during a tick).
func (m *mux) queue(b []byte, to netip.AddrPort) {
	m.qmu.Lock()
	defer m.qmu.Unlock()
	m.push(to, b[:copy(m.slot(len(b)), b)])
}

// queueFrame builds one G.711 RTP packet of samples (at most
// MaxPayload) straight into the tick's batch (packetizer.build): no
// copy, and no packet buffer kept per call.
func (m *mux) queueFrame(p *packetizer, c Codec, pcm []int16, samples int, marker bool, to netip.AddrPort) {
	m.qmu.Lock()
	defer m.qmu.Unlock()
	m.push(to, p.buildInto(m.slot(rtpHeaderLen+samples), c, pcm, samples, marker))
}

// slot is the buffer of the next queued packet, at least n bytes. Called
// with qmu.
func (m *mux) slot(n int) []byte {
	if m.nOut == len(m.out) {
		m.out = append(m.out, udpbatch.Message{})
		m.bufs = append(m.bufs, make([]byte, 256))
	}
	if n > len(m.bufs[m.nOut]) {
		m.bufs[m.nOut] = make([]byte, n)
	}
	return m.bufs[m.nOut][:n]
}

// push queues the packet built in slot's buffer. Called with qmu.
func (m *mux) push(to netip.AddrPort, b []byte) {
	m.out[m.nOut].Buf = b
	m.out[m.nOut].Addr = to
	m.nOut++
}

// flush sends the tick's batch. Called by the clock goroutine after
// every session ticked.
func (m *mux) flush() {
	m.qmu.Lock()
	defer m.qmu.Unlock()
	if m.nOut == 0 {
		return
	}
	sent, err := m.rtpB.WriteBatch(m.out[:m.nOut])
	if err != nil || sent < m.nOut {
		m.sendFails.Add(uint64(m.nOut - sent))
	}
	m.nOut = 0
}

// SharedPortStats counts what the shared RTP port lost outside any call.
type SharedPortStats struct {
	Unmatched  uint64 // datagrams no session claimed (unknown address and SSRC)
	Dropped    uint64 // datagrams the kernel dropped: the receive buffer was full
	SendFailed uint64 // datagrams a batched send could not send
}

// SharedPortStats returns the shared port's counters; false without Mux.
func (e *Engine) SharedPortStats() (SharedPortStats, bool) {
	m := e.mux
	if m == nil {
		return SharedPortStats{}, false
	}
	st := SharedPortStats{Unmatched: m.unmatched.Load(), SendFailed: m.sendFails.Load()}
	if d, ok := m.rtpB.Drops(); ok {
		st.Dropped += d
	}
	if d, ok := m.rtcpB.Drops(); ok {
		st.Dropped += d
	}
	return st, true
}

// drainWait bounds how long drain waits. The reader is milliseconds
// behind at 2,000 calls; seconds only when the process is starved, and
// then the wait is what keeps the caller's last words (the call is over:
// nobody waits for it but the commit).
const drainWait = 5 * time.Second

// drain returns once every datagram that reached the shared RTP port
// before the call was handled (or after drainWait). A call ending on a
// BYE calls it before it stops recording: the BYE and the caller's last
// RTP packets arrive on different sockets, and under load the RTP reader
// may be behind the signalling by more than the caller's last words.
func (m *mux) drain() {
	id := rand.Uint64()
	ch := make(chan struct{})
	m.mu.Lock()
	m.waiters[id] = ch
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.waiters, id)
		m.mu.Unlock()
	}()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	if _, err := m.marker.WriteToUDPAddrPort(b[:], m.target); err != nil {
		return
	}
	t := time.NewTimer(drainWait)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		m.log.Warn("shared RTP port: the reader is still behind after the wait; the end of a message may be cut",
			"wait", drainWait)
	}
}

// marked wakes the drain that sent marker b.
func (m *mux) marked(b []byte) {
	if len(b) != 8 {
		return
	}
	id := binary.BigEndian.Uint64(b)
	m.mu.Lock()
	ch := m.waiters[id]
	delete(m.waiters, id)
	m.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

func unmapAP(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
