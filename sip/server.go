// Package sip is the signalling of the voicemail server and the only
// package that speaks SIP (RFC 3261 on github.com/emiago/sipgo): listeners,
// INVITE dialogs (offer/answer, session timers, retransmission of the 2xx),
// routing a request to its tenant and mailbox, the in-dialog request
// builder and the refusal statuses. What happens inside an answered call is
// package call's (CallHandler); SUBSCRIBE belongs to package mwi
// (HandleSubscribe). See docs/architecture.md.
package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/vmserver/voicemail/internal/udpbatch"
	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/sipauth"
	"github.com/vmserver/voicemail/store"
)

// allowed is the Allow header value: what we answer.
const allowed = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY, SUBSCRIBE, UPDATE, REGISTER"

// knownMethods are methods we recognise but do not serve: 405, not 501.
var knownMethods = map[string]bool{
	"MESSAGE": true, "PUBLISH": true,
	"PRACK": true, "REFER": true,
}

var raiseMTU sync.Once

// Listener is one transport to serve.
type Listener struct {
	Transport string // udp, tcp, tls
	Addr      string
}

// Config is what the SIP layer needs from the server configuration.
type Config struct {
	Listeners     []Listener
	TLS           *tls.Config
	PublicIP      net.IP
	AccessNumbers []string
	AnswerDelay   time.Duration
	MaxCalls      int
	// OverloadLateness refuses new calls (503) while the media clock runs
	// this late on average: calls in progress keep their audio whole.
	// 0 = off.
	OverloadLateness time.Duration
	// MinSE is the smallest session interval accepted (RFC 4028 Min-SE);
	// 0 = 90 s.
	MinSE time.Duration
	// TCPIdleTimeout closes a TCP/TLS connection on which nothing arrived
	// for that long (0 = never); TCPMaxPerSource caps the connections of
	// one source IP (0 = no cap). listener.go.
	TCPIdleTimeout  time.Duration
	TCPMaxPerSource int
	// RTPTimeout ends a call (BYE, result rtp_timeout) after this long
	// without RTP nor RTCP from the caller; 0 = off.
	RTPTimeout time.Duration
	// StrictRTPPackets: packets in sequence a new RTP source must send
	// before it is learnt (docs/configuration.md); 0 = media's default.
	StrictRTPPackets int

	// Trust and digest authentication (trust.go, auth.go, docs/sip.md).
	// TrustedProxies may assert identity and redirection; DepositAuth is
	// none, untrusted or all; AuthRealm overrides the tenant's domain as
	// realm; NonceKey (sipauth.DeriveKey of the cluster's secret) signs the
	// nonces, and without it nothing can authenticate; NonceTTL 0 = 5 min.
	// SubscribeAuth requires digest for a SUBSCRIBE from an untrusted
	// source.
	TrustedProxies []netip.Prefix
	DepositAuth    string
	AuthRealm      string
	NonceKey       []byte
	NonceTTL       time.Duration
	SubscribeAuth  bool
	// RegisterMaxExpires caps a REGISTER's expiry (0 = 3600 s).
	RegisterMaxExpires time.Duration
	// SRTP is media.srtp: off, optional ("" = optional) or required;
	// SRTPAllowInsecure accepts SDES keys over UDP and TCP (sdes.go).
	SRTP              string
	SRTPAllowInsecure bool
	// Flood: per-source rate limits and the authentication lock-out
	// (ratelimit.go, blocklist.go).
	Flood FloodConfig
	// TrustedSource reports whether a source IP is a trusted proxy: it
	// carries many phones and is exempt from per-source rate limits.
	TrustedSource func(netip.Addr) bool
}

// Store is what signalling reads: the tenant of a domain and the mailbox a
// request is for.
type Store interface {
	TenantForDomain(ctx context.Context, host string) (string, error)
	GetMailbox(ctx context.Context, tenant, number string) (*store.Mailbox, error)
}

// CallHandler runs an answered call (package call). Call returns when the
// call is over; ctx ends when the caller hung up or the session timer
// expired. A panic in Call ends that call alone.
type CallHandler interface {
	Call(ctx context.Context, d *Dialog)
}

// Admitter is implemented by a CallHandler that may refuse a call before
// it is answered (package call refuses deposits while the disk is full).
// A non-nil error is answered through the status table (status.go).
type Admitter interface {
	Admit(d *Dialog) error
}

// SubscribeHandler answers a SUBSCRIBE (package mwi).
type SubscribeHandler func(req *sip.Request, tx sip.ServerTransaction)

// Deps are the collaborators of the SIP server.
type Deps struct {
	Store  Store
	Engine *media.Engine
	Calls  CallHandler
	Logger *slog.Logger
	// Auth reads credentials for digest authentication and Registrations
	// keeps REGISTER bindings; either nil turns its feature off.
	Auth          AuthStore
	Registrations RegistrationStore
	// AuthObserver, if set, is told of each failed authentication.
	AuthObserver AuthObserver
}

// Server is the SIP user agent of the voicemail server.
type Server struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client

	mu      sync.Mutex
	dialogs map[string]*Dialog // by Call-ID
	active  atomic.Int64       // calls in progress, including those being set up

	draining atomic.Bool
	ports    map[string]int // transport -> listening port, for Contact

	metrics   *callMetrics                     // calls, RTP, panics (metrics.go)
	subscribe atomic.Pointer[SubscribeHandler] // SUBSCRIBE (package mwi)
	nonces    *sipauth.Nonces                  // nil: no digest authentication
	onReg     atomic.Pointer[func(store.SIPRegistration)]
	flood     *flood           // rate limits and lock-out (ratelimit.go)
	byes      *answered        // BYEs answered 200, for copies (onBye)
	invites   *answered        // initial INVITEs answered 2xx, for copies and CANCELs (Dialog.answer)
	udp       []*udpbatch.Conn // UDP listeners, for their drop counts; guarded by mu
}

// New builds the server; Serve starts it.
func New(cfg Config, deps Deps) (*Server, error) {
	if cfg.MaxCalls <= 0 {
		cfg.MaxCalls = 1000
	}
	if cfg.PublicIP == nil {
		cfg.PublicIP = FirstNonLoopback()
	}
	if cfg.SRTP == "" {
		cfg.SRTP = SRTPOptional
	}
	// NOTIFY and INVITE with big SDP must not be refused over UDP. The
	// setting is sipgo's package variable: set it once.
	raiseMTU.Do(func() { sip.UDPMTUSize = 8192 })
	// sipgo's transport and transaction layers log through our handler
	// (JSON by default), not through their own default logger.
	m := newCallMetrics()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("voicemail"), sipgo.WithUserAgentHostname(cfg.PublicIP.String()),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sipgoLogger(deps.Logger, m.malformed)),
			sip.WithTransportLayerReadFilter(m.malformed.readFilter)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipgoLogger(deps.Logger, m.malformed))))
	if err != nil {
		return nil, fmt.Errorf("sip: user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(sipgoLogger(deps.Logger, m.malformed)))
	if err != nil {
		return nil, fmt.Errorf("sip: server: %w", err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(cfg.PublicIP.String()), sipgo.WithClientLogger(sipgoLogger(deps.Logger, m.malformed)))
	if err != nil {
		return nil, fmt.Errorf("sip: client: %w", err)
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger, ua: ua, srv: srv, client: client,
		dialogs: map[string]*Dialog{}, ports: map[string]int{}, metrics: m,
		byes: newAnswered(64*sip.T1, time.Now), invites: newAnswered(64*sip.T1, time.Now)}
	if len(cfg.NonceKey) > 0 {
		ttl := cfg.NonceTTL
		if ttl <= 0 {
			ttl = defaultNonceTTL
		}
		s.nonces = sipauth.NewNonces(cfg.NonceKey, ttl)
	}
	trusted := cfg.TrustedSource
	if trusted == nil && len(cfg.TrustedProxies) > 0 {
		// A trusted proxy carries many phones: no per-source limit or
		// lock-out applies to it.
		trusted = func(a netip.Addr) bool {
			for _, p := range cfg.TrustedProxies {
				if p.Contains(a) {
					return true
				}
			}
			return false
		}
	}
	s.cfg.TrustedSource = trusted
	s.flood = newFlood(cfg.Flood, trusted, deps.Logger)
	srv.OnInvite(s.guard(s.onInvite))
	srv.OnAck(s.guard(s.onAck))
	srv.OnBye(s.guard(s.onBye))
	srv.OnCancel(s.guard(s.onCancel))
	srv.OnOptions(s.guard(s.onOptions))
	srv.OnInfo(s.guard(s.onInfo))
	srv.OnUpdate(s.guard(s.onUpdate))
	srv.OnNotify(s.guard(s.onNotify))
	srv.OnSubscribe(s.guard(s.onSubscribe))
	srv.OnRegister(s.guard(s.onRegister))
	srv.OnNoRoute(s.guard(s.onNoRoute))
	return s, nil
}

// Listen binds every listener; it returns once they are all bound, and
// serves them until ctx ends.
func (s *Server) Listen(ctx context.Context) error {
	for _, l := range s.cfg.Listeners {
		switch l.Transport {
		case "udp":
			pc, err := net.ListenPacket("udp", l.Addr)
			if err != nil {
				return fmt.Errorf("sip: listen udp %s: %w", l.Addr, err)
			}
			s.addUDP(pc)
			s.setPort("udp", pc.LocalAddr())
			go func() { <-ctx.Done(); pc.Close() }()
			go s.serve(func() error { return s.srv.ServeUDP(pc) }, l)
		case "tcp", "tls":
			ln, err := net.Listen("tcp", l.Addr)
			if err != nil {
				return fmt.Errorf("sip: listen %s %s: %w", l.Transport, l.Addr, err)
			}
			// Limits below TLS: a handshake counts, and waits, too.
			ln = limitListener(ln, s.cfg.TCPIdleTimeout, s.cfg.TCPMaxPerSource, s.metrics.tcpRefused, s.log)
			if l.Transport == "tls" {
				if s.cfg.TLS == nil {
					ln.Close()
					return fmt.Errorf("sip: listen tls %s: no certificate", l.Addr)
				}
				ln = tls.NewListener(ln, s.cfg.TLS)
			}
			s.setPort(l.Transport, ln.Addr())
			go func() { <-ctx.Done(); ln.Close() }()
			if l.Transport == "tls" {
				go s.serve(func() error { return s.srv.ServeTLS(ln) }, l)
			} else {
				go s.serve(func() error { return s.srv.ServeTCP(ln) }, l)
			}
		default:
			return fmt.Errorf("sip: unknown transport %q", l.Transport)
		}
		s.log.Info("sip listening", "transport", l.Transport, "addr", l.Addr)
	}
	return nil
}

// sipSocketBuffer is the kernel receive buffer asked for a UDP listener:
// a few seconds of signalling at 1,500 calls/s. With Linux's default
// (~208 KiB) a pause of the reading goroutine of a few tens of
// milliseconds under a burst of calls dropped INVITEs, which the callers
// resent 500 ms later (BENCHMARKS.md, "The SIP socket's buffer"). Above
// net.core.rmem_max only with CAP_NET_ADMIN (docs/performance.md).
const sipSocketBuffer = 16 << 20

// addUDP sizes a UDP listener's buffers and keeps it for its drop count
// (voicemail_sip_udp_dropped_total).
func (s *Server) addUDP(pc net.PacketConn) {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return
	}
	b, err := udpbatch.New(uc)
	if err != nil {
		s.log.Warn("sip udp listener: socket buffers left as they are", "err", err)
		return
	}
	b.SetBuffers(sipSocketBuffer)
	s.mu.Lock()
	s.udp = append(s.udp, b)
	s.mu.Unlock()
}

// udpDropped is how many datagrams the kernel dropped on the UDP
// listeners because their receive buffers were full.
func (s *Server) udpDropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for _, b := range s.udp {
		if d, ok := b.Drops(); ok {
			n += d
		}
	}
	return n
}

func (s *Server) serve(f func() error, l Listener) {
	if err := f(); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Error("sip listener stopped", "transport", l.Transport, "addr", l.Addr, "err", err)
	}
}

func (s *Server) setPort(transport string, a net.Addr) {
	_, p, _ := net.SplitHostPort(a.String())
	n, _ := strconv.Atoi(p)
	s.mu.Lock()
	s.ports[transport] = n
	s.mu.Unlock()
}

// Drain refuses new calls with 503 and waits for the calls in progress to
// end, or for ctx to end (then they are hung up and their recordings kept).
func (s *Server) Drain(ctx context.Context) {
	s.draining.Store(true)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	hungUp := false
	for s.active.Load() > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			if !hungUp {
				hungUp = true
				s.mu.Lock()
				for _, d := range s.dialogs {
					d.hangup()
				}
				s.mu.Unlock()
			}
			// Calls now end on their own: recordings are saved and each
			// BYE is bounded by its transaction timeout.
			<-tick.C
		}
	}
}

// Close releases the user agent.
func (s *Server) Close() error { return s.ua.Close() }

// ActiveCalls is the number of calls in progress.
func (s *Server) ActiveCalls() int { return int(s.active.Load()) }

// Contact is our Contact header for a request arriving on transport.
func (s *Server) Contact(transport string) *sip.ContactHeader {
	tr := strings.ToLower(transport)
	s.mu.Lock()
	port := s.ports[tr]
	s.mu.Unlock()
	uri := sip.Uri{Scheme: "sip", User: "voicemail", Host: s.cfg.PublicIP.String(), Port: port, UriParams: sip.NewParams()}
	if tr != "udp" && tr != "" {
		uri.UriParams.Add("transport", tr)
	}
	return &sip.ContactHeader{Address: uri}
}

// HandleSubscribe makes h answer SUBSCRIBE requests; until then they get
// 503.
func (s *Server) HandleSubscribe(h SubscribeHandler) { s.subscribe.Store(&h) }

func (s *Server) onSubscribe(req *sip.Request, tx sip.ServerTransaction) {
	h := s.subscribe.Load()
	if h == nil {
		Reply(tx, req, ErrUnavailable, "")
		return
	}
	(*h)(req, tx)
}

// PublicIP is the address in our Contact and SDP.
func (s *Server) PublicIP() net.IP { return s.cfg.PublicIP }

// AccessNumbers are the numbers that reach the access IVR.
func (s *Server) AccessNumbers() []string { return append([]string(nil), s.cfg.AccessNumbers...) }

// IsAccess reports whether user is an access number.
func (s *Server) IsAccess(user string) bool { return isAccess(user, s.cfg.AccessNumbers) }

// Connected reports whether a reliable transport still has its connection
// to addr (NOTIFYs then go back over it).
func (s *Server) Connected(transport, addr string) bool {
	c, err := s.ua.TransportLayer().GetConnection(transport, addr)
	return err == nil && c != nil
}

func (s *Server) dialog(callID string) *Dialog {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dialogs[callID]
}

func (s *Server) addDialog(d *Dialog) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.dialogs[d.callID]; ok {
		return false
	}
	s.dialogs[d.callID] = d
	return true
}

func (s *Server) removeDialog(d *Dialog) {
	s.mu.Lock()
	if s.dialogs[d.callID] == d {
		delete(s.dialogs, d.callID)
	}
	s.mu.Unlock()
}

// respond sends a response with our To-tag (RFC 3261 §8.2.6.2: one tag on
// every non-100 response) and extra headers.
func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, body []byte, toTag string, hdrs ...sip.Header) error {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	// sipgo gives every non-100 response a random tag when the request had
	// none; a dialog's responses must all carry the dialog's own.
	if to, rto := res.To(), req.To(); code != 100 && toTag != "" && to != nil && rto != nil && !rto.Params.Has("tag") {
		to.Params.Add("tag", toTag)
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	return tx.Respond(res)
}

func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	// A draining instance says so to the proxy's keep-alive probes, which
	// then stop sending it new calls (deploy/README.md).
	if s.draining.Load() {
		Reply(tx, req, ErrDraining, "")
		return
	}
	_ = OK(tx, req, capabilityHeaders()...)
}

// capabilityHeaders are Allow, Accept and Supported (RFC 3261 §11.2).
func capabilityHeaders() []sip.Header {
	return []sip.Header{
		sip.NewHeader("Allow", allowed),
		sip.NewHeader("Accept", "application/sdp, application/dtmf-relay, application/dtmf"),
		sip.NewHeader("Supported", "replaces, timer"),
		sip.NewHeader("Allow-Events", "message-summary"),
	}
}

func (s *Server) onNoRoute(req *sip.Request, tx sip.ServerTransaction) {
	if knownMethods[string(req.Method)] {
		Reply(tx, req, ErrMethodNotAllowed, "")
		return
	}
	Reply(tx, req, ErrNotImplemented, "")
}

func (s *Server) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	// sipgo answers a CANCEL that matches a pending INVITE itself. One for
	// an INVITE we answered 2xx (its transaction ended at our 200) is
	// answered 200 and changes nothing; anything else matched nothing
	// (RFC 3261 §9.2).
	if s.invites.seen(req) {
		_ = OK(tx, req)
		return
	}
	Reply(tx, req, ErrNoDialog, "")
}

func (s *Server) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	// NOTIFYs arrive in our dialogs after a REFER (RFC 3515 §2.4.4).
	d := s.inDialog(req, tx)
	if d == nil {
		return
	}
	_ = OK(tx, req)
}

// inDialog finds the dialog of an in-dialog request, answering 481 when
// there is none and 500 when its CSeq went backwards (RFC 3261 §12.2.2).
func (s *Server) inDialog(req *sip.Request, tx sip.ServerTransaction) *Dialog {
	cid := req.CallID()
	d := (*Dialog)(nil)
	if cid != nil {
		d = s.dialog(cid.Value())
	}
	if d == nil || !d.matches(req) {
		Reply(tx, req, ErrNoDialog, "")
		return nil
	}
	if !d.checkCSeq(req) {
		Reply(tx, req, ErrOutOfOrder, "")
		return nil
	}
	return d
}

func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	// Our transactions for BYEs end at the 200 (below): a copy of a BYE
	// we answered is answered again here.
	if s.byes.seen(req) {
		_ = OK(tx, req)
		tx.Terminate()
		return
	}
	d := s.inDialog(req, tx)
	if d == nil {
		return
	}
	// End the dialog before answering, so that a request the caller sends
	// after our 200 (or a BYE crossing ours) finds it ended: 481.
	if !d.remoteHangup() {
		Reply(tx, req, ErrNoDialog, "")
		return
	}
	s.byes.add(req)
	_ = OK(tx, req)
	// Over UDP sipgo would keep the transaction, the BYE and our 200 for
	// Timer J (32 s); answered does that job for 16 bytes.
	tx.Terminate()
	d.log.Info("caller hung up")
}

func (s *Server) onAck(req *sip.Request, tx sip.ServerTransaction) {
	cid := req.CallID()
	if cid == nil {
		return
	}
	if d := s.dialog(cid.Value()); d != nil && d.matches(req) {
		d.acked(req)
	}
}

func (s *Server) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	d := s.inDialog(req, tx)
	if d == nil {
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = strings.ToLower(strings.TrimSpace(strings.Split(h.Value(), ";")[0]))
	}
	if len(req.Body()) == 0 {
		_ = OK(tx, req) // keep-alive INFO
		return
	}
	switch ct {
	case "application/dtmf-relay", "application/dtmf":
		key, ok := ParseINFODigit(ct, req.Body())
		if !ok {
			Reply(tx, req, ErrBadRequest, "")
			return
		}
		_ = OK(tx, req)
		d.digit(key)
	default:
		Reply(tx, req, Refuse(ErrUnsupportedMedia, sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf")), "")
	}
}

// ParseINFODigit reads one DTMF key from a SIP INFO body:
// application/dtmf-relay ("Signal=5\r\nDuration=160", keys case-insensitive,
// 10 and 11 meaning * and #) or application/dtmf (the key alone).
func ParseINFODigit(contentType string, body []byte) (rune, bool) {
	val := strings.TrimSpace(string(body))
	if contentType == "application/dtmf-relay" {
		val = ""
		for _, line := range strings.Split(string(body), "\n") {
			k, v, ok := strings.Cut(line, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "signal") {
				val = strings.TrimSpace(v)
			}
		}
	}
	switch strings.ToUpper(val) {
	case "10", "*":
		return '*', true
	case "11", "#":
		return '#', true
	case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D":
		return rune(strings.ToUpper(val)[0]), true
	}
	return 0, false
}

// FirstNonLoopback is the first IPv4 address not on loopback, else
// 127.0.0.1: the public address when none is configured.
func FirstNonLoopback() net.IP {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				return n.IP
			}
		}
	}
	return net.IPv4(127, 0, 0, 1)
}
