//go:build scalebench

package store_test

// The store figures of BENCHMARKS.md, "Data at scale": listing a mailbox
// among 10,000,000 messages in 100,000 mailboxes, on SQLite and
// PostgreSQL. The data set is seeded once per backend into
// $SCALE_DIR/scale-sqlite and $SCALE_DIR/scale-pg (default /tmp) and
// reused (internal/scaleseed):
//
//	nice -n 19 go test -tags scalebench -run TestScaleList -v -timeout 60m ./store/

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/scaleseed"
	"github.com/vmserver/voicemail/store"
)

// TestScaleList times ListMessages as the REST API calls it (one page of
// 100, the whole mailbox or one folder) and as the IVR does (pages of
// 1,000 until the end), on random mailboxes, one call at a time.
func TestScaleList(t *testing.T) {
	for _, backend := range scaleseed.Backends {
		t.Run(backend, func(t *testing.T) {
			p := scaleseed.Full(time.Now())
			dsn, p := scaleseed.Prepare(t, backend, p, scaleseed.Keep(backend))
			ctx := context.Background()
			st, err := store.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			const n = 10_000
			for _, c := range []struct {
				name   string
				filter func(mb string) store.MessageFilter
			}{
				{"API page of 100", func(mb string) store.MessageFilter {
					return store.MessageFilter{Tenant: scaleseed.Tenant, Mailbox: mb}
				}},
				{"API folder new", func(mb string) store.MessageFilter {
					return store.MessageFilter{Tenant: scaleseed.Tenant, Mailbox: mb, Folder: store.FolderNew}
				}},
				{"IVR whole mailbox", func(mb string) store.MessageFilter {
					return store.MessageFilter{Tenant: scaleseed.Tenant, Mailbox: mb, Limit: 1000}
				}},
			} {
				lat := make([]time.Duration, 0, n)
				rows := 0
				for i := 0; i < n+500; i++ {
					f := c.filter(scaleseed.Mailbox(rng.IntN(p.Mailboxes)))
					start := time.Now()
					for {
						items, next, err := st.ListMessages(ctx, f)
						if err != nil {
							t.Fatal(err)
						}
						rows += len(items)
						if next == "" || f.Limit != 1000 {
							break
						}
						f.After = next
					}
					if i >= 500 { // the first 500 warm the caches
						lat = append(lat, time.Since(start))
					}
				}
				t.Logf("%s %s: %s (%.1f rows per call)", backend, c.name, scaleseed.Summary(lat), float64(rows)/float64(n+500))
			}
		})
	}
}
