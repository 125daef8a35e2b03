package gdpr

import (
	"testing"
	"time"
)

// Two instances on one database: only the holder of the sweep lease
// sweeps, so expired messages are deleted (and audited) once.
func TestSweepOnceAcrossInstances(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RetentionDays = 30 })
	other, err := New(f.svc.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	day := 24 * time.Hour
	f.advance(-40 * day)
	f.deposit(t, "default", "1001", "+17815551212")
	f.deposit(t, "default", "1002", "+17815551212")
	f.advance(40 * day)
	if st, err := f.svc.Sweep(ctx); err != nil || st.Expired != 2 {
		t.Fatalf("first instance expired %d, %v", st.Expired, err)
	}
	f.advance(-40 * day)
	f.deposit(t, "default", "1001", "+17815551212")
	f.advance(40 * day)
	if st, err := other.Sweep(ctx); err != nil || st.Expired != 0 {
		t.Fatalf("second instance swept while the first holds the lease: expired %d, %v", st.Expired, err)
	}
	if st, err := f.svc.Sweep(ctx); err != nil || st.Expired != 1 {
		t.Fatalf("the holder renews and sweeps again: expired %d, %v", st.Expired, err)
	}
}
