package mwi

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/vmserver/voicemail/call"
	"github.com/vmserver/voicemail/internal/pgtest"
	"github.com/vmserver/voicemail/internal/testlog"
	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/prompts"
	vsip "github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/store"
)

// pgServer is the PostgreSQL server of the cluster tests (nil when none is
// installed outside CI: they skip; under CI=true, TestMain fails).
var pgServer *pgtest.Server

func TestMain(m *testing.M) { pgtest.Main(m, &pgServer) }

// Short heartbeats keep the takeover tests quick: an instance is dead
// 3 s after its last heartbeat (a loaded CI machine, with PostgreSQL
// busy with other tests, may delay several).
const (
	testHeartbeat = 250 * time.Millisecond
	testTTL       = 3 * time.Second
)

// clusterInstance is one voicemail instance: its own store handle (its own
// connections, as another process has), change follower, SIP server and
// notifier, all on the one PostgreSQL database.
type clusterInstance struct {
	name string
	st   store.Store
	n    *Notifier
	addr *net.UDPAddr
	kill func(release bool)
}

// newClusterDB creates a database with the default tenant and the
// mailboxes 1001 (whose unsolicited targets are targets) and 1002.
func newClusterDB(t testing.TB, targets ...string) string {
	t.Helper()
	dsn := pgtest.Require(t, pgServer).NewDatabase(t)
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateTenant(ctx, &store.Tenant{Name: "default"}); err != nil {
		t.Fatal(err)
	}
	for _, mb := range []store.Mailbox{
		{Tenant: "default", Number: "1001", Name: "Alice", MWITargets: targets},
		{Tenant: "default", Number: "1002", Name: "Bob"},
	} {
		if err := st.CreateMailbox(ctx, &mb); err != nil {
			t.Fatal(err)
		}
	}
	return dsn
}

// startInstance starts an instance named name on dsn.
func startInstance(t testing.TB, dsn, name string) *clusterInstance {
	t.Helper()
	ctx := context.Background()
	raw, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	bus := store.NewChanges()
	st := store.Notifying(raw, bus)
	// The instance's MWI log is shown when the test fails: takeovers and
	// drops are logged.
	var logs testlog.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of instance %s:\n%s", name, mwiLines(logs.String()))
		}
	})
	dir := t.TempDir()
	blobs, err := store.NewFSBlobs(filepath.Join(dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := media.NewEngine(media.EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 40200, PortMax: 40300, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := prompts.Load("")
	if err != nil {
		t.Fatal(err)
	}
	calls := call.New(call.Config{Recording: call.Recording{MaxSeconds: 60, MinSeconds: 1, SilenceSeconds: 10}},
		call.Deps{Store: st, Blobs: blobs, Prompts: ps, Logger: log})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().(*net.UDPAddr)
	pc.Close()
	srv, err := vsip.New(vsip.Config{
		Listeners: []vsip.Listener{{Transport: "udp", Addr: addr.String()}},
		PublicIP:  net.IPv4(127, 0, 0, 1), AccessNumbers: []string{"5555"}, MaxCalls: 10,
	}, vsip.Deps{Store: st, Engine: eng, Calls: calls, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	n := New(Deps{Server: srv, Store: st, Changes: bus, Logger: log, Instance: name, Heartbeat: testHeartbeat, InstanceTTL: testTTL})
	lctx, cancel := context.WithCancel(ctx)
	if err := srv.Listen(lctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	in := &clusterInstance{name: name, st: st, n: n, addr: addr}
	var once sync.Once
	in.kill = func(release bool) {
		once.Do(func() {
			n.stop(release)
			cancel()
			srv.Close()
			eng.Close()
			st.Close()
		})
	}
	t.Cleanup(func() { in.kill(true) })
	return in
}

// mwiLines keeps the lines of the mwi component.
func mwiLines(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "component=mwi") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// deposit adds a message to 1001 through the instance's store.
func (in *clusterInstance) deposit(t *testing.T) {
	t.Helper()
	if err := in.st.CreateMessage(context.Background(), &store.Message{Tenant: "default", Mailbox: "1001", CallerID: "2002", DurationMS: 3000}); err != nil {
		t.Fatal(err)
	}
}

// checkFrom checks that the NOTIFY came from in: its Contact is in's
// listener (its Via may name another socket).
func checkFrom(t *testing.T, n *sip.Request, in *clusterInstance) {
	t.Helper()
	if c := n.Contact(); c == nil || c.Address.Port != in.addr.Port {
		t.Errorf("NOTIFY not from instance %s (%v):\n%s", in.name, in.addr, n)
	}
}

// Two instances on one PostgreSQL: a subscription held by A is notified by
// A alone, unsolicited targets by one instance alone; when A dies (no
// release), B takes A's subscription and the targets within 10 s, with a
// CSeq above A's last, and keeps notifying.
func TestMWIClusterTakeover(t *testing.T) {
	t.Parallel()
	tgt := newMWIPeer(t, nil)
	dsn := newClusterDB(t, fmt.Sprintf("sip:1001@127.0.0.1:%d", tgt.port()))
	a := startInstance(t, dsn, "A")
	b := startInstance(t, dsn, "B")
	// The first instance holds the targets: one NOTIFY with the state.
	checkSummary(t, tgt.notify(5*time.Second), "0/0 (0/0)", "active")

	p := newMWIPeer(t, a.addr)
	cid := newCallID()
	p.subscribe(subOpts{callID: cid, tag: "k", cseq: 1, expires: 600})
	ok := p.response(5 * time.Second)
	if ok.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE answered %d", ok.StatusCode)
	}
	toTag, _ := ok.To().Params.Get("tag")
	n := p.notify(5 * time.Second)
	checkSummary(t, n, "0/0 (0/0)", "active")
	checkFrom(t, n, a)
	tgt.quiet(time.Second)

	// A deposit through B: one NOTIFY, from A; the target gets one too.
	b.deposit(t)
	n = p.notify(5 * time.Second)
	checkSummary(t, n, "1/0 (0/0)", "active")
	checkFrom(t, n, a)
	checkSummary(t, tgt.notify(5*time.Second), "1/0 (0/0)", "active")
	p.quiet(1500 * time.Millisecond)
	tgt.quiet(100 * time.Millisecond)
	last := n.CSeq().SeqNo

	// A dies: no release, its heartbeat and lease run out.
	died := time.Now()
	a.kill(false)
	n = p.notify(10 * time.Second)
	if d := time.Since(died); d > 10*time.Second {
		t.Errorf("takeover after %v", d)
	}
	checkSummary(t, n, "1/0 (0/0)", "active;expires=")
	checkFrom(t, n, b)
	if n.CallID().Value() != cid || n.CSeq().SeqNo <= last {
		t.Errorf("after takeover: Call-ID %s CSeq %d (A's last %d)", n.CallID().Value(), n.CSeq().SeqNo, last)
	}
	if tag, _ := n.From().Params.Get("tag"); tag != toTag {
		t.Errorf("From tag %q after takeover, want %q", tag, toTag)
	}
	// B took the targets too: they get the state once.
	checkSummary(t, tgt.notify(10*time.Second), "1/0 (0/0)", "active")
	p.quiet(500 * time.Millisecond)
	tgt.quiet(100 * time.Millisecond)

	// And keeps notifying.
	last = n.CSeq().SeqNo
	b.deposit(t)
	n = p.notify(5 * time.Second)
	checkSummary(t, n, "2/0 (0/0)", "active")
	if n.CSeq().SeqNo <= last {
		t.Errorf("CSeq %d after %d", n.CSeq().SeqNo, last)
	}
	checkSummary(t, tgt.notify(5*time.Second), "2/0 (0/0)", "active")
	p.quiet(1500 * time.Millisecond)
	tgt.quiet(100 * time.Millisecond)
	if got := metric(t, b.n, "voicemail_mwi_subscriptions_taken_total", ""); got != 1 {
		t.Errorf("taken instance_gone = %v, want 1", got)
	}
}

// subscribeOnce subscribes p (CSeq 1) and returns the dialog's Call-ID,
// our tag and the CSeq of the first NOTIFY.
func subscribeOnce(p *mwiPeer) (callID, toTag string, notifyCSeq uint32) {
	callID = newCallID()
	p.subscribe(subOpts{callID: callID, tag: "m", cseq: 1, expires: 600})
	toTag, _ = p.response(5 * time.Second).To().Params.Get("tag")
	return callID, toTag, p.notify(5 * time.Second).CSeq().SeqNo
}

// refreshAt sends the dialog's refresh (CSeq 2) to instance in, which
// must answer 200.
func refreshAt(t *testing.T, p *mwiPeer, in *clusterInstance, callID, toTag string) {
	t.Helper()
	p.server = in.addr
	p.subscribe(subOpts{callID: callID, tag: "m", toTag: toTag, cseq: 2, expires: 600})
	if r := p.response(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("refresh at %s answered %d", in.name, r.StatusCode)
	}
}

// A refresh that the proxy routes to another instance moves the dialog
// there: B answers and notifies, A stops; a clean stop of B hands it to
// A at A's next heartbeat.
func TestMWIClusterRefreshMoves(t *testing.T) {
	t.Parallel()
	dsn := newClusterDB(t)
	a := startInstance(t, dsn, "A")
	b := startInstance(t, dsn, "B")
	p := newMWIPeer(t, a.addr)
	cid, toTag, last := subscribeOnce(p)
	refreshAt(t, p, b, cid, toTag)
	n := p.notify(5 * time.Second)
	checkSummary(t, n, "0/0 (0/0)", "active")
	checkFrom(t, n, b)
	if n.CSeq().SeqNo <= last {
		t.Errorf("B's CSeq %d, A's last %d", n.CSeq().SeqNo, last)
	}
	waitFor(t, func() bool { return gauge(t, a.n, "voicemail_mwi_subscriptions") == 0 })

	a.deposit(t)
	n = p.notify(5 * time.Second)
	checkSummary(t, n, "1/0 (0/0)", "active")
	checkFrom(t, n, b)
	p.quiet(1500 * time.Millisecond)

	// A clean stop releases at once: A takes over at its next heartbeat,
	// long before B's heartbeat would have run out.
	last = n.CSeq().SeqNo
	b.kill(true)
	n = p.notify(5 * time.Second)
	checkSummary(t, n, "1/0 (0/0)", "active")
	checkFrom(t, n, a)
	if n.CSeq().SeqNo <= last {
		t.Errorf("A's CSeq %d, B's last %d", n.CSeq().SeqNo, last)
	}
	p.quiet(time.Second)
}

// A subscription that moved is dropped even when a row of the old owner
// that its memory does not hold (here: written behind its back) makes the
// stored count equal what memory holds: the full list, every
// fullCheckEvery heartbeats, finds it.
func TestMWIClusterMoveHiddenByStrayRow(t *testing.T) {
	t.Parallel()
	dsn := newClusterDB(t)
	a := startInstance(t, dsn, "A")
	b := startInstance(t, dsn, "B")
	p := newMWIPeer(t, a.addr)
	cid, toTag, _ := subscribeOnce(p)
	stray := &store.MWISubscription{ID: "stray", Tenant: "default", Mailbox: "1002", CallID: "stray@x",
		LocalTag: "l", RemoteTag: "r", LocalURI: "sip:1002@127.0.0.1", RemoteURI: "sip:2002@127.0.0.1",
		Contact: "sip:2002@127.0.0.1:9", Transport: "UDP", Source: "127.0.0.1:9",
		ExpiresAt: time.Now().Add(time.Hour), Owner: "A"}
	if err := a.st.SaveMWISubscription(context.Background(), stray); err != nil {
		t.Fatal(err)
	}
	refreshAt(t, p, b, cid, toTag)
	if n, err := a.st.CountOwnedMWISubscriptions(context.Background(), "A"); err != nil || n != 1 {
		t.Fatalf("A owns %d stored subscriptions (%v), want the stray one", n, err)
	}
	waitFor(t, func() bool { return gauge(t, a.n, "voicemail_mwi_subscriptions") == 0 })
}

// A target that subscribes on an instance that does not send the
// unsolicited NOTIFYs stops them there too: the holder reads the stop.
func TestMWIClusterTargetSubscribes(t *testing.T) {
	t.Parallel()
	tgt := newMWIPeer(t, nil)
	dsn := newClusterDB(t, fmt.Sprintf("sip:1001@127.0.0.1:%d", tgt.port()))
	a := startInstance(t, dsn, "A")
	b := startInstance(t, dsn, "B")
	checkSummary(t, tgt.notify(5*time.Second), "0/0 (0/0)", "active")
	if gauge(t, a.n, "voicemail_mwi_unsolicited_targets") != 1 || gauge(t, b.n, "voicemail_mwi_unsolicited_targets") != 0 {
		t.Fatal("A, which started first, must hold the targets alone")
	}
	tgt.server = b.addr
	tgt.subscribe(subOpts{callID: newCallID(), tag: "t", cseq: 1, expires: 600})
	if r := tgt.response(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE answered %d", r.StatusCode)
	}
	checkFrom(t, tgt.notify(5*time.Second), b)
	waitFor(t, func() bool { return gauge(t, a.n, "voicemail_mwi_unsolicited_targets") == 0 })
	a.deposit(t)
	n := tgt.notify(5 * time.Second)
	if _, ok := n.To().Params.Get("tag"); !ok {
		t.Fatalf("an unsolicited NOTIFY after the target subscribed:\n%s", n)
	}
	checkSummary(t, n, "1/0 (0/0)", "active")
	checkFrom(t, n, b)
	tgt.quiet(1500 * time.Millisecond)
}
