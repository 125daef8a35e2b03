package sip_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	vsip "github.com/vmserver/voicemail/sip"
)

// panicky panics in its first call and holds the others until hang-up.
type panicky struct{ calls atomic.Int32 }

func (p *panicky) Call(ctx context.Context, d *vsip.Dialog) {
	if p.calls.Add(1) == 1 {
		panic("a bug in one call")
	}
	<-ctx.Done()
}

// TestPanicInACallEndsOnlyThatCall: the call whose runtime panicked gets a
// BYE and is counted in voicemail_panics_total; the server keeps answering.
func TestPanicInACallEndsOnlyThatCall(t *testing.T) {
	t.Parallel()
	h := &panicky{}
	ts := startServerCalls(t, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), h)
	p := newPhone(t, ts.addr)
	p.send("INVITE", 1, p.sdp("sendrecv"))
	p.expect("SIP/2.0 200", 5*time.Second)
	p.send("ACK", 1, "")
	p.reply(p.expect("BYE ", 10*time.Second), 200)

	q := newPhone(t, ts.addr)
	q.callID = "second-" + q.callID
	q.send("INVITE", 1, q.sdp("sendrecv"))
	q.expect("SIP/2.0 200", 5*time.Second)
	q.send("ACK", 1, "")
	q.send("BYE", 2, "")
	q.expect("SIP/2.0 200", 5*time.Second)

	// The first call's goroutine counts its result after its BYE's 200:
	// on a busy machine that may come after the second call ended.
	var panics, panicCalls float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		panics, panicCalls = panicMetrics(t, ts.srv)
		if (panics == 1 && panicCalls == 1) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if panics != 1 || panicCalls != 1 {
		t.Errorf("voicemail_panics_total{where=call} = %v, calls_total{result=panic} = %v; want 1 and 1", panics, panicCalls)
	}
}

// panicMetrics reads voicemail_panics_total{where=call} and
// voicemail_calls_total{result=panic}.
func panicMetrics(t *testing.T, srv *vsip.Server) (panics, panicCalls float64) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(srv.Collectors()...)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			labels := ""
			for _, l := range m.GetLabel() {
				labels += l.GetName() + "=" + l.GetValue() + ","
			}
			switch {
			case f.GetName() == "voicemail_panics_total" && strings.Contains(labels, "where=call,"):
				panics += m.GetCounter().GetValue()
			case f.GetName() == "voicemail_calls_total" && strings.Contains(labels, "result=panic,"):
				panicCalls += m.GetCounter().GetValue()
			}
		}
	}
	return panics, panicCalls
}
