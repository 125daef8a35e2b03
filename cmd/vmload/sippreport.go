package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cmdSippReport turns a sipp run (its -trace_stat and -trace_rtt files),
// a `vmload sample` reading and the recordings into one report line, so
// sipp and vmload levels land in the same table.
func cmdSippReport(args []string) error {
	fs := flag.NewFlagSet("sippreport", flag.ExitOnError)
	stat := fs.String("stat", "", "sipp -trace_stat CSV")
	rtt := fs.String("rtt", "", "sipp -trace_rtt CSV")
	smp := fs.String("sample", "", "output of vmload sample")
	data := fs.String("data", "", "server media root")
	secs := fs.Int("seconds", 20, "audio seconds per call")
	audio := fs.String("audio", "testcalls/pcap/audio_pcmu_long.pcap", "the audio sipp sent (raw .ulaw or pcap)")
	mBefore := fs.String("metrics-before", "", "output of vmload metrics before the run")
	mURL := fs.String("metrics", "", "server /metrics URL: scraped now, the difference with -metrics-before is reported")
	mode := fs.String("mode", "sipp-deposit", "mode name in the report")
	winFrom := fs.Float64("window-from", 0, "start of the measured CPU window, s (reported)")
	winTo := fs.Float64("window-to", 0, "end of the measured CPU window, s (reported)")
	genSmp := fs.String("gen-sample", "", "output of vmload sample over the sipp process: the generator's CPU")
	label := fs.String("label", "sipp", "run name")
	level := fs.Int("level", 0, "concurrent calls")
	jsonOut := fs.String("json", "", "append the report here")
	_ = fs.Parse(args)
	r := &report{Label: *label, Mode: *mode, WindowFromS: *winFrom, WindowToS: *winTo, Target: *level, PeakLive: int64(*level), Date: time.Now().UTC().Format(time.RFC3339)}
	if b, err := os.ReadFile(*stat); err == nil {
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) >= 2 {
			hdr := strings.Split(lines[0], ";")
			last := strings.Split(lines[len(lines)-1], ";")
			get := func(name string) int {
				for i, h := range hdr {
					if h == name && i < len(last) {
						n, _ := strconv.Atoi(strings.TrimSpace(last[i]))
						return n
					}
				}
				return 0
			}
			r.OK, r.Failed = get("SuccessfulCall(C)"), get("FailedCall(C)")
			r.Calls = get("TotalCallCreated")
			r.RetransC = int64(get("Retransmissions(C)"))
		}
	} else {
		return err
	}
	if b, err := os.ReadFile(*rtt); err == nil {
		d, err := parseSippRTT(string(b))
		if err != nil {
			return fmt.Errorf("%s: %w", *rtt, err)
		}
		r.SetupAvgMS, r.SetupP99MS, r.SetupMaxMS = stats(d)
		if len(d) > 0 {
			r.SetupP50MS = pctl(d, 0.50)
		}
	}
	if b, err := os.ReadFile(*smp); err == nil {
		var s struct {
			CPU, Peak, Start, RSS, Total float64
		}
		var m map[string]float64
		if json.Unmarshal(b, &m) == nil {
			s.CPU, s.Peak, s.Start, s.RSS, s.Total = m["cpu_pct"], m["cpu_peak_1s_pct"], m["rss_start_mb"], m["rss_peak_mb"], m["cpu_s_total"]
		}
		r.CPUPct, r.CPUPeakPct, r.RSSIdleMB, r.RSSPeakMB = s.CPU, s.Peak, s.Start, s.RSS
		r.CPUTotalS = s.Total
		r.WaitPct = m["runq_wait_pct"]
		if r.OK > 0 {
			r.CPUMsPerCall = round1(1000 * s.Total / float64(r.OK))
		}
		if *level > 0 {
			r.CPUPerCall = round3(s.CPU / float64(*level))
			r.KiBPerCall = round1((s.RSS - s.Start) * 1024 / float64(*level))
		}
	}
	if b, err := os.ReadFile(*genSmp); *genSmp != "" && err == nil {
		var m map[string]float64
		if json.Unmarshal(b, &m) == nil {
			r.GenCPUPct, r.GenWaitPct = m["cpu_pct"], m["runq_wait_pct"]
		}
	}
	if *data != "" {
		waitRecordings(*data, r.OK, 5*time.Second, 60*time.Second)
		frames, err := loadAudio(*audio, *secs)
		if err != nil {
			return err
		}
		if rc, err := checkRecordings(*data, decodeSent(frames)); err == nil {
			rc.expect(r.OK, len(frames))
			r.Rec = &rc
		}
	}
	if *mBefore != "" && *mURL != "" {
		var before serverCounters
		b, err := os.ReadFile(*mBefore)
		if err == nil {
			err = json.Unmarshal(b, &before)
		}
		if err != nil {
			return fmt.Errorf("metrics before: %w", err)
		}
		after, err := scrapeServer(context.Background(), *mURL)
		if err != nil {
			return err
		}
		r.setServer(after.sub(before))
	}
	printReport(r)
	if *jsonOut != "" {
		f, err := os.OpenFile(*jsonOut, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		b, _ := json.Marshal(r)
		_, err = fmt.Fprintln(f, string(b))
		return err
	}
	return nil
}

// cmdMetrics prints the server's counters as JSON (for sippreport's
// -metrics-before).
func cmdMetrics(args []string) error {
	fs := flag.NewFlagSet("metrics", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:6080/metrics", "server /metrics URL")
	_ = fs.Parse(args)
	c, err := scrapeServer(context.Background(), *url)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(c)
	fmt.Println(string(b))
	return nil
}

// cmdWindow prints the steady window of a churn run as "FROM TO" in whole
// seconds (for run.sh, which samples the server during a sipp run).
func cmdWindow(args []string) error {
	fs := flag.NewFlagSet("window", flag.ExitOnError)
	level := fs.Int("level", 0, "concurrent calls (sipp -l)")
	total := fs.Int("calls", 0, "calls in all (sipp -m)")
	rate := fs.Float64("rate", 0, "calls per second (sipp -r)")
	callLen := fs.Duration("call", 0, "length of one call")
	_ = fs.Parse(args)
	if *level < 1 || *total < *level || *rate <= 0 || *callLen <= 0 {
		return fmt.Errorf("window: -level, -calls >= level, -rate and -call must be positive")
	}
	from, to := churnWindow(*level, *total, *rate, *callLen)
	fmt.Printf("%.1f %.1f\n", from.Seconds(), to.Seconds())
	return nil
}

// parseSippRTT reads sipp's -trace_rtt file (Date_ms;response_time_ms;
// rtd_no): the INVITE→200 times, by the header's column name. sipp
// writes whole milliseconds.
func parseSippRTT(text string) ([]time.Duration, error) {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	col := -1
	for i, h := range strings.Split(lines[0], ";") {
		if strings.TrimSpace(h) == "response_time_ms" {
			col = i
		}
	}
	if col < 0 {
		return nil, fmt.Errorf("no response_time_ms column in %q", lines[0])
	}
	var d []time.Duration
	for _, l := range lines[1:] {
		f := strings.Split(l, ";")
		if len(f) <= col {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(f[col]), 64)
		if err != nil {
			return nil, fmt.Errorf("response time %q: %w", f[col], err)
		}
		d = append(d, time.Duration(v*float64(time.Millisecond)))
	}
	return d, nil
}
