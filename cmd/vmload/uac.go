package main

// This file is over 600 lines on purpose: the generator's one shared
// ticker, its per-call state and the SIP/RTP handlers it drives are read
// together when tuning the load figures of BENCHMARKS.md.

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmserver/voicemail/internal/siptest"
	"github.com/vmserver/voicemail/internal/udpbatch"
)

// Timing of the generator. One shared ticker drives every call: RTP
// pacing, SIP retransmissions, state changes and call launches.
const (
	tick      = 2 * time.Millisecond // the shared clock
	phases    = 10                   // tick*phases = 20 ms: one RTP frame per call per phase round
	t1        = 500 * time.Millisecond
	inviteTO  = 16 * time.Second // Timer B, shortened so a run stays bounded
	byeTO     = 16 * time.Second
	tailAfter = 200 * time.Millisecond // after the last frame, before BYE
)

type state uint8

const (
	stInviting state = iota
	stGreeting       // answered; the server plays greeting and beep
	stSpeaking       // we send the audio
	stHolding        // setup mode, or after the audio
	stBye            // BYE sent
	stDone
	stFailed
)

// call is one UAC dialog. SIP fields are guarded by mu (the SIP reader and
// the clock goroutine both touch them); RTP receive counters are atomics
// written by the RTP readers.
type call struct {
	g     *gen
	n     int
	phase int
	rtp   int // index of the RTP socket (its port is in our SDP)

	callID, fromTag, branch string

	mu         sync.Mutex
	st         state
	invSent    time.Time // first INVITE
	lastTx     time.Time
	rtxEvery   time.Duration
	provisonal bool
	answeredAt time.Time
	holdUntil  time.Time
	toHdr      string
	target     string // Contact of the 200
	remote     netip.AddrPort
	srvSSRC    uint32 // the server's a=ssrc, when its answer has one
	srvSSRCOK  bool
	dtmfPT     uint8
	byeSent    time.Time
	byeBranch  string
	ackMsg     []byte
	failWhy    string

	// RTP send state (clock goroutine only).
	ssrc     uint32
	seq      uint16
	ts       uint32
	frame    int
	speakAt  time.Time // when the first frame went out
	nextTick uint64
	probe    bool // presses # during the greeting
	dtmfStep int  // 0 none, 1..6 packets sent
	dtmfTS   uint32

	// RTP receive side (RTP readers).
	rxPackets   atomic.Int64
	lastRx      atomic.Int64 // unix ns
	dtmfAt      atomic.Int64 // unix ns of the first DTMF packet
	markerAfter atomic.Int64 // unix ns of the first marked packet after dtmfAt
	rxAtMarker  atomic.Int64
}

// results are what a run measures.
type results struct {
	mu          sync.Mutex
	setup       []time.Duration // INVITE -> 200 (first transmission to first 200)
	setupAt     []time.Time     // when each of setup's INVITEs was first sent
	dtmf        []time.Duration // first DTMF packet -> first marked packet of the next prompt
	ok          int
	failed      map[string]int
	rejected503 int
	retransC    atomic.Int64 // requests we retransmitted (INVITE, BYE)
	retransS    atomic.Int64 // 2xx retransmissions the server sent us
	rtpSent     atomic.Int64
	rtpRecv     atomic.Int64
	rtpUnknown  atomic.Int64
	earlyStarts atomic.Int64 // started talking on quiet detection before the expected greeting packets
	calibrated  atomic.Int64 // packets of greeting and beep (calibrate mode)
}

func (r *results) fail(why string) {
	r.mu.Lock()
	r.failed[why]++
	r.mu.Unlock()
}

// gen is the load generator: one SIP socket, a few RTP sockets, one clock.
type gen struct {
	cfg    runConfig
	frames [][]byte
	server *net.UDPAddr
	sip    *net.UDPConn
	sipAP  netip.AddrPort
	rtps   []*net.UDPConn
	res    *results

	mu     sync.Mutex
	calls  map[string]*call // by Call-ID
	rtpMu  sync.RWMutex
	byRTP  map[netip.AddrPort]*call // by the server's RTP address (rtpMu)
	bySSRC map[uint32]*call         // by the server's SSRC, when its answer has a=ssrc (rtpMu)
	active []*call
	bucket [phases][]*call

	launched, finished atomic.Int64
	live               atomic.Int64
	peakLive           atomic.Int64
	plateauStart       atomic.Int64 // unix ns when live first reached the target
	plateauEnd         atomic.Int64 // unix ns when the first call of the plateau ended
	filledAt           atomic.Int64 // unix ns of the launch that made the level full (churn window start)
	lastLaunchAt       atomic.Int64 // unix ns of the last launch (churn window end)

	pkt [12 + frameBytes]byte // the one RTP packet buffer (clock goroutine)
	// RTP goes out in batches: per socket, what a clock tick sends, in one
	// system call (clock goroutine).
	rtpB []*udpbatch.Conn
	outq [][]udpbatch.Message
	outn []int
}

func newGen(cfg runConfig, frames [][]byte) (*gen, error) {
	srv, err := net.ResolveUDPAddr("udp4", cfg.server)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(cfg.local)
	g := &gen{cfg: cfg, frames: frames, server: srv,
		res:   &results{failed: map[string]int{}},
		calls: map[string]*call{}, byRTP: map[netip.AddrPort]*call{}, bySSRC: map[uint32]*call{}}
	g.sip, err = net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: cfg.sipPort})
	if err != nil {
		return nil, fmt.Errorf("sip socket: %w", err)
	}
	_ = g.sip.SetReadBuffer(4 << 20)
	_ = g.sip.SetWriteBuffer(4 << 20)
	g.sipAP = g.sip.LocalAddr().(*net.UDPAddr).AddrPort()
	for i := 0; i < cfg.rtpSockets; i++ {
		port := 0 // any
		if cfg.rtpBase != 0 {
			port = cfg.rtpBase + 2*i
		}
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: port})
		if err != nil {
			return nil, fmt.Errorf("rtp socket %d: %w", port, err)
		}
		_ = c.SetReadBuffer(4 << 20)
		_ = c.SetWriteBuffer(4 << 20)
		b, err := udpbatch.New(c)
		if err != nil {
			return nil, err
		}
		g.rtps = append(g.rtps, c)
		g.rtpB = append(g.rtpB, b)
	}
	g.outq = make([][]udpbatch.Message, len(g.rtps))
	g.outn = make([]int, len(g.rtps))
	return g, nil
}

func (g *gen) close() {
	g.sip.Close()
	for _, c := range g.rtps {
		c.Close()
	}
}

// ---- SIP messages ----

func (g *gen) via(branch string) string {
	return fmt.Sprintf("SIP/2.0/UDP %s;branch=%s;rport", g.sipAP, branch)
}

func (c *call) from() string {
	return fmt.Sprintf(`"vmload %d" <sip:+1415555%04d@%s>;tag=%s`, c.n, c.n%10000, c.g.cfg.local, c.fromTag)
}

func (c *call) ruri() string {
	return fmt.Sprintf("sip:%s@%s", c.g.cfg.mailbox, c.g.server)
}

func (c *call) inviteMsg() []byte {
	g := c.g
	port := g.rtps[c.rtp].LocalAddr().(*net.UDPAddr).Port
	sdp := siptest.BuildSDP(g.cfg.local, port, []uint8{siptest.PCMU}, 101, int64(c.ssrc))
	// a=ssrc (RFC 5576): calls share our RTP sockets, so a server on one
	// shared port (media.rtp_mux) tells them apart by SSRC.
	sdp = fmt.Appendf(sdp, "a=ssrc:%d cname:vmload-%d\r\n", c.ssrc, c.n)
	var b strings.Builder
	fmt.Fprintf(&b, "INVITE %s SIP/2.0\r\n", c.ruri())
	fmt.Fprintf(&b, "Via: %s\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: <%s>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\n",
		g.via(c.branch), c.from(), c.ruri(), c.callID)
	fmt.Fprintf(&b, "Contact: <sip:vmload@%s>\r\nUser-Agent: vmload\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n", g.sipAP, len(sdp))
	b.Write(sdp)
	return []byte(b.String())
}

func (c *call) inDialog(method, branch string, cseq int) []byte {
	g := c.g
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, c.target)
	fmt.Fprintf(&b, "Via: %s\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n",
		g.via(branch), c.from(), c.toHdr, c.callID, cseq, method)
	fmt.Fprintf(&b, "Contact: <sip:vmload@%s>\r\nContent-Length: 0\r\n\r\n", g.sipAP)
	return []byte(b.String())
}

func (g *gen) sendSIP(b []byte) { _, _ = g.sip.WriteToUDP(b, g.server) }

// ---- launching and the clock ----

func (g *gen) launch(n int, now time.Time, idx uint64) {
	c := &call{g: g, n: n, phase: n % phases, rtp: n % len(g.rtps),
		callID: siptest.RandHex(10) + "@vmload", fromTag: siptest.RandHex(6), branch: "z9hG4bK" + siptest.RandHex(8),
		ssrc: siptest.Rand32(), seq: uint16(siptest.Rand32()), ts: siptest.Rand32()}
	c.probe = g.cfg.dtmfProbe > 0 && n%g.cfg.dtmfProbe == 0
	c.invSent, c.lastTx, c.rtxEvery = now, now, t1
	g.mu.Lock()
	g.calls[c.callID] = c
	g.active = append(g.active, c)
	g.bucket[c.phase] = append(g.bucket[c.phase], c)
	g.mu.Unlock()
	switch int(g.launched.Add(1)) {
	case g.cfg.concurrent:
		g.filledAt.Store(now.UnixNano())
	case g.cfg.calls:
		g.lastLaunchAt.Store(now.UnixNano())
	}
	live := g.live.Add(1)
	if live > g.peakLive.Load() {
		g.peakLive.Store(live)
	}
	if live >= int64(g.cfg.concurrent) && g.plateauStart.Load() == 0 {
		g.plateauStart.Store(now.UnixNano())
	}
	c.nextTick = idx
	g.sendSIP(c.inviteMsg())
}

// end removes a finished call from the clock.
func (g *gen) end(c *call, now time.Time) {
	g.mu.Lock()
	delete(g.calls, c.callID)
	g.rtpMu.Lock()
	if c.remote.IsValid() && g.byRTP[c.remote] == c {
		delete(g.byRTP, c.remote)
	}
	if c.srvSSRCOK && g.bySSRC[c.srvSSRC] == c {
		delete(g.bySSRC, c.srvSSRC)
	}
	g.rtpMu.Unlock()
	b := g.bucket[c.phase]
	for i, x := range b {
		if x == c {
			b[i] = b[len(b)-1]
			b[len(b)-1] = nil
			g.bucket[c.phase] = b[:len(b)-1]
			break
		}
	}
	g.mu.Unlock()
	g.finished.Add(1)
	g.live.Add(-1)
	if g.plateauStart.Load() != 0 && g.plateauEnd.Load() == 0 {
		g.plateauEnd.Store(now.UnixNano())
	}
}

// run drives the whole load from one ticker until every call has ended or
// the deadline passes.
func (g *gen) run(deadline time.Time) {
	for i := range g.rtps {
		go g.readRTP(i)
	}
	go g.readSIP()
	start := time.Now()
	t := time.NewTicker(tick)
	defer t.Stop()
	var last uint64
	first := true
	for now := range t.C {
		idx := uint64(now.Sub(start) / tick)
		// Launch: rate-limited, concurrency-limited, bounded in count.
		for k := launchesDue(now.Sub(start), g.cfg.rate, int(g.launched.Load()), int(g.live.Load()), g.cfg.concurrent, g.cfg.calls); k > 0; k-- {
			g.launch(int(g.launched.Load()), now, idx)
		}
		// Every phase bucket passed since the last tick (ticks can be lost).
		from := last + 1
		if first || idx-last > phases {
			from, first = idx+1-min(idx+1, phases), false
		}
		for i := from; i <= idx; i++ {
			g.mu.Lock()
			calls := append([]*call(nil), g.bucket[i%phases]...)
			g.mu.Unlock()
			for _, c := range calls {
				c.step(now, idx)
			}
		}
		g.flushRTP()
		last = idx
		if int(g.launched.Load()) >= g.cfg.calls && g.live.Load() == 0 {
			return
		}
		if now.After(deadline) {
			g.mu.Lock()
			left := make([]*call, 0, len(g.calls))
			for _, c := range g.calls {
				left = append(left, c)
			}
			g.mu.Unlock()
			for _, c := range left {
				c.mu.Lock()
				c.failLocked(now, "unfinished:"+c.st.String())
				c.mu.Unlock()
			}
			return
		}
	}
}

func (s state) String() string {
	return [...]string{"inviting", "greeting", "speaking", "holding", "bye", "done", "failed"}[s]
}

// step runs once per 20 ms for a call, on the clock goroutine.
func (c *call) step(now time.Time, idx uint64) {
	g := c.g
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.st {
	case stInviting:
		if now.Sub(c.invSent) > inviteTO {
			c.failLocked(now, "invite timeout")
			return
		}
		if !c.provisonal && now.Sub(c.lastTx) >= c.rtxEvery {
			g.sendSIP(c.inviteMsg())
			g.res.retransC.Add(1)
			c.lastTx, c.rtxEvery = now, 2*c.rtxEvery
		}
	case stGreeting:
		if g.cfg.mode == "setup" {
			c.st, c.holdUntil = stHolding, c.answeredAt.Add(g.cfg.hold)
			return
		}
		if c.probe && c.dtmfStep < 6 && now.Sub(c.answeredAt) >= g.cfg.dtmfAfter {
			c.sendDTMF(now)
		}
		if c.greetingOver(now) {
			if g.cfg.mode == "calibrate" {
				g.res.calibrated.Store(c.rxPackets.Load())
				c.st, c.holdUntil = stHolding, now
				return
			}
			c.st = stSpeaking
			c.nextTick = idx
			c.speakAt = now
		}
		if now.Sub(c.answeredAt) > 60*time.Second {
			c.failLocked(now, "greeting never ended")
		}
	case stSpeaking:
		// One frame per 20 ms of wall clock since the first; after a lost
		// clock round, at most 2 at once. (Before, two frames went out on
		// every round: the audio ran at twice real time.)
		for n := framesDue(now.Sub(c.speakAt), c.frame); n > 0 && c.frame < len(g.frames); n-- {
			c.sendFrame(g.frames[c.frame], c.frame == 0)
			c.frame++
		}
		if c.frame >= len(g.frames) {
			c.st, c.holdUntil = stHolding, now.Add(tailAfter)
		}
	case stHolding:
		if !now.Before(c.holdUntil) {
			c.byeBranch = "z9hG4bK" + siptest.RandHex(8)
			c.byeSent, c.lastTx, c.rtxEvery = now, now, t1
			c.st = stBye
			g.sendSIP(c.inDialog("BYE", c.byeBranch, 2))
		}
	case stBye:
		if now.Sub(c.byeSent) > byeTO {
			c.failLocked(now, "bye timeout")
			return
		}
		if now.Sub(c.lastTx) >= c.rtxEvery {
			g.sendSIP(c.inDialog("BYE", c.byeBranch, 2))
			g.res.retransC.Add(1)
			c.lastTx, c.rtxEvery = now, min(2*c.rtxEvery, 4*time.Second)
		}
	}
}

// greetingOver: the server played greeting and beep and went quiet.
func (c *call) greetingOver(now time.Time) bool {
	g := c.g
	n := c.rxPackets.Load()
	last := c.lastRx.Load()
	if n == 0 || last == 0 {
		return false
	}
	quiet := now.Sub(time.Unix(0, last))
	if c.probe && c.dtmfStep > 0 {
		// After '#': the beep (15 packets) then quiet.
		m := c.markerAfter.Load()
		if m == 0 {
			return false
		}
		return n-c.rxAtMarker.Load()+1 >= int64(g.cfg.beepPackets) && quiet >= 100*time.Millisecond
	}
	if g.cfg.greetPackets > 0 && n >= int64(g.cfg.greetPackets) && quiet >= 60*time.Millisecond {
		return true
	}
	if quiet >= g.cfg.quiet {
		if g.cfg.greetPackets > 0 {
			g.res.earlyStarts.Add(1)
		}
		return true
	}
	return false
}

func (c *call) sendFrame(payload []byte, marker bool) {
	g := c.g
	b := g.pkt[:12+len(payload)]
	b[0] = 0x80
	b[1] = 0 // PCMU
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], c.seq)
	binary.BigEndian.PutUint32(b[4:], c.ts)
	binary.BigEndian.PutUint32(b[8:], c.ssrc)
	copy(b[12:], payload)
	c.seq++
	c.ts += frameBytes
	g.queueRTP(c.rtp, b, c.remote)
}

// queueRTP copies a packet into its socket's batch (clock goroutine).
func (g *gen) queueRTP(sock int, b []byte, to netip.AddrPort) {
	q, n := g.outq[sock], g.outn[sock]
	if n == len(q) {
		q = append(q, udpbatch.Message{Buf: make([]byte, 0, len(g.pkt))})
		g.outq[sock] = q
	}
	q[n].Buf = append(q[n].Buf[:0], b...)
	q[n].Addr = to
	g.outn[sock] = n + 1
}

// flushRTP sends every socket's batch (clock goroutine, once per tick).
func (g *gen) flushRTP() {
	for i, n := range g.outn {
		if n == 0 {
			continue
		}
		sent, _ := g.rtpB[i].WriteBatch(g.outq[i][:n])
		g.res.rtpSent.Add(int64(sent))
		g.outn[i] = 0
	}
}

// sendDTMF sends RFC 4733 '#' over six clock rounds: three packets of the
// event, then the end packet three times.
func (c *call) sendDTMF(now time.Time) {
	g := c.g
	if c.dtmfPT == 0 {
		c.dtmfStep = 6
		return
	}
	if c.dtmfStep == 0 {
		c.dtmfTS = c.ts
		c.dtmfAt.Store(now.UnixNano())
	}
	c.dtmfStep++
	end := c.dtmfStep > 3
	dur := uint16(min(c.dtmfStep, 3) * frameBytes)
	b := g.pkt[:16]
	b[0], b[1] = 0x80, c.dtmfPT
	if c.dtmfStep == 1 {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], c.seq)
	binary.BigEndian.PutUint32(b[4:], c.dtmfTS)
	binary.BigEndian.PutUint32(b[8:], c.ssrc)
	b[12], b[13] = 11, 10 // '#', volume
	if end {
		b[13] |= 0x80
	}
	binary.BigEndian.PutUint16(b[14:], dur)
	c.seq++
	g.queueRTP(c.rtp, b, c.remote)
	if c.dtmfStep == 6 {
		c.ts = c.dtmfTS + 3*frameBytes
	}
}

func (c *call) failLocked(now time.Time, why string) {
	if c.st == stDone || c.st == stFailed {
		return
	}
	if c.failWhy == "" {
		c.failWhy = why
	}
	if c.st >= stGreeting && c.st < stBye && c.target != "" {
		// Leave the server no dangling call (one BYE, not waited for).
		c.g.sendSIP(c.inDialog("BYE", "z9hG4bK"+siptest.RandHex(8), 2))
	}
	c.st = stFailed
	c.g.res.fail(c.failWhy)
	c.g.end(c, now)
}

func (c *call) doneLocked(now time.Time) {
	if c.st == stDone || c.st == stFailed {
		return
	}
	c.st = stDone
	r := c.g.res
	r.mu.Lock()
	r.ok++
	if c.probe {
		if a, m := c.dtmfAt.Load(), c.markerAfter.Load(); a != 0 && m != 0 {
			r.dtmf = append(r.dtmf, time.Duration(m-a))
		}
	}
	r.mu.Unlock()
	c.g.end(c, now)
}

// ---- receive loops ----

func (g *gen) readRTP(i int) {
	ms := make([]udpbatch.Message, 64)
	for k := range ms {
		ms[k].Buf = make([]byte, 2048)
	}
	for {
		n, err := g.rtpB[i].ReadBatch(ms)
		if err != nil {
			return
		}
		for k := range n {
			g.onRTP(ms[k].Buf[:ms[k].N], ms[k].Addr)
		}
	}
}

// onRTP counts one packet from the server for its call: found by the
// server's SSRC when it announced one (a shared server port), else by the
// server's address.
func (g *gen) onRTP(buf []byte, from netip.AddrPort) {
	if len(buf) < 12 {
		return
	}
	g.res.rtpRecv.Add(1)
	g.rtpMu.RLock()
	c := g.bySSRC[binary.BigEndian.Uint32(buf[8:12])]
	if c == nil {
		c = g.byRTP[from]
	}
	g.rtpMu.RUnlock()
	if c == nil {
		g.res.rtpUnknown.Add(1)
		return
	}
	if pt := buf[1] & 0x7f; pt == siptest.CN || (buf[1] >= 192 && buf[1] <= 223) {
		// Comfort noise is the server's keep-alive while it is silent
		// (and RTCP is not audio): neither ends the quiet.
		return
	}
	now := time.Now().UnixNano()
	c.rxPackets.Add(1)
	c.lastRx.Store(now)
	if buf[1]&0x80 != 0 && c.dtmfAt.Load() != 0 && c.markerAfter.Load() == 0 {
		c.rxAtMarker.Store(c.rxPackets.Load())
		c.markerAfter.Store(now)
	}
}

func (g *gen) readSIP() {
	buf := make([]byte, 65535)
	for {
		n, from, err := g.sip.ReadFromUDP(buf)
		if err != nil {
			return
		}
		m, err := siptest.Parse(buf[:n])
		if err != nil {
			continue
		}
		g.mu.Lock()
		c := g.calls[m.Get("Call-ID")]
		g.mu.Unlock()
		if !m.IsResponse() {
			g.onRequest(c, m, from)
			continue
		}
		if c != nil {
			c.onResponse(m, time.Now())
		}
	}
}

func (g *gen) onRequest(c *call, m *siptest.Message, from *net.UDPAddr) {
	if m.Method == "ACK" {
		return
	}
	code, reason := 200, "OK"
	if c == nil && m.Method == "BYE" {
		code, reason = 481, "Call/Transaction Does Not Exist"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, h := range m.Headers {
		switch strings.ToLower(h.Name) {
		case "via", "v", "from", "f", "call-id", "i", "cseq":
			fmt.Fprintf(&b, "%s: %s\r\n", h.Name, h.Value)
		case "to", "t":
			v := h.Value
			if siptest.Tag(v) == "" {
				v += ";tag=" + siptest.RandHex(4)
			}
			fmt.Fprintf(&b, "%s: %s\r\n", h.Name, v)
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	_, _ = g.sip.WriteToUDP([]byte(b.String()), from)
	if c != nil && m.Method == "BYE" {
		now := time.Now()
		c.mu.Lock()
		if c.st == stBye || (c.st == stHolding && g.cfg.mode == "setup") {
			c.doneLocked(now)
		} else {
			c.failLocked(now, "server hung up in "+c.st.String())
		}
		c.mu.Unlock()
	}
}

func (c *call) onResponse(m *siptest.Message, now time.Time) {
	g := c.g
	_, method := m.CSeq()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch method {
	case "INVITE":
		switch {
		case m.StatusCode < 200:
			c.provisonal = true
		case m.StatusCode < 300:
			if c.st != stInviting {
				if c.ackMsg != nil {
					g.res.retransS.Add(1)
					g.sendSIP(c.ackMsg)
				}
				return
			}
			sdp, err := siptest.ParseSDP(m.Body)
			if err != nil || sdp.Port == 0 {
				c.failLocked(now, "bad SDP in 200")
				return
			}
			ip, _ := netip.AddrFromSlice(sdp.Addr.To4())
			c.remote = netip.AddrPortFrom(ip, uint16(sdp.Port))
			c.dtmfPT = sdp.TelephoneEvent()
			c.toHdr = m.Get("To")
			c.target = siptest.URIOf(m.Get("Contact"))
			if c.target == "" {
				c.target = c.ruri()
			}
			c.answeredAt = now
			g.res.mu.Lock()
			g.res.setup = append(g.res.setup, now.Sub(c.invSent))
			g.res.setupAt = append(g.res.setupAt, c.invSent)
			g.res.mu.Unlock()
			g.rtpMu.Lock()
			if ssrc, ok := answerSSRC(m.Body); ok {
				c.srvSSRC, c.srvSSRCOK = ssrc, true
				g.bySSRC[ssrc] = c
			} else {
				g.byRTP[c.remote] = c
			}
			g.rtpMu.Unlock()
			c.ackMsg = c.inDialog("ACK", "z9hG4bK"+siptest.RandHex(8), 1)
			g.sendSIP(c.ackMsg)
			c.st = stGreeting
		default:
			// ACK the failure in the INVITE transaction.
			var b strings.Builder
			fmt.Fprintf(&b, "ACK %s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
				c.ruri(), g.via(c.branch), c.from(), m.Get("To"), c.callID)
			g.sendSIP([]byte(b.String()))
			if c.st == stInviting {
				if m.StatusCode == 503 {
					g.res.mu.Lock()
					g.res.rejected503++
					g.res.mu.Unlock()
				}
				c.failLocked(now, fmt.Sprintf("INVITE %d", m.StatusCode))
			}
		}
	case "BYE":
		if m.StatusCode >= 200 && c.st == stBye {
			if m.StatusCode < 300 {
				c.doneLocked(now)
			} else {
				c.failLocked(now, fmt.Sprintf("BYE %d", m.StatusCode))
			}
		}
	}
}

// answerSSRC is the first a=ssrc of an SDP body (RFC 5576).
func answerSSRC(body []byte) (uint32, bool) {
	for line := range strings.SplitSeq(string(body), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=ssrc:")
		if !ok {
			continue
		}
		id, _, _ := strings.Cut(v, " ")
		n, err := strconv.ParseUint(id, 10, 32)
		return uint32(n), err == nil
	}
	return 0, false
}
