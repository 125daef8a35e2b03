//go:build failoverbench

package testcalls

// Full-size failover and rolling-restart figures for BENCHMARKS.md: not a
// timed test and not part of make test (build tag failoverbench: `go test
// -tags failoverbench -run TestClusterFailoverBench`); it logs what it
// measured (calls lost, time until the proxy stops routing to a dead
// instance, NOTIFY gap) next to the assertions that must hold at any speed.

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dispatcherActive asks Kamailio (kamcmd over its control socket) whether
// the destination addr is in rotation.
func (p *proxy) dispatcherActive(t *testing.T, addr string) (bool, error) {
	t.Helper()
	out, err := exec.Command("kamcmd", "-s", "unix:"+filepath.Join(p.dir, "kamailio_ctl"), "dispatcher.list").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("kamcmd dispatcher.list: %v: %s", err, out)
	}
	m := regexp.MustCompile(`URI: sip:` + regexp.QuoteMeta(addr) + `\s+FLAGS: (\w+)`).FindSubmatch(out)
	if m == nil {
		return false, fmt.Errorf("kamcmd dispatcher.list: %s not listed:\n%s", addr, out)
	}
	return strings.HasPrefix(string(m[1]), "A"), nil
}

// waitOutOfRotation returns how long after since the proxy took addr out.
func (p *proxy) waitOutOfRotation(t *testing.T, addr string, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	for time.Since(since) < timeout {
		active, err := p.dispatcherActive(t, addr)
		if err != nil {
			t.Error(err)
			return -1
		}
		if !active {
			return time.Since(since)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return -1
}

// tally sorts a sipp run's calls: completed, and failed by the instance
// that had answered them.
func tally(calls map[string]*sippCall) (completed int, failedOn map[string]int) {
	failedOn = map[string]int{}
	for _, c := range calls {
		if c.byeOK {
			completed++
		} else {
			failedOn[c.contact]++
		}
	}
	return completed, failedOn
}

func TestClusterFailoverBench(t *testing.T) {
	c := startCluster(t, mediaS3, 3)
	p := startProxy(t, c.inst)
	const victim = 2
	var phones []*udpTarget
	holders := map[int]int{}
	for i := 0; i < 6; i++ {
		u := newUDPTarget(t, 0)
		subscribeUDP(t, u, p.addr(), "1002")
		holders[i] = sentBy(u.wait(t, "Voice-Message: 0/0"), c.inst)
		phones = append(phones, u)
	}

	// 1. 150 deposits (12 s of audio each), SIGKILL of one instance once all
	// are in progress; 20 more calls during the 10 s after.
	load := sippDeposits(t, p.addr(), "1001", "+1415557", 150, 150, 15, 14000)
	time.Sleep(11 * time.Second)
	dead := c.inst[victim]
	deadAddr := dead.sipAddr()
	dead.kill()
	killedAt := time.Now()
	during := sippDeposits(t, p.addr(), "1001", "+1415558", 20, 20, 2, 14000)
	mwiFrom := make([]int, len(phones))
	for i, u := range phones {
		mwiFrom[i] = u.count()
	}
	mwi := sippDeposits(t, p.addr(), "1002", "+1415559", 1, 1, 1, 8000)
	reroute := p.waitOutOfRotation(t, deadAddr, killedAt, 30*time.Second)
	sippOK(t, mwi, "deposit for 1002 after the kill")
	mwiDone := time.Now()
	var gaps []string
	for i, u := range phones {
		at, _ := waitRequest(t, u, "Voice-Message: 1/0", mwiFrom[i], 30*time.Second)
		if at.IsZero() {
			gaps = append(gaps, fmt.Sprintf("phone %d (held by %d): none in 30 s", i, holders[i]))
			if holders[i] != victim {
				t.Errorf("phone %d on a live instance got no NOTIFY", i)
			}
			continue
		}
		gaps = append(gaps, fmt.Sprintf("phone %d (held by %d): %v after the deposit, %v after the kill",
			i, holders[i], at.Sub(mwiDone).Round(time.Millisecond), at.Sub(killedAt).Round(time.Millisecond)))
	}
	res, _ := load.wait(120 * time.Second)
	loadCalls := sippCalls(res.msgLog)
	done, failedOn := tally(loadCalls)
	res2, _ := during.wait(120 * time.Second)
	duringCalls := sippCalls(res2.msgLog)
	done2, failed2 := tally(duringCalls)
	onDead := 0
	for _, call := range loadCalls {
		if call.contact == deadAddr {
			onDead++
		}
	}
	for addr, n := range failedOn {
		if addr != deadAddr {
			t.Errorf("failover: %d calls on live instance %s failed", n, addr)
		}
	}
	if done2 != len(duringCalls) {
		t.Errorf("failover: %d of %d calls placed after the kill failed: %v", len(duringCalls)-done2, len(duringCalls), failed2)
	}
	t.Logf("FAILOVER: %d calls, %d on the killed instance; completed %d; lost %v; out of the proxy's rotation %v after the kill; calls after the kill: %d/%d completed; NOTIFY: %s",
		len(loadCalls), onDead, done, failedOn, reroute.Round(10*time.Millisecond), done2, len(duringCalls), strings.Join(gaps, "; "))

	// 2. Rolling restart (SIGTERM, drain, start again, next) under ~100
	// concurrent deposits. Calls last 14 s: the greeting and instructions
	// take ~5.5 s, and on a loaded machine an 8 s call may end before its
	// recording reaches recording.min_seconds (then rightly no message).
	c.restart(victim)
	time.Sleep(3 * time.Second)
	roll := sippDeposits(t, p.addr(), "1001", "+1415560", 450, 100, 10, 14000)
	time.Sleep(10 * time.Second)
	var steps []string
	for i := range c.inst {
		s := c.inst[i]
		termAt := time.Now()
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		out := p.waitOutOfRotation(t, s.sipAddr(), termAt, 30*time.Second)
		select {
		case <-s.exited:
		case <-time.After(90 * time.Second):
			t.Fatalf("instance %d still running 90 s after SIGTERM", i)
		}
		s.stopOnce.Do(func() {})
		if s.waitErr != nil {
			t.Errorf("instance %d exited with %v after SIGTERM, want 0", i, s.waitErr)
		}
		drained := time.Since(termAt)
		c.restart(i)
		back := time.Now()
		for {
			if active, err := p.dispatcherActive(t, c.inst[i].sipAddr()); err != nil || active || time.Since(back) > 20*time.Second {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		steps = append(steps, fmt.Sprintf("instance %d: out of rotation %v after SIGTERM, exited after %v, back in rotation %v after start",
			i, out.Round(10*time.Millisecond), drained.Round(100*time.Millisecond), time.Since(back).Round(10*time.Millisecond)))
	}
	res3, _ := roll.wait(180 * time.Second)
	rollCalls := sippCalls(res3.msgLog)
	done3, failed3 := tally(rollCalls)
	if done3 != len(rollCalls) {
		t.Errorf("rolling restart: %d of %d calls failed: %v\n%s", len(rollCalls)-done3, len(rollCalls), failed3, tail(abortLines(res3.errLog), 40))
	}
	t.Logf("ROLLING: %d calls (≤100 at once), %d completed, failed by instance %v; %s",
		len(rollCalls), done3, failed3, strings.Join(steps, "; "))

	// Every completed call of both runs is a message.
	want := 0
	for _, calls := range []map[string]*sippCall{loadCalls, duringCalls, rollCalls} {
		for _, call := range calls {
			if call.byeOK {
				want++
			}
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	got := len(c.rows())
	for got < want && time.Now().Before(deadline) {
		time.Sleep(time.Second)
		got = len(c.rows())
	}
	if got < want {
		t.Errorf("%d calls completed, only %d messages after 60 s", want, got)
		prefixes := map[string]int{}
		for _, r := range c.rows() {
			d := digits(r.CallerID)
			prefixes[d[:min(len(d), 7)]]++
		}
		lines := map[string]int{}
		for _, s := range c.procs {
			for _, l := range strings.Split(s.log.String(), "\n") {
				if m := regexp.MustCompile(`"msg":"([^"]+)"`).FindStringSubmatch(l); m != nil {
					lines[m[1]]++
				}
			}
		}
		t.Logf("rows by caller prefix %v; server log lines %v", prefixes, lines)
	}
	t.Logf("MESSAGES: %d completed calls, %d message rows (recovered parts of the killed calls included)", want, got)
}
