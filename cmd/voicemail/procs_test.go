package main

import "testing"

func TestMinProcs(t *testing.T) {
	for _, c := range []struct {
		current int
		env     string
		want    int
	}{
		{1, "", 2},  // one allowed CPU: the floor
		{2, "", 2},  // a quota of one CPU already gives 2 (Go ≥ 1.25)
		{8, "", 8},  // never lowered
		{1, "1", 1}, // the operator's GOMAXPROCS wins
		{4, "1", 4}, // (the runtime has applied it already)
	} {
		if got := minProcs(c.current, c.env); got != c.want {
			t.Errorf("minProcs(%d, %q) = %d, want %d", c.current, c.env, got, c.want)
		}
	}
}
