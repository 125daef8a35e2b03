package sip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/store"
)

// Dialog is one UAS dialog created by an INVITE (RFC 3261 §12.1.1): what
// package call sees of a call is its exported methods.
type Dialog struct {
	s         *Server
	log       *slog.Logger // call_id, tenant and, for a deposit, mailbox
	baseLog   *slog.Logger // call_id and tenant
	callID    string
	localTag  string
	remoteTag string
	invite    *sip.Request
	tx        sip.ServerTransaction

	remoteCSeq atomic.Uint32
	localCSeq  atomic.Uint32

	ackCh     chan *sip.Request
	ackWant   atomic.Uint32 // CSeq of the INVITE whose 2xx awaits its ACK; 0 = none
	ended     atomic.Bool
	hungUp    context.Context // done when the caller hung up; the call's context derives from it
	endHungUp context.CancelFunc
	hangOnce  sync.Once
	hangCh    chan struct{} // closed when we must end the call (drain)
	reinvite  sync.Mutex    // one re-INVITE at a time (RFC 3261 §14.2)
	mu        sync.Mutex    // guards sess, offer, sdpVer and crypto
	sess      *media.Session
	offer     *Offer
	sdpVer    uint64
	sdpID     uint64
	crypto    *Crypto // our SRTP key; nil = plain RTP (sdes.go)
	tenant    string
	mailbox   *store.Mailbox
	target    Target
	access    bool
	trusted   bool   // a trusted proxy sent the INVITE (trust.go)
	authUser  string // the mailbox the caller digest-authenticated as (auth.go)
	answered  atomic.Bool
	confirmed atomic.Bool
	cancelled atomic.Bool // the INVITE's transaction took a CANCEL (and sent 487)

	interval  atomic.Int64  // RFC 4028 session interval (ns); 0 = no session timer
	weRefresh atomic.Bool   // refresher=uas: we send the refreshes (refresh.go)
	refreshCh chan struct{} // a session refresh arrived (timer.go)
}

// NewTag is a random From/To tag (RFC 3261 §19.3).
func NewTag() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// FirstCSeq is a random first CSeq for the requests we send in a dialog.
func FirstCSeq() uint32 { return uint32(randUint64() % 10000) }

func randUint64() uint64 {
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	return n.Uint64()
}

func (d *Dialog) matches(req *sip.Request) bool {
	from, to := req.From(), req.To()
	if from == nil || to == nil {
		return false
	}
	ft, _ := from.Params.Get("tag")
	tt, _ := to.Params.Get("tag")
	return ft == d.remoteTag && tt == d.localTag
}

// checkCSeq enforces increasing CSeq within the dialog (RFC 3261 §12.2.2).
func (d *Dialog) checkCSeq(req *sip.Request) bool {
	c := req.CSeq()
	if c == nil {
		return false
	}
	for {
		last := d.remoteCSeq.Load()
		if c.SeqNo < last {
			return false
		}
		if c.SeqNo == last && req.Method != sip.ACK && req.Method != sip.CANCEL {
			// A retransmission would have been absorbed by its transaction.
			return false
		}
		if d.remoteCSeq.CompareAndSwap(last, c.SeqNo) {
			return true
		}
	}
}

// acked hands an ACK to whoever waits for it. Only the ACK of the INVITE
// whose 2xx is outstanding is kept: a stray one (a phone acknowledging a
// 500 in a new transaction, a late copy) must not take the place of the
// real one in the channel.
func (d *Dialog) acked(req *sip.Request) {
	if c := req.CSeq(); c == nil || c.SeqNo != d.ackWant.Load() {
		return
	}
	select {
	case d.ackCh <- req:
	default:
	}
}

// remoteHangup ends the dialog; it reports whether this call ended it.
func (d *Dialog) remoteHangup() bool {
	if !d.ended.CompareAndSwap(false, true) {
		return false
	}
	d.endHungUp()
	return true
}

func (d *Dialog) hangup() { d.hangOnce.Do(func() { close(d.hangCh) }) }

func (d *Dialog) digit(key rune) {
	if s := d.Session(); s != nil {
		s.InjectDigit(key)
	}
}

func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil {
		if _, ok := to.Params.Get("tag"); ok {
			s.onReInvite(req, tx)
			return
		}
	}
	cid := req.CallID()
	if cid == nil || req.From() == nil || req.CSeq() == nil {
		s.refuse(tx, req, ErrBadRequest, "")
		return
	}
	// The call's logger is built once its tenant is known; the refusals
	// before that are rare and build their own.
	log := func() *slog.Logger { return s.log.With("call_id", cid.Value()) }
	if s.draining.Load() {
		s.refuse(tx, req, ErrDraining, "")
		return
	}
	if lim := s.cfg.OverloadLateness; lim > 0 {
		if late := s.deps.Engine.Lateness(); late > lim {
			log().Warn("overloaded: refusing the call", "media_lateness", late, "limit", lim)
			s.refuse(tx, req, ErrUnavailable, "")
			return
		}
	}
	if n := s.active.Add(1); n > int64(s.cfg.MaxCalls) {
		s.active.Add(-1)
		log().Warn("call limit reached", "max_calls", s.cfg.MaxCalls)
		s.refuse(tx, req, ErrUnavailable, "")
		return
	}
	started := false
	defer func() {
		if !started {
			s.active.Add(-1)
		}
	}()
	// An unsupported Require was refused by guard (validateRequest).
	interval, tooSmall := s.sessionInterval(req)
	if tooSmall {
		s.refuse(tx, req, Refuse(ErrIntervalTooSmall, sip.NewHeader("Min-SE", strconv.Itoa(int(s.minSE()/time.Second)))), "")
		return
	}
	var offer *Offer
	if body := req.Body(); len(body) > 0 {
		if ct := req.ContentType(); ct == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ct.Value(), ";")[0]), "application/sdp") {
			s.refuse(tx, req, Refuse(ErrUnsupportedMedia, sip.NewHeader("Accept", "application/sdp")), "")
			return
		}
		o, err := ParseOffer(body)
		if err != nil {
			log().Info("rejecting offer", "err", err)
			s.refuse(tx, req, Refuse(ErrNotAcceptableHere, Warning(305, err.Error())), "")
			return
		}
		offer = o
	}
	offer, err := s.srtpPolicy(offer, req)
	if err != nil {
		log().Info("rejecting offer: media.srtp", "err", err, "transport", req.Transport())
		s.refuse(tx, req, err, "")
		return
	}
	ctx := context.Background()
	tenant, err := s.deps.Store.TenantForDomain(ctx, req.Recipient.Host)
	if err != nil {
		log().Error("tenant lookup", "err", err)
		s.refuse(tx, req, ErrInternal, "")
		return
	}
	d := &Dialog{
		s: s, callID: cid.Value(), localTag: NewTag(), invite: req, tx: tx, tenant: tenant,
		ackCh: make(chan *sip.Request, 1), hangCh: make(chan struct{}),
		offer: offer, sdpID: randUint64(), sdpVer: 1, refreshCh: make(chan struct{}, 1),
	}
	d.hungUp, d.endHungUp = context.WithCancel(context.Background())
	d.interval.Store(int64(interval))
	d.weRefresh.Store(refresherOf(req) == "uas")
	d.remoteTag, _ = req.From().Params.Get("tag")
	d.remoteCSeq.Store(req.CSeq().SeqNo)
	d.localCSeq.Store(FirstCSeq())
	d.trusted = s.Trusted(req)
	if isAccess(req.Recipient.User, s.cfg.AccessNumbers) {
		d.access = true
	} else {
		// Redirection headers are believed from a trusted proxy only.
		d.target = requestURITarget(req)
		if d.trusted {
			d.target = SelectTarget(req)
		}
		mb, err := s.mailbox(ctx, tenant, d.target.Mailbox)
		if errors.Is(err, ErrUnknownMailbox) {
			log().Info("unknown mailbox", "tenant", tenant, "mailbox", d.target.Mailbox, "source", d.target.Source)
		} else if err != nil {
			log().Error("mailbox lookup", "err", err)
		}
		if err != nil {
			s.refuse(tx, req, err, d.localTag)
			return
		}
		d.mailbox = mb
	}
	// One "mailbox" key per line: a deposit's is the called mailbox; an
	// access call names the mailboxes it touches itself (BaseLog).
	d.baseLog = s.log.With("call_id", cid.Value(), "tenant", tenant)
	d.log = d.baseLog
	if !d.access {
		d.log = d.baseLog.With("mailbox", d.target.Mailbox)
	}
	if !s.inviteAuth(ctx, tx, req, d) {
		return
	}
	if a, ok := s.deps.Calls.(Admitter); ok {
		if err := a.Admit(d); err != nil {
			s.refuse(tx, req, err, d.localTag)
			return
		}
	}
	if !s.addDialog(d) {
		// Same Call-ID, new transaction, no To-tag: a merged request (§8.2.2.2).
		s.refuse(tx, req, ErrLoop, "")
		return
	}
	started = true
	// sipgo ends a transaction without a final response when its handler
	// returns: the call is set up here, then lives on (run).
	d.run()
}

// refuse answers an initial INVITE with the status of err and counts it.
func (s *Server) refuse(tx sip.ServerTransaction, req *sip.Request, err error, toTag string) {
	code := Reply(tx, req, err, toTag)
	s.metrics.call(isAccess(req.Recipient.User, s.cfg.AccessNumbers), strconv.Itoa(code))
}

// CheckRequire refuses (420 with Unsupported) the Require option tags we do
// not support; "timer" is the only one we do (RFC 4028).
func CheckRequire(req *sip.Request) error {
	var out []string
	for h := range Headers(req, "Require") {
		for _, tag := range strings.Split(h.Value(), ",") {
			if tag = strings.TrimSpace(tag); tag != "" && !strings.EqualFold(tag, "timer") {
				out = append(out, tag)
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return Refuse(ErrBadExtension, sip.NewHeader("Unsupported", strings.Join(out, ", ")))
}

func isAccess(user string, numbers []string) bool {
	for _, n := range numbers {
		if user == n {
			return true
		}
	}
	return false
}

// run answers the call, drives it and cleans up.
func (d *Dialog) run() {
	result, live := "error", false
	defer func() { // also while a panic unwinds to the request's guard
		if !live {
			d.finish(result)
		}
	}()
	if result = d.establish(); result != "completed" {
		return
	}
	// Answered and acknowledged: the INVITE transaction is over, and the
	// call goes on on a goroutine of its own, started shallow. Parked
	// under the transaction layer's frames, every call's goroutine kept a
	// 16 KiB stack.
	live = true
	go func() {
		result := "panic"
		defer func() {
			if r := recover(); r != nil {
				d.s.Recovered("call", r, "call_id", d.callID)
			}
			d.finish(result)
		}()
		result = d.live()
	}()
}

// finish releases the call's media, counts and logs its result.
func (d *Dialog) finish(result string) {
	s := d.s
	if sess := d.Session(); sess != nil {
		_ = sess.Close()
		st := sess.Stats()
		s.metrics.media(st)
		d.logMedia(result, st)
	}
	s.metrics.call(d.access, result)
	s.removeDialog(d)
	s.active.Add(-1)
}

// establish takes the INVITE to the ACK of our 200 OK; it returns
// "completed" when the call is up, otherwise the result to record.
// No 100 Trying of our own: the answer is normally milliseconds away, and
// the transaction sends one if it is not there within 200 ms (RFC 3261
// §17.2.1), which is before the caller's first retransmission (T1, 500 ms).
// The datagram saved was 6 % of the server's CPU in call setups.
func (d *Dialog) establish() (result string) {
	s := d.s

	cfg := media.SessionConfig{Codec: media.PCMU, Logger: d.log,
		RTPTimeout: s.cfg.RTPTimeout, StrictRTPPackets: s.cfg.StrictRTPPackets}
	if o := d.currentOffer(); o != nil {
		cfg.Codec, cfg.DTMFPayload, cfg.Ptime = o.Codec, o.DTMF, o.Ptime
		cfg.CNPayload, cfg.RTCPMux, cfg.RemoteSSRC = o.CN, o.RTCPMux, o.SSRC
		if !o.Hold() {
			cfg.Remote, cfg.RTCPRemote = o.Remote, o.RTCP
		}
		keys, err := d.srtpFor(o)
		if err != nil {
			d.log.Error("srtp key", "err", err)
			return strconv.Itoa(Reply(d.tx, d.invite, ErrInternal, d.localTag))
		}
		cfg.SRTP = keys
	} else if s.cfg.SRTP == SRTPRequired {
		if err := d.offerCrypto(); err != nil {
			d.log.Error("srtp key", "err", err)
			return strconv.Itoa(Reply(d.tx, d.invite, ErrInternal, d.localTag))
		}
	}
	sess, err := s.deps.Engine.NewSession(cfg)
	if err != nil {
		d.log.Error("no media port", "err", err)
		return strconv.Itoa(Reply(d.tx, d.invite, ErrUnavailable, d.localTag))
	}
	d.mu.Lock()
	d.sess = sess
	d.mu.Unlock()

	// sipgo's transaction answers a CANCEL with 487 itself; the answer
	// must know whether it did (answer).
	d.tx.OnCancel(func(*sip.Request) { d.cancelled.Store(true) })
	if s.cfg.AnswerDelay > 0 {
		_ = respond(d.tx, d.invite, 180, "Ringing", nil, d.localTag)
		select {
		case <-time.After(s.cfg.AnswerDelay):
		case <-d.tx.Done():
			d.log.Info("call cancelled before answer", "err", d.tx.Err())
			return "cancelled"
		}
	}
	select {
	case <-d.tx.Done():
		d.log.Info("call cancelled before answer", "err", d.tx.Err())
		return "cancelled"
	default:
	}
	if !d.answer() {
		if d.cancelled.Load() {
			d.log.Info("call cancelled before answer")
			return "cancelled"
		}
		return "no_ack"
	}
	return "completed"
}

// live runs the answered call until it ends and returns its result.
func (d *Dialog) live() (result string) {
	result = "completed"
	// The call ends when the caller hangs up (its context derives from
	// hungUp), when the media go silent, or when the session timer runs
	// out: callbacks, not a goroutine per call waiting for them.
	ctx, cancel := context.WithCancel(d.hungUp)
	defer cancel()
	var timedOut atomic.Bool
	stopInactive := d.Session().OnInactive(func() {
		if ctx.Err() != nil {
			return
		}
		d.log.Info("no RTP nor RTCP from the caller; ending the call", "rtp_timeout", d.s.cfg.RTPTimeout)
		timedOut.Store(true)
		cancel()
	})
	defer stopInactive()
	if d.interval.Load() > 0 {
		go d.watchTimer(ctx, cancel)
	}
	if d.driveSafely(ctx) {
		result = "panic"
	} else if timedOut.Load() {
		result = "rtp_timeout"
	}
	select {
	case <-d.hungUp.Done():
	default:
		bctx, bcancel := context.WithTimeout(context.Background(), 32*sip.T1)
		if err := d.bye(bctx); err != nil {
			d.log.Warn("BYE failed", "err", err)
		}
		bcancel()
	}
	return result
}

// driveSafely runs the call (Deps.Calls); a panic in it ends this call
// alone (with a BYE below) and is reported true.
func (d *Dialog) driveSafely(ctx context.Context) (panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			d.s.Recovered("call", r, "call_id", d.callID)
			panicked = true
		}
	}()
	if d.s.deps.Calls != nil {
		d.s.deps.Calls.Call(ctx, d)
	}
	return false
}

// answer sends 200 OK and waits for the ACK, retransmitting the 2xx over
// unreliable transports (RFC 3261 §13.3.1.4). Without an ACK in 64*T1 the
// call is ended with a BYE.
func (d *Dialog) answer() bool {
	l := d.local()
	var body []byte
	if o := d.currentOffer(); o != nil {
		body = Answer(o, l)
	} else {
		body = NewOffer(l)
	}
	res := sip.NewResponseFromRequest(d.invite, 200, "OK", body)
	res.To().Params.Add("tag", d.localTag)
	res.AppendHeader(d.s.contactFor(d.invite))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	for _, h := range capabilityHeaders() {
		if h.Name() != "Accept" {
			res.AppendHeader(h)
		}
	}
	if iv := time.Duration(d.interval.Load()); iv > 0 {
		for _, h := range timerHeaders(iv, d.refresher()) {
			res.AppendHeader(h)
		}
	}
	d.ackWant.Store(d.invite.CSeq().SeqNo)
	// The 2xx does not go through the transaction (send2xx), so the
	// transaction is ended first: from then on it sends nothing, and a
	// CANCEL finds s.invites instead (200, no effect; onCancel). A CANCEL
	// it took before has had its 487: no 200 after that. Known before the
	// 200 is sent: a copy of the INVITE crossing it is absorbed, not taken
	// for a merged request.
	if d.cancelled.Load() {
		return false // the transaction still retransmits its 487
	}
	d.s.invites.add(d.invite)
	d.tx.Terminate()
	if d.cancelled.Load() {
		return false
	}
	// (A CANCEL the transaction layer matched just before Terminate and
	// hands on after this check still draws a 487 beside our 200: the
	// caller ACKs the 200, or the call ends with a BYE at 64×T1 below.)
	err := d.send2xx(res)
	if err != nil {
		d.log.Warn("sending 200 failed", "err", err)
		return false
	}
	d.answered.Store(true)
	d.log.Info("call answered", "transport", d.invite.Transport(), "codec", d.codecName(), "srtp", d.srtpSuite())

	// One timer serves the retransmissions and the deadline: it runs for
	// every call, and a second one cost allocations per call.
	reliable := sip.IsReliable(d.invite.Transport())
	deadline := time.Now().Add(64 * sip.T1)
	interval := sip.T1
	if reliable {
		interval = 64 * sip.T1
	}
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		select {
		case ack := <-d.ackCh:
			return d.confirm(ack)
		case ack := <-d.tx.Acks():
			return d.confirm(ack)
		case <-timer.C:
			left := time.Until(deadline)
			if left <= 0 {
				d.log.Warn("no ACK for 200 OK; ending the call")
				ctx, cancel := context.WithTimeout(context.Background(), 32*sip.T1)
				_ = d.bye(ctx)
				cancel()
				return false
			}
			if !reliable {
				_ = d.send2xx(res)
				interval = min(2*interval, sip.T2)
			}
			timer.Reset(min(interval, left))
		case <-d.hungUp.Done():
			return false
		}
	}
}

// send2xx writes the 2xx to the INVITE on the transaction's connection,
// as the transaction would, without handing it to the transaction: sipgo
// keeps a transaction that sent a 2xx, with the INVITE and the 2xx, for
// Timer L (64×T1, 32 s) whatever ends it sooner, and under a stream of
// short calls that was most of the server's memory (BENCHMARKS.md, "The
// INVITE's transaction"). s.invites keeps 16 bytes in its place.
func (d *Dialog) send2xx(res *sip.Response) error {
	if c, ok := d.tx.(interface{ Connection() sip.Connection }); ok {
		return c.Connection().WriteMsg(res)
	}
	return d.tx.Respond(res)
}

// confirm completes the dialog; when the INVITE had no SDP the ACK carries
// the answer (RFC 3264 §5).
func (d *Dialog) confirm(ack *sip.Request) bool {
	d.confirmed.Store(true)
	if d.currentOffer() != nil {
		return true
	}
	o, err := ParseOffer(ack.Body())
	if err == nil {
		err = d.checkAnswer(o)
	}
	if err != nil {
		d.log.Info("ACK without a usable SDP answer; ending the call", "err", err)
		ctx, cancel := context.WithTimeout(context.Background(), 32*sip.T1)
		_ = d.bye(ctx)
		cancel()
		return false
	}
	d.setOffer(o, false)
	return true
}

func (d *Dialog) currentOffer() *Offer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.offer
}

// setOffer applies a new remote description to the media session; bump
// says our description changes with it (RFC 4566 §5.2 o= version).
func (d *Dialog) setOffer(o *Offer, bump bool) {
	d.mu.Lock()
	d.offer = o
	if bump {
		d.sdpVer++
	}
	sess := d.sess
	d.mu.Unlock()
	upd := media.SessionConfig{Codec: o.Codec, DTMFPayload: o.DTMF, CNPayload: o.CN, RTCPMux: o.RTCPMux}
	keys, err := d.srtpFor(o)
	if err != nil {
		d.log.Warn("srtp key for the new offer", "err", err)
		return
	}
	upd.SRTP = keys
	if !o.Hold() {
		// On hold both stay nil: send nothing until the next offer.
		upd.Remote, upd.RTCPRemote = o.Remote, o.RTCP
	}
	if err := sess.Update(upd); err != nil {
		d.log.Warn("applying the new offer", "err", err)
	}
}

func (d *Dialog) codecName() string {
	if o := d.currentOffer(); o != nil {
		return o.Codec.String()
	}
	return "offer-in-200"
}

func (d *Dialog) local() Local {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := Local{IP: d.s.cfg.PublicIP, Port: d.sess.LocalPort(), SessionID: d.sdpID, Version: d.sdpVer, Crypto: d.crypto}
	if d.sess.Shared() {
		l.SSRC, l.CNAME = d.sess.SSRC(), d.sess.CNAME()
	}
	return l
}

// onUpdate takes an UPDATE (RFC 3311): a session refresh (RFC 4028), with
// or without a new offer.
func (s *Server) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	d := s.inDialog(req, tx)
	if d == nil {
		return
	}
	var res *sip.Response
	if len(req.Body()) > 0 {
		if !d.reinvite.TryLock() {
			Reply(tx, req, ErrPending, d.localTag)
			return
		}
		res = d.reinviteAnswer(req)
		d.reinvite.Unlock()
	} else {
		res = sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(s.Contact(req.Transport()))
	}
	d.refreshTimer(req, res)
	_ = tx.Respond(res)
}

// refreshTimer restarts the session timer on a successful refresh and puts
// the interval in the answer (RFC 4028 §9).
func (d *Dialog) refreshTimer(req *sip.Request, res *sip.Response) {
	if res.StatusCode != 200 || d.interval.Load() == 0 {
		return
	}
	if iv, _ := d.s.sessionInterval(req); iv > 0 {
		d.interval.Store(int64(iv))
		d.weRefresh.Store(refresherOf(req) == "uas")
	}
	for _, h := range timerHeaders(time.Duration(d.interval.Load()), d.refresher()) {
		res.AppendHeader(h)
	}
	d.refreshed()
}

// watchTimer ends the call's context when the session timer ran out
// without a refresh (RFC 4028 §10: we then BYE), or sends the refreshes
// when we are the refresher. Only calls with a session timer have it.
func (d *Dialog) watchTimer(ctx context.Context, cancel context.CancelFunc) {
	t := time.NewTimer(d.timerDue(time.Duration(d.interval.Load())))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.refreshCh:
			t.Reset(d.timerDue(time.Duration(d.interval.Load())))
		case <-t.C:
			if d.weRefresh.Load() {
				if d.refresh(ctx) {
					t.Reset(d.timerDue(time.Duration(d.interval.Load())))
					continue
				}
				if ctx.Err() != nil {
					return
				}
				d.log.Info("session refresh failed; ending the call")
			} else {
				d.log.Info("session timer expired without a refresh; ending the call")
			}
			cancel()
			return
		}
	}
}
