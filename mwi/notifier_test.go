package mwi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/vmserver/voicemail/call"
	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/prompts"
	vsip "github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/store"
)

// mwiEnv is a SIP server with MWI running over a real SQLite store that
// publishes its changes, like cmd/voicemail wires it.
type mwiEnv struct {
	t    *testing.T
	dir  string
	raw  store.Store
	st   store.Store // the notifying store: changes reach the notifier
	srv  *vsip.Server
	n    *Notifier
	addr *net.UDPAddr
	stop func()
}

func newMWIEnv(t *testing.T) *mwiEnv {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	raw, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "vm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	if err := raw.CreateTenant(ctx, &store.Tenant{Name: "default"}); err != nil {
		t.Fatal(err)
	}
	for _, mb := range []store.Mailbox{
		{Tenant: "default", Number: "1001", Name: "Alice"},
		{Tenant: "default", Number: "1002", Name: "Bob"},
		{Tenant: "default", Number: "8000", Name: "Support", Type: store.TypeGroup, Members: []string{"1001", "1002"}},
	} {
		if err := raw.CreateMailbox(ctx, &mb); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().(*net.UDPAddr)
	pc.Close()
	e := &mwiEnv{t: t, dir: dir, raw: raw, addr: addr}
	e.start()
	t.Cleanup(func() { e.stop() })
	return e
}

// start runs a server (again) on the same address and store.
func (e *mwiEnv) start() {
	t := e.t
	t.Helper()
	bus := store.NewChanges()
	e.st = store.Notifying(e.raw, bus)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	blobs, err := store.NewFSBlobs(filepath.Join(e.dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := media.NewEngine(media.EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 40000, PortMax: 40100, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := prompts.Load("")
	if err != nil {
		t.Fatal(err)
	}
	calls := call.New(call.Config{Recording: call.Recording{MaxSeconds: 60, MinSeconds: 1, SilenceSeconds: 10}},
		call.Deps{Store: e.st, Blobs: blobs, Prompts: ps, Logger: log})
	srv, err := vsip.New(vsip.Config{
		Listeners: []vsip.Listener{{Transport: "udp", Addr: e.addr.String()}},
		PublicIP:  net.IPv4(127, 0, 0, 1), AccessNumbers: []string{"5555"}, MaxCalls: 10,
	}, vsip.Deps{Store: e.st, Engine: eng, Calls: calls, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	n := New(Deps{Server: srv, Store: e.st, Changes: bus, Logger: log})
	lctx, cancel := context.WithCancel(context.Background())
	var lerr error
	for i := 0; i < 50; i++ { // the previous server's socket may linger a moment
		if lerr = srv.Listen(lctx); lerr == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if lerr != nil {
		t.Fatal(lerr)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.srv, e.n = srv, n
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			n.Stop()
			cancel()
			srv.Close()
			eng.Close()
		})
	}
}

func (e *mwiEnv) restart() {
	e.stop()
	e.start()
}

// deposit adds a message the way a deposit does: through the notifying store.
func (e *mwiEnv) deposit(mailbox string, urgent bool) *store.Message {
	e.t.Helper()
	m := &store.Message{Tenant: "default", Mailbox: mailbox, CallerID: "2002", Urgent: urgent, DurationMS: 3000}
	if err := e.st.CreateMessage(context.Background(), m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// mwiPeer is a UDP phone: it sends SUBSCRIBEs by hand and answers NOTIFYs.
type mwiPeer struct {
	t      testing.TB
	conn   *net.UDPConn
	server *net.UDPAddr
	reqs   chan *sip.Request
	resps  chan *sip.Response
	answer atomic.Int32 // status for NOTIFYs; 0 = stay silent
	done   chan struct{}
}

func newMWIPeer(t testing.TB, server *net.UDPAddr) *mwiPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &mwiPeer{t: t, conn: c, server: server, reqs: make(chan *sip.Request, 100000), resps: make(chan *sip.Response, 1000), done: make(chan struct{})}
	p.answer.Store(200)
	go p.loop()
	t.Cleanup(func() { c.Close(); <-p.done })
	return p
}

func (p *mwiPeer) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

func (p *mwiPeer) loop() {
	defer close(p.done)
	buf := make([]byte, 65536)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		msg, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue
		}
		switch m := msg.(type) {
		case *sip.Request:
			if code := int(p.answer.Load()); code != 0 {
				res := sip.NewResponseFromRequest(m, code, "Answer", nil)
				_, _ = p.conn.WriteToUDP([]byte(res.String()), from)
			}
			p.reqs <- m
		case *sip.Response:
			p.resps <- m
		}
	}
}

type subOpts struct {
	callID, tag, toTag, user, event, accept, from string
	cseq                                          int
	expires                                       int // -1: no Expires header
	extra                                         []string
}

func (p *mwiPeer) subscribe(o subOpts) {
	p.t.Helper()
	if o.user == "" {
		o.user = "1001"
	}
	if o.event == "" {
		o.event = "message-summary"
	}
	if o.from == "" {
		o.from = o.user
	}
	to := fmt.Sprintf("<sip:%s@%s>", o.user, p.server)
	if o.toTag != "" {
		to += ";tag=" + o.toTag
	}
	msg := fmt.Sprintf("SUBSCRIBE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%d;rport\r\n"+
		"From: \"Phone\" <sip:%s@127.0.0.1>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d SUBSCRIBE\r\nMax-Forwards: 70\r\n"+
		"Contact: <sip:%s@127.0.0.1:%d>\r\nEvent: %s\r\n",
		o.user, p.server, p.port(), time.Now().UnixNano(), o.from, o.tag, to, o.callID, o.cseq, o.from, p.port(), o.event)
	if o.accept != "" {
		msg += "Accept: " + o.accept + "\r\n"
	}
	if o.expires >= 0 {
		msg += fmt.Sprintf("Expires: %d\r\n", o.expires)
	}
	for _, h := range o.extra {
		msg += h + "\r\n"
	}
	msg += "Content-Length: 0\r\n\r\n"
	if _, err := p.conn.WriteToUDP([]byte(msg), p.server); err != nil {
		p.t.Fatal(err)
	}
}

func (p *mwiPeer) response(timeout time.Duration) *sip.Response {
	p.t.Helper()
	select {
	case r := <-p.resps:
		return r
	case <-time.After(timeout):
		p.t.Fatalf("no response in %v", timeout)
		return nil
	}
}

func (p *mwiPeer) notify(timeout time.Duration) *sip.Request {
	p.t.Helper()
	select {
	case r := <-p.reqs:
		return r
	case <-time.After(timeout):
		p.t.Fatalf("no NOTIFY in %v", timeout)
		return nil
	}
}

// quiet fails if a request arrives within d.
func (p *mwiPeer) quiet(d time.Duration) {
	p.t.Helper()
	select {
	case r := <-p.reqs:
		p.t.Fatalf("unexpected request:\n%s", r)
	case <-time.After(d):
	}
}

func hdr(m interface{ GetHeader(string) sip.Header }, name string) string {
	if h := m.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// checkSummary checks a NOTIFY's headers and body.
func checkSummary(t *testing.T, n *sip.Request, voice, state string) {
	t.Helper()
	if n.Method != sip.NOTIFY {
		t.Fatalf("got %s, want NOTIFY", n.Method)
	}
	if ct := hdr(n, "Content-Type"); ct != "application/simple-message-summary" {
		t.Errorf("Content-Type %q", ct)
	}
	if st := hdr(n, "Subscription-State"); !strings.HasPrefix(st, state) {
		t.Errorf("Subscription-State %q, want %s…", st, state)
	}
	body := string(n.Body())
	waiting := "no"
	if !strings.HasPrefix(voice, "0/") {
		waiting = "yes"
	}
	want := "Messages-Waiting: " + waiting + "\r\nMessage-Account: sip:5555@127.0.0.1\r\nVoice-Message: " + voice + "\r\n"
	if body != want {
		t.Errorf("body %q, want %q", body, want)
	}
}

func newCallID() string { return vsip.NewTag() + "@mwi-test" }

func TestMWISubscribeFlow(t *testing.T) {
	t.Parallel()
	env := newMWIEnv(t)
	p := newMWIPeer(t, env.addr)
	cid := newCallID()
	p.subscribe(subOpts{callID: cid, tag: "a1", cseq: 1, expires: 600, event: "message-summary;id=42", accept: "application/simple-message-summary"})
	ok := p.response(5 * time.Second)
	if ok.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE answered %d", ok.StatusCode)
	}
	toTag, _ := ok.To().Params.Get("tag")
	if toTag == "" || ok.Contact() == nil {
		t.Fatalf("200 without To-tag or Contact:\n%s", ok)
	}
	if exp, _ := strconv.Atoi(hdr(ok, "Expires")); exp <= 0 || exp > 600 {
		t.Errorf("Expires %q, want 1..600", hdr(ok, "Expires"))
	}
	n := p.notify(5 * time.Second)
	checkSummary(t, n, "0/0 (0/0)", "active;expires=")
	if ev := hdr(n, "Event"); ev != "message-summary;id=42" {
		t.Errorf("Event %q, want the id echoed", ev)
	}
	if tag, _ := n.From().Params.Get("tag"); tag != toTag {
		t.Errorf("NOTIFY From tag %q, want %q", tag, toTag)
	}
	if tag, _ := n.To().Params.Get("tag"); tag != "a1" {
		t.Errorf("NOTIFY To tag %q, want a1", tag)
	}
	if n.CallID().Value() != cid {
		t.Errorf("Call-ID %q", n.CallID().Value())
	}
	cseq1 := n.CSeq().SeqNo

	// A deposit: 1/0. An urgent one: 2/0 (1/0) — urgent counts are in the totals.
	m1 := env.deposit("1001", false)
	checkSummary(t, p.notify(5*time.Second), "1/0 (0/0)", "active")
	env.deposit("1001", true)
	n = p.notify(5 * time.Second)
	checkSummary(t, n, "2/0 (1/0)", "active")
	if n.CSeq().SeqNo <= cseq1 {
		t.Errorf("CSeq %d after %d", n.CSeq().SeqNo, cseq1)
	}

	// Played (read), then deleted.
	m1.Read, m1.Folder = true, store.FolderOld
	if err := env.st.UpdateMessage(context.Background(), m1); err != nil {
		t.Fatal(err)
	}
	checkSummary(t, p.notify(5*time.Second), "1/1 (1/0)", "active")
	if _, err := env.st.DeleteMessage(context.Background(), "default", "1001", m1.ID); err != nil {
		t.Fatal(err)
	}
	checkSummary(t, p.notify(5*time.Second), "1/0 (1/0)", "active")

	// A change that leaves the counts alone sends nothing.
	mb, _ := env.st.GetMailbox(context.Background(), "default", "1001")
	mb.Name = "Alice B."
	if err := env.st.UpdateMailbox(context.Background(), mb); err != nil {
		t.Fatal(err)
	}

	// Refresh: 200 and a NOTIFY at once; a stale CSeq gets 500.
	p.subscribe(subOpts{callID: cid, tag: "a1", toTag: toTag, cseq: 2, expires: 7200, event: "message-summary;id=42"})
	ok = p.response(5 * time.Second)
	if ok.StatusCode != 200 || hdr(ok, "Expires") != "3600" {
		t.Fatalf("refresh: %d Expires %q, want 200 and 3600 (no more than our maximum)", ok.StatusCode, hdr(ok, "Expires"))
	}
	checkSummary(t, p.notify(5*time.Second), "1/0 (1/0)", "active;expires=")
	p.subscribe(subOpts{callID: cid, tag: "a1", toTag: toTag, cseq: 2, expires: 600, event: "message-summary;id=42"})
	if r := p.response(5 * time.Second); r.StatusCode != 500 {
		t.Errorf("stale CSeq answered %d, want 500", r.StatusCode)
	}
	// Unsubscribe: terminated, then the dialog is gone.
	p.subscribe(subOpts{callID: cid, tag: "a1", toTag: toTag, cseq: 3, expires: 0, event: "message-summary;id=42"})
	if r := p.response(5 * time.Second); r.StatusCode != 200 || hdr(r, "Expires") != "0" {
		t.Fatalf("unsubscribe: %d Expires %q", r.StatusCode, hdr(r, "Expires"))
	}
	un := p.notify(5 * time.Second)
	checkSummary(t, un, "1/0 (1/0)", "terminated")
	if st := hdr(un, "Subscription-State"); st != "terminated" {
		t.Errorf("unsubscribe: Subscription-State %q, want terminated without a reason (RFC 6665 §4.1.3)", st)
	}
	p.subscribe(subOpts{callID: cid, tag: "a1", toTag: toTag, cseq: 4, expires: 600, event: "message-summary;id=42"})
	if r := p.response(5 * time.Second); r.StatusCode != 481 {
		t.Errorf("refresh after unsubscribe answered %d, want 481", r.StatusCode)
	}
	env.deposit("1001", false)
	p.quiet(1500 * time.Millisecond)
	if subs, _ := env.raw.ListMWISubscriptions(context.Background()); len(subs) != 0 {
		t.Errorf("%d subscriptions stored after unsubscribe", len(subs))
	}
}

func TestMWISubscribeRejections(t *testing.T) {
	t.Parallel()
	env := newMWIEnv(t)
	p := newMWIPeer(t, env.addr)
	cases := []struct {
		name string
		o    subOpts
		want int
	}{
		{"presence_489", subOpts{event: "presence"}, 489},
		{"unknown_mailbox_404", subOpts{user: "1999"}, 404},
		{"accept_406", subOpts{accept: "application/pidf+xml"}, 406},
		{"no_expires_3600", subOpts{expires: -1}, 200},
		{"accept_list_200", subOpts{accept: "text/plain, application/simple-message-summary"}, 200},
		{"access_number_200", subOpts{user: "5555", from: "1002"}, 200},
	}
	for _, tc := range cases {
		o := tc.o
		o.callID, o.tag, o.cseq = newCallID(), "r", 1
		if o.expires == 0 {
			o.expires = 60
		}
		p.subscribe(o)
		r := p.response(5 * time.Second)
		if r.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, r.StatusCode, tc.want)
			continue
		}
		switch tc.name {
		case "presence_489":
			if hdr(r, "Allow-Events") != "message-summary" {
				t.Errorf("489 without Allow-Events: message-summary:\n%s", r)
			}
		case "no_expires_3600":
			if hdr(r, "Expires") != "3600" {
				t.Errorf("no Expires asked: granted %q, want 3600", hdr(r, "Expires"))
			}
			checkSummary(t, p.notify(5*time.Second), "0/0 (0/0)", "active")
		case "accept_list_200":
			checkSummary(t, p.notify(5*time.Second), "0/0 (0/0)", "active")
		case "access_number_200":
			// The mailbox is the From user's: 1002.
			checkSummary(t, p.notify(5*time.Second), "0/0 (0/0)", "active")
			env.deposit("1002", false)
			checkSummary(t, p.notify(5*time.Second), "1/0 (0/0)", "active")
		}
	}
}

// Changes closer than a second apart give one NOTIFY per second, and the
// last state always goes out.
func TestMWICoalescing(t *testing.T) {
	t.Parallel()
	env := newMWIEnv(t)
	p := newMWIPeer(t, env.addr)
	p.subscribe(subOpts{callID: newCallID(), tag: "c", cseq: 1, expires: 600})
	p.response(5 * time.Second)
	first := p.notify(5 * time.Second)
	checkSummary(t, first, "0/0 (0/0)", "active")
	t0 := time.Now()
	for i := 0; i < 5; i++ {
		env.deposit("1001", false)
	}
	n := p.notify(5 * time.Second)
	at := time.Now()
	// Each NOTIFY shows a state, the last one the final state.
	for !strings.Contains(string(n.Body()), "5/0") {
		prev := at
		n = p.notify(5 * time.Second)
		at = time.Now()
		if gap := at.Sub(prev); gap < 900*time.Millisecond {
			t.Errorf("two NOTIFYs %v apart", gap)
		}
	}
	checkSummary(t, n, "5/0 (0/0)", "active")
	if at.Sub(t0) > 3*time.Second {
		t.Errorf("the last state went out %v after the changes", at.Sub(t0))
	}
	p.quiet(1500 * time.Millisecond)
}

func TestMWIExpiry(t *testing.T) {
	t.Parallel()
	env := newMWIEnv(t)
	p := newMWIPeer(t, env.addr)
	p.subscribe(subOpts{callID: newCallID(), tag: "e", cseq: 1, expires: 1})
	if r := p.response(5 * time.Second); hdr(r, "Expires") != "1" {
		t.Fatalf("Expires %q, want 1 (never more than asked)", hdr(r, "Expires"))
	}
	checkSummary(t, p.notify(5*time.Second), "0/0 (0/0)", "active")
	checkSummary(t, p.notify(5*time.Second), "0/0 (0/0)", "terminated;reason=timeout")
	env.deposit("1001", false)
	p.quiet(1500 * time.Millisecond)
}

// A NOTIFY answered 481 (or timing out) ends the subscription.
func TestMWIDropOnError(t *testing.T) {
	t.Parallel()
	env := newMWIEnv(t)
	p := newMWIPeer(t, env.addr)
	p.subscribe(subOpts{callID: newCallID(), tag: "d", cseq: 1, expires: 600})
	p.response(5 * time.Second)
	p.notify(5 * time.Second)
	p.answer.Store(481)
	env.deposit("1001", false)
	checkSummary(t, p.notify(5*time.Second), "1/0 (0/0)", "active")
	waitFor(t, func() bool { return gauge(t, env.n, "voicemail_mwi_subscriptions") == 0 })
	env.deposit("1001", false)
	p.quiet(1500 * time.Millisecond)
	if got := counter(t, env.n, "voicemail_mwi_notify_total", "rejected"); got != 1 {
		t.Errorf("rejected NOTIFYs: %v, want 1", got)
	}
}

// Deleting a mailbox clears its lamp: 0/0, then terminated;reason=noresource.
func TestMWIMailboxDeleted(t *testing.T) {
	t.Parallel()
	env := newMWIEnv(t)
	env.deposit("1002", false)
	p := newMWIPeer(t, env.addr)
	p.subscribe(subOpts{callID: newCallID(), tag: "x", cseq: 1, expires: 600, user: "1002"})
	p.response(5 * time.Second)
	checkSummary(t, p.notify(5*time.Second), "1/0 (0/0)", "active")
	if _, err := env.st.DeleteMailbox(context.Background(), "default", "1002"); err != nil {
		t.Fatal(err)
	}
	checkSummary(t, p.notify(5*time.Second), "0/0 (0/0)", "active")
	checkSummary(t, p.notify(5*time.Second), "0/0 (0/0)", "terminated;reason=noresource")
}

// Members subscribed to a group mailbox see its changes.
func TestMWIGroupMailbox(t *testing.T) {
	t.Parallel()
	env := newMWIEnv(t)
	var peers []*mwiPeer
	for _, member := range []string{"1001", "1002"} {
		p := newMWIPeer(t, env.addr)
		p.subscribe(subOpts{callID: newCallID(), tag: member, cseq: 1, expires: 600, user: "8000", from: member})
		if r := p.response(5 * time.Second); r.StatusCode != 200 {
			t.Fatalf("member %s: %d", member, r.StatusCode)
		}
		checkSummary(t, p.notify(5*time.Second), "0/0 (0/0)", "active")
		peers = append(peers, p)
	}
	personal := newMWIPeer(t, env.addr)
	personal.subscribe(subOpts{callID: newCallID(), tag: "p", cseq: 1, expires: 600, user: "1001"})
	personal.response(5 * time.Second)
	personal.notify(5 * time.Second)

	env.deposit("8000", false)
	for _, p := range peers {
		checkSummary(t, p.notify(5*time.Second), "1/0 (0/0)", "active")
	}
	personal.quiet(1500 * time.Millisecond) // 1001's own box did not change
}

// Subscriptions survive a restart: every live one gets the current state,
// with a CSeq above the last one.
func TestMWIRestart(t *testing.T) {
	t.Parallel()
	env := newMWIEnv(t)
	p := newMWIPeer(t, env.addr)
	cid := newCallID()
	p.subscribe(subOpts{callID: cid, tag: "r", cseq: 1, expires: 600, event: "message-summary;id=7"})
	ok := p.response(5 * time.Second)
	toTag, _ := ok.To().Params.Get("tag")
	n := p.notify(5 * time.Second)
	last := n.CSeq().SeqNo
	// An expired subscription is terminated at the next start.
	q := newMWIPeer(t, env.addr)
	q.subscribe(subOpts{callID: newCallID(), tag: "q", cseq: 1, expires: 1})
	q.response(5 * time.Second)
	q.notify(5 * time.Second)

	env.stop()
	time.Sleep(1100 * time.Millisecond) // q's subscription runs out while we are down
	// Changed while the server was down.
	if err := env.raw.CreateMessage(context.Background(), &store.Message{Tenant: "default", Mailbox: "1001"}); err != nil {
		t.Fatal(err)
	}
	env.start()
	n = p.notify(5 * time.Second)
	checkSummary(t, n, "1/0 (0/0)", "active;expires=")
	if n.CallID().Value() != cid || hdr(n, "Event") != "message-summary;id=7" || n.CSeq().SeqNo <= last {
		t.Errorf("after restart: Call-ID %s Event %q CSeq %d (last %d)", n.CallID().Value(), hdr(n, "Event"), n.CSeq().SeqNo, last)
	}
	if tag, _ := n.From().Params.Get("tag"); tag != toTag {
		t.Errorf("From tag %q, want %q", tag, toTag)
	}
	// The start-up's reservation reaches the store: a crash now leaves the
	// next owner above every CSeq this one may send before saving again.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		subs, err := env.raw.ListMWISubscriptions(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(subs, func(s store.MWISubscription) bool { return s.CallID == cid })
		if i >= 0 && subs[i].LocalCSeq >= n.CSeq().SeqNo+cseqReserve/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored CSeqs after the restart's NOTIFY %d: %+v", n.CSeq().SeqNo, subs)
		}
	}
	checkSummary(t, q.notify(5*time.Second), "1/0 (0/0)", "terminated;reason=timeout")
	// The restored dialog still takes refreshes.
	p.subscribe(subOpts{callID: cid, tag: "r", toTag: toTag, cseq: 2, expires: 600, event: "message-summary;id=7"})
	if r := p.response(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("refresh after restart: %d", r.StatusCode)
	}
	checkSummary(t, p.notify(5*time.Second), "1/0 (0/0)", "active")
}

// Unsolicited NOTIFYs to mwi_targets; 481 stops them for good; a target
// that subscribes itself stops them too.

// TestDropMovedSparesInflight: a subscription in memory whose row is still
// being written (a slow disk, a busy database) is not taken for one that
// moved to another instance by the heartbeat's listing of owned rows.
// Before, it was dropped, which also freed its place under the caps.
func TestDropMovedSparesInflight(t *testing.T) {
	env := newMWIEnv(t)
	m := env.n
	e := &mwiEntry{mb: mbKey{"default", "1001"}, key: "inflight-test",
		sub: &store.MWISubscription{ID: store.NewMessageID(), Tenant: "default", Mailbox: "1001", CallID: "inflight-test"}}
	m.mu.Lock()
	e.inflight = true
	m.addLocked(e)
	e.since = time.Now().Add(-time.Minute) // long before the listing
	m.mu.Unlock()
	m.dropMoved(context.Background())
	m.mu.Lock()
	gone := e.gone
	e.inflight = false // stored by now, as far as the notifier knows
	m.mu.Unlock()
	if gone {
		t.Fatal("a subscription being stored was dropped as moved")
	}
	m.dropMoved(context.Background())
	m.mu.Lock()
	defer m.mu.Unlock()
	if !e.gone {
		t.Fatal("a stored entry missing from the owned rows was kept: the check no longer runs")
	}
}
