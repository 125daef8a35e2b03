package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// RateLimit is a per-source budget (docs/sip.md): Rate requests per second
// on average, Burst at once. Rate 0 means unlimited.
type RateLimit struct {
	Rate  float64
	Burst int
}

func (r RateLimit) String() string {
	if r.Rate == 0 {
		return "0"
	}
	return strconv.FormatFloat(r.Rate, 'f', -1, 64) + "/s burst " + strconv.Itoa(r.Burst)
}

// ParseRateLimit reads "20/s burst 100" (also "20/s" with a burst of one
// second's worth, "120/m burst 10", and "0" or "off" for no limit).
func ParseRateLimit(v string) (RateLimit, error) {
	bad := fmt.Errorf("want a rate like \"20/s burst 100\" (or 0 for no limit), got %q", v)
	f := strings.Fields(strings.ToLower(v))
	if len(f) == 1 && (f[0] == "0" || f[0] == "off") {
		return RateLimit{}, nil
	}
	if len(f) != 1 && len(f) != 3 {
		return RateLimit{}, bad
	}
	num, unit, ok := strings.Cut(f[0], "/")
	if !ok {
		return RateLimit{}, bad
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) || math.IsNaN(n) || n > 1e6 {
		return RateLimit{}, bad
	}
	switch unit {
	case "s":
	case "m":
		n /= 60
	case "h":
		n /= 3600
	default:
		return RateLimit{}, bad
	}
	r := RateLimit{Rate: n, Burst: int(math.Max(1, math.Ceil(n)))}
	if len(f) == 3 {
		if f[1] != "burst" {
			return RateLimit{}, bad
		}
		b, err := strconv.Atoi(f[2])
		if err != nil || b < 1 || b > 1e6 {
			return RateLimit{}, bad
		}
		r.Burst = b
	}
	return r, nil
}

func rateLimit(field func(*Config) *RateLimit) func(*Config, string) error {
	return func(c *Config, v string) (err error) {
		*field(c), err = ParseRateLimit(v)
		return err
	}
}
