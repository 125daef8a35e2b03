package testcalls

// Three `voicemail serve` processes on one PostgreSQL and one media store
// behave as one server (docs/storage.md, docs/mwi.md): deposits on any
// instance reach the subscribers, the API and the webhooks of every other;
// SIGKILL of one loses no committed message and leaves no orphan media.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClusterThreeInstances runs once with the media in a versitygw bucket
// and once in one folder shared by the three instances.
func TestClusterThreeInstances(t *testing.T) {
	// Not parallel: a heavy test runs before the two dozen parallel call
	// tests, alone, so that real phones and proxies are not starved on a
	// 2-core machine (testcalls/README.md).
	for _, mode := range []clusterMedia{mediaS3, mediaFile} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			clusterThreeInstances(t, mode)
		})
	}
}

func clusterThreeInstances(t *testing.T, mode clusterMedia) {
	c := startCluster(t, mode, 3)
	a, b, cc := c.inst[0], c.inst[1], c.inst[2]
	hooks, hookID := signedHooks(t, b)

	// A phone subscribed on C to 1001, another subscribed on A to 1002.
	onC := newUDPTarget(t, 0)
	subscribeUDP(t, onC, cc.sipAddr(), "1001")
	onC.wait(t, "Voice-Message: 0/0")
	onA := newUDPTarget(t, 0)
	subscribeUDP(t, onA, a.sipAddr(), "1002")
	first := onA.wait(t, "Voice-Message: 0/0")
	subCallID := reCallID.FindStringSubmatch(first)

	// Two deposits on each instance at once: the phone on C counts all six,
	// four of which only A and B saw.
	var procs []*sippProc
	for i, s := range c.inst {
		procs = append(procs, sippDeposits(t, s.sipAddr(), "1001", fmt.Sprintf("+141555%d1", i), 2, 2, 2, 8000))
	}
	for i, p := range procs {
		sippOK(t, p, fmt.Sprintf("deposits on instance %c", 'A'+i))
	}
	at, n := waitRequest(t, onC, "Voice-Message: 6/0", 0, 15*time.Second)
	if at.IsZero() {
		t.Fatalf("C's subscriber got no NOTIFY 6/0 within 15 s of the deposits on A, B and C; rows %+v; it got:\n%s",
			c.rows(), strings.Join(onC.all(), "\n----\n"))
	}
	if !strings.Contains(n, "Messages-Waiting: yes") {
		t.Errorf("NOTIFY 6/0 on C lacks Messages-Waiting: yes:\n%s", n)
	}

	// B lists every message, A's included, and serves it sample for sample,
	// the same bytes as the stored object.
	msgs := b.waitMessages(t, "1001", 6, 20*time.Second)
	if len(msgs) != 6 {
		t.Fatalf("B lists %d messages in 1001, want 6", len(msgs))
	}
	for _, m := range msgs {
		got := b.audio(t, "1001", m.ID)
		checkStretch(t, "message "+m.ID+" from "+m.CallerID+" served by B", got)
		if obj, ok := c.object(keyOf("1001", m.ID)); !ok || !bytes.Equal(obj, got) {
			t.Errorf("B's audio of %s differs from the stored object (present %v)", m.ID, ok)
		}
	}

	// SIGKILL of A in the middle of 20 deposits.
	p := sippDeposits(t, a.sipAddr(), "1001", "+14155559", 20, 20, 2, 8000)
	deadline := time.Now().Add(20 * time.Second)
	for len(c.rows()) < 9 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if len(c.rows()) < 9 {
		t.Errorf("A committed fewer than 3 of the 20 deposits in 20 s")
	}
	a.kill()
	killedAt := time.Now()
	// A deposit for A's subscriber, taken by B while A is dead.
	from := onA.count()
	takeover := sippDeposits(t, b.sipAddr(), "1002", "+14155558", 1, 1, 1, 8000)
	time.Sleep(2 * time.Second)
	p.kill()
	calls := sippCalls(p.res.msgLog)
	var done []string
	for _, call := range calls {
		if call.byeOK {
			done = append(done, call.caller)
		}
	}
	t.Logf("kill -9 of A: %d calls in the trace, %d ended with 200 to BYE, %d rows now", len(calls), len(done), len(c.rows()))

	// A's subscriber keeps being notified by another instance.
	sippOK(t, takeover, "deposit on B for A's subscriber")
	depositDone := time.Now()
	at, n = waitRequest(t, onA, "Voice-Message: 1/0", from, 20*time.Second)
	ref := depositDone
	if killedAt.After(ref) {
		ref = killedAt
	}
	if at.IsZero() {
		t.Errorf("A's subscriber got no NOTIFY for 1002 within 20 s of a deposit on B after A died")
	} else {
		if d := at.Sub(ref); d > 10*time.Second {
			t.Errorf("A's subscriber notified %v after A died and the deposit ended; want within 10 s", d.Round(time.Millisecond))
		}
		if subCallID != nil && !strings.Contains(n, subCallID[1]) {
			t.Errorf("NOTIFY after takeover is not in the subscription dialog (Call-ID %s):\n%s", subCallID[1], n)
		}
		if !strings.Contains(n, "Messages-Waiting: yes") {
			t.Errorf("takeover NOTIFY lacks Messages-Waiting: yes:\n%s", n)
		}
		t.Logf("A's subscriber notified %v after the deposit on B ended (A dead for %v)", at.Sub(depositDone).Round(time.Millisecond), at.Sub(killedAt).Round(time.Millisecond))
	}

	// A starts again (same SIP port, same spool): recovery leaves media and
	// table in agreement, and every message A committed is listed and playable.
	a = c.restart(0)
	c.waitConsistent(20 * time.Second)
	rows := c.rows()
	listed := map[string]apiMessage{}
	for _, mb := range []string{"1001", "1002"} {
		for _, m := range b.messages(t, mb) {
			listed[m.ID] = m
		}
	}
	byCaller := map[string]bool{}
	doneOnA := map[string]bool{}
	for _, caller := range done {
		doneOnA[digits(caller)] = true
	}
	ids := map[string]string{}
	for _, r := range rows {
		ids[r.ID] = "caller " + r.CallerID
		if strings.HasPrefix(digits(r.CallerID), "14155559") && !doneOnA[digits(r.CallerID)] {
			ids[r.ID] += ", in progress on A at the kill"
		}
		byCaller[digits(r.CallerID)] = true
		m, ok := listed[r.ID]
		if !ok {
			t.Errorf("row %s (caller %s) is not listed by B", r.ID, r.CallerID)
			continue
		}
		if strings.HasPrefix(digits(m.CallerID), "14155559") {
			checkStretch(t, "message "+r.ID+" deposited on A before the kill", b.audio(t, r.Mailbox, r.ID))
		}
	}
	for _, caller := range done {
		if !byCaller[digits(caller)] {
			t.Errorf("call from %s ended normally on A before the kill but has no message", caller)
		}
	}
	if len(listed) != len(rows) {
		t.Errorf("B lists %d messages, the table holds %d", len(listed), len(rows))
	}
	if !checkOncePerMessage(t, hooks, ids, 30*time.Second) {
		seen := map[string]bool{}
		hooks.mu.Lock()
		for _, e := range hooks.events {
			seen[e.objectID()] = true
		}
		hooks.mu.Unlock()
		for id := range ids {
			if !seen[id] {
				t.Logf("webhook: message %s: %s", id, c.webhookJobs(id))
			}
		}
		t.Logf("webhook deliveries recorded by the server: %+v", b.deliveries(t, hookID))
	}
	_ = a
}

// object reads a message's audio from the shared media behind the servers.
func (c *cluster) object(key string) ([]byte, bool) {
	c.t.Helper()
	if c.mode == mediaS3 {
		return s3Bucket{c.s3, c.s3cl}.get(c.t, key)
	}
	b, err := os.ReadFile(filepath.Join(c.mediaDir, filepath.FromSlash(key)))
	return b, err == nil
}

// waitRequest is udpTarget.waitAt with its own timeout, returning the zero
// time instead of failing.
func waitRequest(t *testing.T, u *udpTarget, want string, from int, timeout time.Duration) (time.Time, string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		u.mu.Lock()
		for i := from; i < len(u.got); i++ {
			if strings.Contains(u.got[i], want) {
				at, m := u.at[i], u.got[i]
				u.mu.Unlock()
				return at, m
			}
		}
		u.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	return time.Time{}, ""
}

// all returns every request the target got.
func (u *udpTarget) all() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.got...)
}
