package mwi

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vmserver/voicemail/store"
)

// BenchmarkCrossInstanceNotify measures the event latency of a cluster:
// from the commit of a message on instance A (CreateMessage returns) to
// the NOTIFY of a subscription held by instance B reaching the phone, on
// one PostgreSQL (B hears the change through the change log: LISTEN/NOTIFY
// wakes it, the table is the truth). Each of the 50 subscriptions gets at
// most one change a second, so the coalescing window never delays a
// NOTIFY. It reports p50, p99 and max in ms over b.N commits:
//
//	go test -run '^$' -bench CrossInstanceNotify -benchtime 1000x ./mwi/
func BenchmarkCrossInstanceNotify(b *testing.B) {
	const subs = 50
	dsn := newClusterDB(b)
	a := startInstance(b, dsn, "A")
	bi := startInstance(b, dsn, "B")
	ctx := context.Background()
	for i := range subs {
		if err := a.st.CreateMailbox(ctx, &store.Mailbox{Tenant: "default", Number: strconv.Itoa(3000 + i)}); err != nil {
			b.Fatal(err)
		}
	}
	peers := make([]*mwiPeer, subs)
	last := make([]time.Time, subs) // of each subscription's last NOTIFY
	for i := range peers {
		p := newMWIPeer(b, bi.addr)
		p.subscribe(subOpts{callID: newCallID(), tag: fmt.Sprint("t", i), user: strconv.Itoa(3000 + i), cseq: 1, expires: 3600})
		if r := p.response(10 * time.Second); r.StatusCode != 200 {
			b.Fatalf("SUBSCRIBE %d answered %d", 3000+i, r.StatusCode)
		}
		p.notify(10 * time.Second) // the initial state
		peers[i], last[i] = p, time.Now()
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		i := n % subs
		// The notifier sends at most one NOTIFY a second per subscription.
		if wait := time.Until(last[i].Add(1100 * time.Millisecond)); wait > 0 {
			time.Sleep(wait)
		}
		start := time.Now()
		if err := a.st.CreateMessage(ctx, &store.Message{Tenant: "default", Mailbox: strconv.Itoa(3000 + i), CallerID: "2002", DurationMS: 3000}); err != nil {
			b.Fatal(err)
		}
		peers[i].notify(10 * time.Second)
		lat = append(lat, time.Since(start))
		last[i] = time.Now()
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(f float64) float64 {
		return float64(lat[min(len(lat)-1, int(f*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
