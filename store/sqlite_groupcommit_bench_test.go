package store

import (
	"testing"
)

// Rows per second of CreateMessage from many goroutines, with the group
// commit and with one transaction per row (BENCHMARKS.md, "Commit cost"):
//
//	go test -run '^$' -bench CreateMessageParallel -benchtime 5000x ./store/
func BenchmarkCreateMessageParallel(b *testing.B) {
	for _, mode := range []string{"group", "single"} {
		b.Run(mode, func(b *testing.B) {
			s := groupFixture(b)
			if mode == "single" {
				s.stopGroupCommit()
				s.group = nil
			}
			b.SetParallelism(32) // 32 × GOMAXPROCS callers, as deposits ending together
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.CreateMessage(b.Context(), &Message{Tenant: DefaultTenant, Mailbox: "1001", CallerID: "+33612345678"}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
