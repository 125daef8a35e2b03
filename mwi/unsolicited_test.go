package mwi

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmserver/voicemail/store"
)

func TestMWIUnsolicited(t *testing.T) {
	t.Parallel()
	env := newMWIEnv(t)
	a, b, c := newMWIPeer(t, env.addr), newMWIPeer(t, env.addr), newMWIPeer(t, env.addr)
	ctx := context.Background()
	mb, _ := env.st.GetMailbox(ctx, "default", "1001")
	mb.MWITargets = []string{
		fmt.Sprintf("sip:1001@127.0.0.1:%d", a.port()),
		fmt.Sprintf("sip:1001@127.0.0.1:%d", b.port()),
		fmt.Sprintf("sip:1001@127.0.0.1:%d", c.port()),
	}
	if err := env.st.UpdateMailbox(ctx, mb); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*mwiPeer{a, b, c} {
		n := p.notify(5 * time.Second)
		checkSummary(t, n, "0/0 (0/0)", "active")
		if _, ok := n.To().Params.Get("tag"); ok {
			t.Errorf("unsolicited NOTIFY with a To-tag:\n%s", n)
		}
		if hdr(n, "Subscription-State") != "active" || hdr(n, "Event") != "message-summary" {
			t.Errorf("unsolicited NOTIFY headers:\n%s", n)
		}
	}
	a.answer.Store(481)
	env.deposit("1001", false)
	first := a.notify(5 * time.Second)
	checkSummary(t, first, "1/0 (0/0)", "active")
	checkSummary(t, b.notify(5*time.Second), "1/0 (0/0)", "active")
	checkSummary(t, c.notify(5*time.Second), "1/0 (0/0)", "active")
	// c subscribes itself.
	c.subscribe(subOpts{callID: newCallID(), tag: "c", cseq: 1, expires: 600})
	c.response(5 * time.Second)
	checkSummary(t, c.notify(5*time.Second), "1/0 (0/0)", "active")
	waitFor(t, func() bool { return gauge(t, env.n, "voicemail_mwi_unsolicited_targets") == 1 })

	time.Sleep(1100 * time.Millisecond)
	env.deposit("1001", false)
	checkSummary(t, b.notify(5*time.Second), "2/0 (0/0)", "active")
	n := c.notify(5 * time.Second) // in its dialog only
	if _, ok := n.To().Params.Get("tag"); !ok {
		t.Errorf("c got an unsolicited NOTIFY after subscribing:\n%s", n)
	}
	a.quiet(time.Second)
	c.quiet(500 * time.Millisecond)

	// The stops survive a restart; b still gets the state at start-up.
	env.restart()
	checkSummary(t, b.notify(5*time.Second), "2/0 (0/0)", "active")
	if n := c.notify(5 * time.Second); hdr(n, "Subscription-State") == "active" {
		t.Errorf("c got an unsolicited NOTIFY after the restart")
	}
	a.quiet(time.Second)
	stops, _ := env.raw.ListMWITargetStops(ctx)
	if len(stops) != 2 {
		t.Errorf("stops: %+v", stops)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric sums the samples of a gauge or counter, optionally only those
// whose "result" label is result.
func metric(t *testing.T, n *Notifier, name, result string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	for _, c := range n.Collectors() {
		reg.MustRegister(c)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := result == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					match = true
				}
			}
			if match {
				sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func gauge(t *testing.T, n *Notifier, name string) float64 { return metric(t, n, name, "") }

func counter(t *testing.T, n *Notifier, name, result string) float64 {
	return metric(t, n, name, result)
}

func TestMWIBody(t *testing.T) {
	got := string(MWIBody("sip:5555@example.com", store.Counts{New: 3, Old: 2, UrgentNew: 1, UrgentOld: 0}))
	want := "Messages-Waiting: yes\r\nMessage-Account: sip:5555@example.com\r\nVoice-Message: 3/2 (1/0)\r\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := string(MWIBody("sip:5555@x", store.Counts{Old: 4})); !strings.HasPrefix(got, "Messages-Waiting: no\r\n") {
		t.Errorf("old messages only: %q", got)
	}
}
