package main

import (
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
	label := fs.String("label", "sipp", "run name")
	level := fs.Int("level", 0, "concurrent calls")
	jsonOut := fs.String("json", "", "append the report here")
	_ = fs.Parse(args)
	r := &report{Label: *label, Mode: "sipp-deposit", Target: *level, PeakLive: int64(*level), Date: time.Now().UTC().Format(time.RFC3339)}
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
		var d []time.Duration
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Split(l, ";")
			if len(f) < 3 {
				continue
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(f[2]), 64)
			if err != nil {
				continue
			}
			d = append(d, time.Duration(v*float64(time.Millisecond)))
		}
		r.SetupAvgMS, r.SetupP99MS, r.SetupMaxMS = stats(d)
	}
	if b, err := os.ReadFile(*smp); err == nil {
		var s struct {
			CPU, Peak, Start, RSS float64
		}
		var m map[string]float64
		if json.Unmarshal(b, &m) == nil {
			s.CPU, s.Peak, s.Start, s.RSS = m["cpu_pct"], m["cpu_peak_1s_pct"], m["rss_start_mb"], m["rss_peak_mb"]
		}
		r.CPUPct, r.CPUPeakPct, r.RSSIdleMB, r.RSSPeakMB = s.CPU, s.Peak, s.Start, s.RSS
		if *level > 0 {
			r.CPUPerCall = round3(s.CPU / float64(*level))
			r.KiBPerCall = round1((s.RSS - s.Start) * 1024 / float64(*level))
		}
	}
	if *data != "" {
		waitRecordings(*data, r.OK, 5*time.Second, 60*time.Second)
		if rc, err := checkRecordings(*data, int64(*secs)*8000); err == nil {
			r.Rec = &rc
		}
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
