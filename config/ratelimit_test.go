package config

import "testing"

func TestParseRateLimit(t *testing.T) {
	tests := []struct {
		in   string
		want RateLimit
		ok   bool
	}{
		{"20/s burst 100", RateLimit{20, 100}, true},
		{"20/s", RateLimit{20, 20}, true},
		{"0.5/s", RateLimit{0.5, 1}, true},
		{"120/m burst 10", RateLimit{2, 10}, true},
		{"3600/h burst 5", RateLimit{1, 5}, true},
		{" 10/S  Burst  3 ", RateLimit{10, 3}, true},
		{"0", RateLimit{}, true},
		{"off", RateLimit{}, true},
		{"", RateLimit{}, false},
		{"20", RateLimit{}, false},
		{"20/d", RateLimit{}, false},
		{"-1/s", RateLimit{}, false},
		{"0/s", RateLimit{}, false},
		{"NaN/s", RateLimit{}, false},
		{"Inf/s", RateLimit{}, false},
		{"20/s burst", RateLimit{}, false},
		{"20/s burst 0", RateLimit{}, false},
		{"20/s size 10", RateLimit{}, false},
		{"20/s burst 10 extra", RateLimit{}, false},
	}
	for _, tt := range tests {
		got, err := ParseRateLimit(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseRateLimit(%q) = %+v, %v; want %+v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// FuzzParseRateLimit: no panic; an accepted limit is usable (positive rate
// and burst, or off) and its String parses back to the same limit.
func FuzzParseRateLimit(f *testing.F) {
	for _, s := range []string{"20/s burst 100", "0", "off", "1/h", "1e6/s burst 1000000", "1e-300/s", "x/s burst y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRateLimit(s)
		if err != nil {
			return
		}
		if r.Rate < 0 || (r.Rate > 0 && r.Burst < 1) {
			t.Fatalf("ParseRateLimit(%q) = %+v", s, r)
		}
		back, err := ParseRateLimit(r.String())
		if err != nil || back != r {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, r, r.String(), back, err)
		}
	})
}
