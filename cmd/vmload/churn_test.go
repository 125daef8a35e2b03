package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLaunchesDue(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name                         string
		elapsed                      time.Duration
		rate                         float64
		launched, live, limit, total int
		want                         int
	}{
		{"the first call at once", 0, 10, 0, 0, 100, 200, 1},
		{"one per 1/rate", 100 * time.Millisecond, 10, 1, 1, 100, 200, 1},
		{"not yet due", 50 * time.Millisecond, 10, 1, 1, 100, 200, 0},
		{"late ticks catch up", 1 * s, 10, 1, 1, 100, 200, 10},
		{"the level is full", 20 * s, 10, 100, 100, 100, 200, 0},
		{"ended calls are replaced at once", 31 * s, 10, 100, 97, 100, 200, 3},
		{"never more than the calls left", 60 * s, 10, 198, 50, 100, 200, 2},
		{"all launched", 60 * s, 10, 200, 50, 100, 200, 0},
		{"negative elapsed", -s, 10, 0, 0, 100, 200, 0},
		{"no rate", s, 0, 0, 0, 100, 200, 0},
		{"fractional rate", 3 * s, 0.5, 1, 0, 10, 10, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := launchesDue(tc.elapsed, tc.rate, tc.launched, tc.live, tc.limit, tc.total); got != tc.want {
				t.Fatalf("launchesDue = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestLaunchesDueChurn runs the scheduler over simulated time with calls
// of a fixed length: the level is held, ended calls are replaced, and the
// run ends with 2N calls, as sipp -l N -r N/10 -m 2N does.
func TestLaunchesDueChurn(t *testing.T) {
	const level, total = 100, 200
	rate := float64(level) / 10
	callLen := 30 * time.Second
	var ends []time.Duration // end time of each live call
	launched, peak := 0, 0
	var filled, last time.Duration
	for now := time.Duration(0); now < 120*time.Second; now += 2 * time.Millisecond {
		kept := ends[:0]
		for _, e := range ends {
			if e > now {
				kept = append(kept, e)
			}
		}
		ends = kept
		for k := launchesDue(now, rate, launched, len(ends), level, total); k > 0; k-- {
			launched++
			ends = append(ends, now+callLen)
			if launched == level {
				filled = now
			}
			if launched == total {
				last = now
			}
		}
		peak = max(peak, len(ends))
	}
	if launched != total || peak != level {
		t.Fatalf("launched %d, peak %d; want %d, %d", launched, peak, total, level)
	}
	from, to := churnWindow(level, total, rate, callLen)
	if d := filled - from; d < -10*time.Millisecond || d > 10*time.Millisecond {
		t.Fatalf("level full at %v, churnWindow says %v", filled, from)
	}
	if d := last - to; d < -10*time.Millisecond || d > 10*time.Millisecond {
		t.Fatalf("last launch at %v, churnWindow says %v", last, to)
	}
}

func TestFramesDue(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		since time.Duration
		sent  int
		want  int
	}{
		{0, 0, 1},             // the first frame at once
		{0, 1, 0},             // not two on the first round
		{19 * ms, 1, 0},       // the next slot not yet come
		{20 * ms, 1, 1},       // one per 20 ms
		{21 * ms, 2, 0},       // a round 1 ms later sends nothing
		{100 * ms, 2, 2},      // a late round catches up two at a time
		{20000 * ms, 1000, 1}, // frame 1001 would be due (the caller stops at its audio's end)
		{-ms, 0, 0},
	}
	for _, tc := range tests {
		if got := framesDue(tc.since, tc.sent); got != tc.want {
			t.Errorf("framesDue(%v, %d) = %d, want %d", tc.since, tc.sent, got, tc.want)
		}
	}
	// Over 20 s of 20 ms rounds, jittered by up to 3 ms, exactly 1000
	// frames are due: real time, not twice it.
	sent := 0
	for r := 0; r < 1000; r++ {
		at := time.Duration(r)*20*ms + time.Duration(r%4)*ms
		sent += framesDue(at, sent)
	}
	if sent != 1000 {
		t.Fatalf("%d frames in 1000 rounds of 20 ms, want 1000", sent)
	}
}

func TestChurnWindow(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name         string
		level, total int
		rate         float64
		callLen      time.Duration
		from, to     time.Duration
	}{
		{"sipp -l 100 -r 10 -m 200, 30 s calls", 100, 200, 10, 30 * s, 9900 * time.Millisecond, 39900 * time.Millisecond},
		{"short calls: the rate schedule decides", 100, 200, 10, 1 * s, 9900 * time.Millisecond, 19900 * time.Millisecond},
		{"one wave", 10, 10, 10, 30 * s, 900 * time.Millisecond, 900 * time.Millisecond},
		{"three waves", 10, 30, 10, 30 * s, 900 * time.Millisecond, 60900 * time.Millisecond},
		{"no level", 0, 10, 10, 30 * s, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from, to := churnWindow(tc.level, tc.total, tc.rate, tc.callLen)
			if from != tc.from || to != tc.to {
				t.Fatalf("churnWindow = %v..%v, want %v..%v", from, to, tc.from, tc.to)
			}
		})
	}
}

func TestParseRTPCounters(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    serverCounters
		wantErr bool
	}{
		{"server exposition", `# HELP voicemail_rtp_packets_total RTP packets of ended calls.
# TYPE voicemail_rtp_packets_total counter
voicemail_rtp_packets_total{type="dropped"} 0
voicemail_rtp_packets_total{type="duplicate"} 2
voicemail_rtp_packets_total{type="late"} 3
voicemail_rtp_packets_total{type="lost"} 4
voicemail_rtp_packets_total{type="received"} 1.2e+06
voicemail_rtp_packets_total{type="sent"} 99
voicemail_rtp_rejected_total 5
voicemail_calls_total{kind="deposit",result="completed"} 7
`, serverCounters{Received: 1200000, Lost: 4, Late: 3, Duplicate: 2, Rejected: 5}, false},
		{"before any call ended", "voicemail_rtp_rejected_total 0\n", serverCounters{}, false},
		{"heap allocations", "go_memstats_mallocs_total 1.234567e+06\ngo_memstats_alloc_bytes_total 9.8e+07\ngo_memstats_alloc_bytes 5e+06\n", serverCounters{Mallocs: 1234567, AllocBytes: 98000000}, false},
		{"with a timestamp", `voicemail_rtp_packets_total{type="lost"} 8 1700000000000` + "\n", serverCounters{Lost: 8}, false},
		{"bad value", `voicemail_rtp_packets_total{type="lost"} x` + "\n", serverCounters{}, true},
		{"empty", "", serverCounters{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseServerCounters(strings.NewReader(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if d := (serverCounters{Lost: 5, Received: 10}).sub(serverCounters{Lost: 2, Received: 4}); d != (serverCounters{Lost: 3, Received: 6}) {
		t.Fatalf("sub = %+v", d)
	}
}

func FuzzParseRTPCounters(f *testing.F) {
	f.Add("voicemail_rtp_packets_total{type=\"lost\"} 4\n")
	f.Add("# HELP x\nvoicemail_rtp_rejected_total 1e3 17\n")
	f.Fuzz(func(t *testing.T, in string) {
		_, _ = parseServerCounters(strings.NewReader(in))
	})
}

func TestParseSippRTT(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []time.Duration
		wantErr bool
	}{
		{"sipp 3.6", "Date_ms;response_time_ms;rtd_no\n60.001;8;1\n112.001;0;1\n", []time.Duration{8 * time.Millisecond, 0}, false},
		{"columns by name", "rtd_no;response_time_ms\n1;2.5\n", []time.Duration{2500 * time.Microsecond}, false},
		{"header only", "Date_ms;response_time_ms;rtd_no\n", nil, false},
		{"no such column", "a;b\n1;2\n", nil, true},
		{"bad value", "response_time_ms\nx\n", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSippRTT(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !tc.wantErr && !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// INVITE→200 grouped by the second its INVITE went out, seconds without
// an INVITE left out.
func TestBySecond(t *testing.T) {
	start := time.Unix(1000, 0)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	d := func(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }
	got := bySecond(start,
		[]time.Time{at(10), at(900), at(999), at(2500), at(-5)},
		[]time.Duration{d(1), d(3), d(2), d(40), d(7)})
	want := []secondSetups{
		{Second: 0, N: 4, P50MS: 2, P99MS: 7, MaxMS: 7},
		{Second: 2, N: 1, P50MS: 40, P99MS: 40, MaxMS: 40},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("bySecond = %+v, want %+v", got, want)
	}
}
