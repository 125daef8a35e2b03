package testcalls

// Failover behind the front proxy (deploy/kamailio, docs/operations.md):
// Kamailio + three instances + PostgreSQL + versitygw on loopback; one
// instance is killed with SIGKILL under ~30 concurrent deposits.

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestClusterFailoverKamailio(t *testing.T) {
	// Not parallel: a heavy test runs before the two dozen parallel call
	// tests, alone, so that real phones and proxies are not starved on a
	// 2-core machine (testcalls/README.md).
	c := startCluster(t, mediaS3, 3)
	p := startProxy(t, c.inst)

	// baresip registers through the proxy and subscribes; a deposit taken
	// by another instance than the one holding its subscription lights it.
	phone := startProxiedBaresip(t, p, "1001")
	first, _ := phone.waitNotify(t, "Messages-Waiting: no", 0, 20*time.Second)
	holder := sentBy(first, c.inst)
	if holder < 0 {
		t.Fatalf("baresip's first NOTIFY came through no known instance (Via ports %v):\n%s", viaPorts(first), first)
	}
	other := (holder + 1) % 3
	t.Logf("baresip's subscription is held by instance %d; depositing on instance %d", holder, other)
	sippOK(t, sippDeposits(t, c.inst[other].sipAddr(), "1001", "+14155560", 1, 1, 1, 8000), "deposit for baresip")
	lit, _ := phone.waitNotify(t, "Messages-Waiting: yes", 0, 10*time.Second)
	if !strings.Contains(lit, "Voice-Message: 1/0") {
		t.Errorf("baresip's NOTIFY after the deposit does not count 1 new message:\n%s", lit)
	}
	// baresip itself took it: its mwi module hands the body to the menu.
	if !regexp.MustCompile(`----- MWI for sip:1001@127\.0\.0\.1 -----\s+Messages-Waiting: yes`).MatchString(phone.out.String()) {
		t.Errorf("baresip did not report Messages-Waiting: yes (menu module line missing)")
	}

	clusterFailover(t, c, p)
}

// clusterFailover: ~30 deposits through the proxy, SIGKILL of one instance
// in the middle; then calls during and after the kill, MWI, and the
// instance's return.
func clusterFailover(t *testing.T, c *cluster, p *proxy) {
	const victim = 1
	// Three phones subscribed to 1002 through the proxy (round robin: one
	// subscription per instance, likely).
	var phones []*udpTarget
	for i := 0; i < 3; i++ {
		u := newUDPTarget(t, 0)
		subscribeUDP(t, u, p.addr(), "1002")
		phones = append(phones, u)
	}
	holders := map[int]int{}
	for i, u := range phones {
		holders[i] = sentBy(u.wait(t, "Voice-Message: 0/0"), c.inst)
	}
	t.Logf("1002's subscriptions are held by instances %v", holders)

	load := sippDeposits(t, p.addr(), "1001", "+14155561", 30, 30, 10, 8000)
	time.Sleep(7 * time.Second) // every call answered, most recording
	dead := c.inst[victim]
	dead.kill()
	killedAt := time.Now()
	during := sippDeposits(t, p.addr(), "1001", "+14155562", 10, 10, 2, 8000)
	time.Sleep(6 * time.Second)
	after := sippDeposits(t, p.addr(), "1001", "+14155563", 6, 6, 3, 8000)
	mwiFrom := make([]int, len(phones))
	for i, u := range phones {
		mwiFrom[i] = u.count()
	}
	sippOK(t, sippDeposits(t, p.addr(), "1002", "+14155564", 1, 1, 1, 8000), "deposit for 1002 after the kill")
	mwiDeposit := time.Now()

	deadAddr := dead.sipAddr()
	check := func(name string, sp *sippProc, wantAll bool, notDead bool) map[string]*sippCall {
		res, ok := sp.wait(60 * time.Second)
		if !ok {
			t.Errorf("%s: sipp did not finish in 60 s", name)
		}
		calls := sippCalls(res.msgLog)
		var held, okOthers, failed int
		for _, call := range calls {
			switch {
			case call.contact == deadAddr && !call.byeOK:
				held++
				if notDead {
					t.Errorf("%s: call from %s was routed to the dead instance", name, call.caller)
				}
			case call.byeOK:
				okOthers++
				if notDead && call.contact == deadAddr {
					t.Errorf("%s: call from %s was routed to the dead instance", name, call.caller)
				}
			default:
				failed++
				if wantAll || call.contact != deadAddr {
					t.Errorf("%s: call from %s (answered by %q) did not complete", name, call.caller, call.contact)
				}
			}
		}
		t.Logf("%s: %d calls, %d completed, %d ended with the dead instance, %d others failed", name, len(calls), okOthers, held, failed)
		return calls
	}
	loadCalls := check("30 deposits, kill in the middle", load, false, false)
	check("10 deposits in the 5 s after the kill", during, true, false)
	check("6 deposits from 6 s after the kill", after, true, true)

	// Every call that completed is a message, sample for sample.
	var want []*sippCall
	for _, sp := range []*sippProc{load, during, after} {
		for _, call := range sippCalls(sp.res.msgLog) {
			if call.byeOK {
				want = append(want, call)
			}
		}
	}
	byCaller := map[string]apiMessage{}
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, m := range c.inst[0].messages(t, "1001") {
			byCaller[digits(m.CallerID)] = m
		}
		missing := 0
		for _, call := range want {
			if _, ok := byCaller[digits(call.caller)]; !ok {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, call := range want {
		m, ok := byCaller[digits(call.caller)]
		if !ok {
			t.Errorf("completed call from %s (instance %s) has no message after 15 s", call.caller, call.contact)
			continue
		}
		checkStretch(t, "message from "+call.caller, c.inst[0].audio(t, "1001", m.ID))
	}
	heldByDead := 0
	for _, call := range loadCalls {
		if call.contact == deadAddr {
			heldByDead++
		}
	}
	if heldByDead == 0 {
		t.Errorf("no call of the 30 was on the killed instance: the kill tested nothing")
	}

	// MWI keeps working for every phone, the dead instance's included.
	for i, u := range phones {
		at, n := waitRequest(t, u, "Voice-Message: 1/0", mwiFrom[i], 15*time.Second)
		switch {
		case at.IsZero():
			t.Errorf("phone %d (subscription held by instance %d, killed %d) got no NOTIFY 1/0 after a deposit for 1002", i, holders[i], victim)
		case sentBy(n, c.inst) == victim:
			t.Errorf("phone %d: NOTIFY claims to come from the dead instance", i)
		default:
			t.Logf("phone %d (held by %d): NOTIFY %v after the deposit ended, %v after the kill", i, holders[i], at.Sub(mwiDeposit).Round(time.Millisecond), at.Sub(killedAt).Round(time.Millisecond))
		}
	}

	// Back again: the proxy sends it calls once it answers its probes.
	back := c.restart(victim)
	time.Sleep(3 * time.Second) // a probe every second, back after one 2xx
	again := sippDeposits(t, p.addr(), "1001", "+14155565", 6, 6, 3, 8000)
	calls := check("6 deposits after the restart", again, true, false)
	onBack := 0
	for _, call := range calls {
		if call.contact == back.sipAddr() && call.byeOK {
			onBack++
		}
	}
	if onBack == 0 {
		t.Errorf("the restarted instance took none of 6 calls")
	}
	t.Logf("the restarted instance took %d of 6 calls", onBack)
}
