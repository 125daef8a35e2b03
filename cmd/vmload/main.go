// Command vmload is the voicemail server's own load generator: a SIP UAC
// over UDP that holds thousands of concurrent calls from one core. Every
// call's RTP is paced by one shared ticker and sent from a handful of
// shared sockets (the server latches on the source address of each of its
// sessions, so calls may share a port); no goroutine or timer per call.
//
//	vmload run -server 127.0.0.1:6060 -concurrent 600 -calls 600 -rate 50 \
//	      -mode deposit -pid $(pgrep -f 'voicemail serve') -data DATA/media
//	vmload mkaudio   -out speech20.ulaw     # the 20 s audio as raw µ-law (sipp rtp_stream)
//	vmload mkprompts -out DIR               # silent prompts: a prompts.dir for plain recording
//	vmload verify    -data DATA/media       # recordings complete?
//	vmload sample    -pid PID -after 10s -for 20s   # CPU/RSS of a process (for sipp runs)
//	vmload table     results.jsonl          # the runs as a Markdown table
//	vmload metrics   -url URL               # the server's RTP and allocation counters (JSON)
//	vmload window    -level N -calls 2N -rate R -call 30s  # steady window of a churn run
//	perf script -i perf.data | vmload perfbudget   # the server's samples by task, kernel's share
//
// Modes: deposit (listen to greeting and beep, then speak -seconds of audio,
// hang up), plain (the same against a server whose prompts are silent),
// setup (answer, hold -hold, hang up, no audio). Per run it prints one
// human line and, with -json FILE, appends one JSON object.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

type runConfig struct {
	server, local        string
	sipPort, rtpBase     int
	rtpSockets           int
	mode, mailbox, label string
	calls, concurrent    int
	rate                 float64
	hold, quiet          time.Duration
	seconds              int
	audio                string
	greetPackets         int
	beepPackets          int
	dtmfProbe            int
	dtmfAfter            time.Duration
	pid                  int
	data                 string
	settle, timeout      time.Duration
	jsonOut              string
	metrics              string
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = cmdRun(os.Args[2:])
	case "mkaudio":
		err = cmdMkAudio(os.Args[2:])
	case "mkprompts":
		fs := flag.NewFlagSet("mkprompts", flag.ExitOnError)
		out := fs.String("out", "", "folder to write (a prompts.dir)")
		_ = fs.Parse(os.Args[2:])
		if *out == "" {
			usage()
		}
		err = writeSilentPrompts(*out)
	case "verify":
		fs := flag.NewFlagSet("verify", flag.ExitOnError)
		data := fs.String("data", "", "media root of the server (<data_dir>/media)")
		secs := fs.Int("seconds", 20, "audio seconds each call sent")
		audio := fs.String("audio", "testcalls/pcap/audio_pcmu_long.pcap", "the audio each call sent")
		_ = fs.Parse(os.Args[2:])
		var rc recCheck
		var frames [][]byte
		if frames, err = loadAudio(*audio, *secs); err != nil {
			break
		}
		if rc, err = checkRecordings(*data, decodeSent(frames)); err == nil {
			b, _ := json.Marshal(rc)
			fmt.Println(string(b))
		}
	case "sample":
		err = cmdSample(os.Args[2:])
	case "table":
		err = cmdTable(os.Args[2:])
	case "sippreport":
		err = cmdSippReport(os.Args[2:])
	case "metrics":
		err = cmdMetrics(os.Args[2:])
	case "window":
		err = cmdWindow(os.Args[2:])
	case "perfbudget":
		err = cmdPerfBudget(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmload:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: vmload run|mkaudio|mkprompts|verify|sample|table|sippreport|metrics|window|perfbudget [flags] (-h for each)")
	os.Exit(2)
}

func cmdMkAudio(args []string) error {
	fs := flag.NewFlagSet("mkaudio", flag.ExitOnError)
	audio := fs.String("audio", "testcalls/pcap/audio_pcmu_long.pcap", "source: a PCMU pcap or raw .ulaw")
	secs := fs.Int("seconds", 20, "seconds to take")
	out := fs.String("out", "", "raw µ-law file to write")
	_ = fs.Parse(args)
	frames, err := loadAudio(*audio, *secs)
	if err != nil {
		return err
	}
	return writeULaw(*out, frames)
}

func cmdSample(args []string) error {
	fs := flag.NewFlagSet("sample", flag.ExitOnError)
	pid := fs.Int("pid", 0, "process to sample")
	after := fs.Duration("after", 0, "start of the measured window")
	dur := fs.Duration("for", 10*time.Second, "length of the measured window")
	until := fs.Duration("until", 0, "keep sampling (total CPU) until this long or a signal (0 = end of the window)")
	_ = fs.Parse(args)
	s := startSampler(*pid, 250*time.Millisecond)
	start := time.Now()
	idle, _ := readProc(*pid)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-time.After(max(*after+*dur, *until)):
	case <-sig:
	}
	s.close()
	avg, peak, rss := s.window(start.Add(*after), start.Add(*after+*dur))
	out := map[string]any{"cpu_pct": round1(avg), "cpu_peak_1s_pct": round1(peak),
		"rss_start_mb": mb(idle.rss), "rss_peak_mb": mb(rss),
		"runq_wait_pct": s.waitPct(start.Add(*after), start.Add(*after+*dur))}
	// The whole sampling, up to the signal that stopped it: the CPU
	// seconds of a whole run, commits included.
	if last, err := readProc(*pid); err == nil {
		out["cpu_s_total"] = round3(float64(last.ticks-idle.ticks) / clkTck)
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	return nil
}

type report struct {
	Label           string          `json:"label"`
	Mode            string          `json:"mode"`
	Date            string          `json:"date"`
	Target          int             `json:"concurrent_target"`
	Rate            float64         `json:"rate"`
	Calls           int             `json:"calls"`
	OK              int             `json:"ok"`
	Failed          int             `json:"failed"`
	FailedWhy       map[string]int  `json:"failed_why,omitempty"`
	Rejected503     int             `json:"rejected_503"`
	RetransC        int64           `json:"retrans_client"`
	RetransS        int64           `json:"retrans_server_2xx"`
	SetupAvgMS      float64         `json:"invite_200_avg_ms"`
	SetupP50MS      float64         `json:"invite_200_p50_ms"`
	SetupP99MS      float64         `json:"invite_200_p99_ms"`
	SetupMaxMS      float64         `json:"invite_200_max_ms"`
	SetupBySecond   []secondSetups  `json:"invite_200_by_second,omitempty"`
	DTMFN           int             `json:"dtmf_probes,omitempty"`
	DTMFP50MS       float64         `json:"dtmf_to_prompt_p50_ms,omitempty"`
	DTMFP99MS       float64         `json:"dtmf_to_prompt_p99_ms,omitempty"`
	PeakLive        int64           `json:"peak_concurrent"`
	PlateauS        float64         `json:"plateau_s"`
	CPUPct          float64         `json:"server_cpu_pct"`
	CPUPeakPct      float64         `json:"server_cpu_peak_1s_pct"`
	CPUPerCall      float64         `json:"server_cpu_pct_per_call"`
	WindowFromS     float64         `json:"window_from_s,omitempty"` // churn: the steady window, seconds from the first launch
	WindowToS       float64         `json:"window_to_s,omitempty"`
	CPUTotalS       float64         `json:"server_cpu_s_total,omitempty"`     // whole run, commits included
	CPUMsPerCall    float64         `json:"server_cpu_ms_per_call,omitempty"` // CPUTotalS / completed calls, in ms
	GenCPUPct       float64         `json:"generator_cpu_pct,omitempty"`      // vmload's own CPU over the load, % of a core
	WaitPct         float64         `json:"server_runq_wait_pct"`             // server threads waiting for a CPU in the window, % of wall time
	GenWaitPct      float64         `json:"generator_runq_wait_pct,omitempty"`
	RTP             *serverCounters `json:"server_rtp,omitempty"`             // server counters, after - before
	AllocsPerCall   float64         `json:"server_allocs_per_call,omitempty"` // heap allocations per completed call, whole run
	AllocKiBPerCall float64         `json:"server_alloc_kib_per_call,omitempty"`
	RSSIdleMB       float64         `json:"rss_idle_mb"`
	RSSPeakMB       float64         `json:"rss_peak_mb"`
	RSSAfterMB      float64         `json:"rss_after_mb"`
	KiBPerCall      float64         `json:"rss_kib_per_call"`
	RTPSent         int64           `json:"rtp_sent"`
	RTPRecv         int64           `json:"rtp_recv"`
	EarlyStarts     int64           `json:"early_starts,omitempty"`
	GreetPackets    int             `json:"greeting_packets,omitempty"`
	Rec             *recCheck       `json:"recordings,omitempty"`
	WallS           float64         `json:"wall_s"`
}

func cmdRun(args []string) error {
	var c runConfig
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	fs.StringVar(&c.server, "server", "127.0.0.1:6060", "server SIP UDP address")
	fs.StringVar(&c.local, "local", "127.0.0.1", "local address (loopback only)")
	fs.IntVar(&c.sipPort, "sip-port", 0, "local SIP port (0 = any)")
	fs.IntVar(&c.rtpBase, "rtp-base", 0, "first local RTP port (0 = any)")
	fs.IntVar(&c.rtpSockets, "rtp-sockets", 8, "RTP sockets shared by the calls")
	fs.StringVar(&c.mode, "mode", "deposit", "deposit, churn, plain or setup (churn: a deposit; with -concurrent N -rate N/10 -calls 2N the window is the steady mix)")
	fs.StringVar(&c.mailbox, "mailbox", "1001", "mailbox called")
	fs.StringVar(&c.label, "label", "", "name of the run in the report")
	fs.IntVar(&c.calls, "calls", 10, "calls to place in total")
	fs.IntVar(&c.concurrent, "concurrent", 10, "calls up at once at most (the level)")
	fs.Float64Var(&c.rate, "rate", 50, "new calls per second")
	fs.DurationVar(&c.hold, "hold", time.Second, "setup mode: how long a call stays up after the 200")
	fs.DurationVar(&c.quiet, "quiet", 400*time.Millisecond, "server silence that ends the greeting when the packet count is not reached")
	fs.IntVar(&c.seconds, "seconds", 20, "seconds of audio per call")
	fs.StringVar(&c.audio, "audio", "testcalls/pcap/audio_pcmu_long.pcap", "audio: a PCMU pcap or raw .ulaw")
	fs.IntVar(&c.greetPackets, "greeting-packets", -1, "packets of greeting + beep; -1 = measure with one call first, 0 = quiet detection only")
	fs.IntVar(&c.beepPackets, "beep-packets", 15, "packets of the beep (after a # probe)")
	fs.IntVar(&c.dtmfProbe, "dtmf-probe", 0, "every Nth call presses # during the greeting and measures DTMF-to-prompt (0 = none)")
	fs.DurationVar(&c.dtmfAfter, "dtmf-after", 1500*time.Millisecond, "when the probe presses #")
	fs.IntVar(&c.pid, "pid", 0, "server pid: sample its CPU and RSS from /proc")
	fs.StringVar(&c.data, "data", "", "server media root (<data_dir>/media): check the recordings")
	fs.DurationVar(&c.settle, "settle", 10*time.Second, "wait after the load before the RSS-after reading")
	fs.DurationVar(&c.timeout, "timeout", 0, "hard limit of the load phase (0 = derived)")
	fs.StringVar(&c.jsonOut, "json", "", "append the report as one JSON line to this file")
	fs.StringVar(&c.metrics, "metrics", "", "server /metrics URL: report its RTP and heap allocation counters over the run")
	_ = fs.Parse(args)
	if !strings.HasPrefix(c.local, "127.") || !strings.HasPrefix(c.server, "127.") {
		return fmt.Errorf("loopback addresses only")
	}
	if c.calls < 1 || c.concurrent < 1 || c.rate <= 0 || c.rtpSockets < 1 {
		return fmt.Errorf("calls, concurrent, rate and rtp-sockets must be positive")
	}
	var frames [][]byte
	if c.mode != "setup" {
		var err error
		if frames, err = loadAudio(c.audio, c.seconds); err != nil {
			return err
		}
	}
	if c.mode != "setup" && c.greetPackets < 0 {
		n, err := calibrate(c)
		if err != nil {
			return err
		}
		c.greetPackets = n
		fmt.Fprintf(os.Stderr, "vmload: greeting + beep = %d packets (%.2f s)\n", n, float64(n)*0.02)
	}
	if c.timeout == 0 {
		per := 60*time.Second + time.Duration(c.seconds)*time.Second
		if c.mode == "setup" {
			per = 20*time.Second + c.hold
		}
		// Arrivals at the rate, or as fast as ended calls free a slot when
		// the level binds (a churn run longer than one call's length).
		arrivals := float64(c.calls) / c.rate
		if c.mode != "setup" {
			call := float64(c.greetPackets)*0.02 + float64(c.seconds) + 2
			arrivals = max(arrivals, float64(c.calls-c.concurrent)*call/float64(c.concurrent))
		}
		c.timeout = time.Duration(arrivals*float64(time.Second)) + per
	}

	var smp *sampler
	var idle sample
	if c.pid > 0 {
		idle, _ = readProc(c.pid)
		smp = startSampler(c.pid, 250*time.Millisecond)
	}
	var before serverCounters
	if c.metrics != "" {
		var err error
		if before, err = scrapeServer(context.Background(), c.metrics); err != nil {
			return err
		}
	}
	g, err := newGen(c, frames)
	if err != nil {
		return err
	}
	cpu0, wait0 := selfCPU(), runqWait(os.Getpid())
	start := time.Now()
	g.run(start.Add(c.timeout))
	end := time.Now()
	genCPU, genWait := selfCPU()-cpu0, runqWait(os.Getpid())-wait0
	g.close()

	r := &report{Label: c.label, Mode: c.mode, Date: start.UTC().Format(time.RFC3339), Target: c.concurrent, Rate: c.rate,
		GenCPUPct:  round1(100 * genCPU.Seconds() / end.Sub(start).Seconds()),
		GenWaitPct: round1(100 * float64(genWait) / float64(end.Sub(start))),
		Calls:      int(g.launched.Load()), RetransC: g.res.retransC.Load(), RetransS: g.res.retransS.Load(),
		PeakLive: g.peakLive.Load(), RTPSent: g.res.rtpSent.Load(), RTPRecv: g.res.rtpRecv.Load(),
		EarlyStarts: g.res.earlyStarts.Load(), GreetPackets: c.greetPackets, WallS: round1(end.Sub(start).Seconds())}
	res := g.res
	res.mu.Lock()
	r.OK, r.Rejected503 = res.ok, res.rejected503
	for _, v := range res.failed {
		r.Failed += v
	}
	if len(res.failed) > 0 {
		r.FailedWhy = res.failed
	}
	r.SetupAvgMS, r.SetupP99MS, r.SetupMaxMS = stats(res.setup)
	if len(res.setup) > 0 {
		r.SetupP50MS = pctl(res.setup, 0.50)
		r.SetupBySecond = bySecond(start, res.setupAt, res.setup)
	}
	if len(res.dtmf) > 0 {
		r.DTMFN = len(res.dtmf)
		r.DTMFP50MS = pctl(res.dtmf, 0.50)
		_, r.DTMFP99MS, _ = stats(res.dtmf)
	}
	res.mu.Unlock()

	// The measured window: all calls of the level up at once; for a rate
	// run (never that many at once), the whole run.
	wa, wb := start, end
	if ps, pe := g.plateauStart.Load(), g.plateauEnd.Load(); ps != 0 && pe > ps {
		wa, wb = time.Unix(0, ps), time.Unix(0, pe)
	}
	// Churn: from the launch that filled the level to the last launch,
	// while every ended call was replaced at once.
	if fa, la := g.filledAt.Load(), g.lastLaunchAt.Load(); c.mode == "churn" && fa != 0 && la > fa {
		wa, wb = time.Unix(0, fa), time.Unix(0, la)
		r.WindowFromS, r.WindowToS = round1(wa.Sub(start).Seconds()), round1(wb.Sub(start).Seconds())
	}
	r.PlateauS = round1(wb.Sub(wa).Seconds())
	if c.data != "" && c.mode != "setup" {
		waitRecordings(c.data, r.OK, 5*time.Second, 60*time.Second)
		rc, err := checkRecordings(c.data, decodeSent(frames))
		if err != nil {
			fmt.Fprintln(os.Stderr, "vmload: verify:", err)
		} else {
			rc.expect(r.OK, len(frames))
			r.Rec = &rc
		}
	}
	if c.metrics != "" {
		// The counters cover ended calls; the recordings waited for above
		// mean every call has ended.
		if after, err := scrapeServer(context.Background(), c.metrics); err != nil {
			fmt.Fprintln(os.Stderr, "vmload:", err)
		} else {
			r.setServer(after.sub(before))
		}
	}
	if smp != nil {
		// Whole run, commits included: from before the first call to after
		// the last recording was committed.
		if done, err := readProc(c.pid); err == nil && idle.ticks > 0 {
			r.CPUTotalS = round3(float64(done.ticks-idle.ticks) / clkTck)
			if r.OK > 0 {
				r.CPUMsPerCall = round1(1000 * r.CPUTotalS / float64(r.OK))
			}
		}
		time.Sleep(c.settle)
		smp.close()
		avg, peak, _ := smp.window(wa, wb)
		r.CPUPct, r.CPUPeakPct = round1(avg), round1(peak)
		r.WaitPct = smp.waitPct(wa, wb)
		perCall := r.PeakLive
		if c.mode == "churn" {
			perCall = int64(c.concurrent)
		}
		if perCall > 0 {
			r.CPUPerCall = round3(avg / float64(perCall))
		}
		r.RSSIdleMB, r.RSSPeakMB = mb(idle.rss), mb(smp.peakRSS())
		if after, err := readProc(c.pid); err == nil {
			r.RSSAfterMB = mb(after.rss)
		}
		if r.PeakLive > 0 {
			r.KiBPerCall = round1(float64(smp.peakRSS()-idle.rss) / 1024 / float64(r.PeakLive))
		}
	}
	printReport(r)
	if c.jsonOut != "" {
		f, err := os.OpenFile(c.jsonOut, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		b, _ := json.Marshal(r)
		_, _ = f.Write(append(b, '\n'))
		f.Close()
	}
	return nil
}

// calibrate places one call that listens to the greeting and beep until
// the server is quiet for 1.5 s, and returns the packets it heard.
func calibrate(c runConfig) (int, error) {
	c.mode, c.calls, c.concurrent, c.rate = "calibrate", 1, 1, 10
	c.greetPackets, c.quiet, c.dtmfProbe = 0, 1500*time.Millisecond, 0
	g, err := newGen(c, nil)
	if err != nil {
		return 0, err
	}
	defer g.close()
	g.run(time.Now().Add(90 * time.Second))
	n := int(g.res.calibrated.Load())
	if n == 0 || g.res.ok != 1 {
		return 0, fmt.Errorf("calibration call failed: ok=%d failed=%v", g.res.ok, g.res.failed)
	}
	return n, nil
}

func printReport(r *report) {
	fmt.Printf("%-14s %-7s level %5d  calls %5d ok %5d failed %4d (503: %d)  retrans %d+%d  INVITE->200 avg %.1f p99 %.1f max %.1f ms",
		r.Label, r.Mode, r.Target, r.Calls, r.OK, r.Failed, r.Rejected503, r.RetransC, r.RetransS, r.SetupAvgMS, r.SetupP99MS, r.SetupMaxMS)
	fmt.Printf(" (p50 %.1f)", r.SetupP50MS)
	if r.DTMFN > 0 {
		fmt.Printf("  DTMF->prompt p50 %.1f p99 %.1f ms (n=%d)", r.DTMFP50MS, r.DTMFP99MS, r.DTMFN)
	}
	fmt.Printf("  peak %d  CPU %.1f%% (peak 1s %.1f%%, %.3f%%/call)  RSS idle %.1f peak %.1f after %.1f MB (%.1f KiB/call)",
		r.PeakLive, r.CPUPct, r.CPUPeakPct, r.CPUPerCall, r.RSSIdleMB, r.RSSPeakMB, r.RSSAfterMB, r.KiBPerCall)
	if r.WindowToS > 0 {
		fmt.Printf("  window %.1f-%.1f s", r.WindowFromS, r.WindowToS)
	}
	if r.CPUTotalS > 0 {
		fmt.Printf("  CPU whole run %.1f s = %.1f ms/call", r.CPUTotalS, r.CPUMsPerCall)
	}
	fmt.Printf("  server run-queue wait %.1f%%", r.WaitPct)
	if r.GenCPUPct > 0 {
		fmt.Printf("  generator CPU %.1f%% (run-queue wait %.1f%%)", r.GenCPUPct, r.GenWaitPct)
	}
	if r.EarlyStarts > 0 {
		fmt.Printf("  early starts %d (the greeting stalled ≥ -quiet: spoke on silence)", r.EarlyStarts)
	}
	if r.Rec != nil {
		fmt.Printf("  recordings %d: length exact %d, ±1 packet %d, short %d, long %d, broken %d, parts %d (worst short %d samples); content: frames good %d/%d, files every frame good %d, start missing %d (worst %d ms), not aligned %d, calls without a file %d",
			r.Rec.Files, r.Rec.Exact, r.Rec.OnePacket, r.Rec.Short, r.Rec.Long, r.Rec.Broken, r.Rec.Parts, r.Rec.WorstShort,
			r.Rec.FramesGood, r.Rec.FramesTotal, r.Rec.FilesExact, r.Rec.StartMissing, r.Rec.WorstStartMS, r.Rec.NotAligned, r.Rec.Missing)
	}
	if r.RTP != nil {
		fmt.Printf("  server RTP: received %d lost %d late %d duplicate %d dropped %d rejected %d",
			r.RTP.Received, r.RTP.Lost, r.RTP.Late, r.RTP.Duplicate, r.RTP.Dropped, r.RTP.Rejected)
		if r.RTP.KernelDropped != 0 || r.RTP.Unmatched != 0 {
			fmt.Printf(" shared port: kernel dropped %d unmatched %d", r.RTP.KernelDropped, r.RTP.Unmatched)
		}
		if r.AllocsPerCall > 0 {
			fmt.Printf("  server heap allocations per call: %.0f (%.1f KiB)", r.AllocsPerCall, r.AllocKiBPerCall)
		}
	}
	if len(r.FailedWhy) > 0 {
		keys := make([]string, 0, len(r.FailedWhy))
		for k := range r.FailedWhy {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Printf("  failures:")
		for _, k := range keys {
			fmt.Printf(" %q=%d", k, r.FailedWhy[k])
		}
	}
	fmt.Println()
}

func stats(d []time.Duration) (avg, p99, mx float64) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
		mx = max(mx, ms(x))
	}
	return round1(ms(sum) / float64(len(d))), pctl(d, 0.99), round1(mx)
}

// secondSetups is INVITE→200 of the INVITEs first sent in one second of
// the run: where in the run the slow answers are (a collection, the end
// of the ramp, the first hang-ups).
type secondSetups struct {
	Second int     `json:"s"`
	N      int     `json:"n"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
}

func bySecond(start time.Time, at []time.Time, d []time.Duration) []secondSetups {
	groups := map[int][]time.Duration{}
	last := 0
	for i, t := range at {
		s := max(0, int(t.Sub(start)/time.Second))
		groups[s] = append(groups[s], d[i])
		last = max(last, s)
	}
	var out []secondSetups
	for s := 0; s <= last; s++ {
		g := groups[s]
		if len(g) == 0 {
			continue
		}
		_, p99, mx := stats(g)
		out = append(out, secondSetups{Second: s, N: len(g), P50MS: pctl(g, 0.5), P99MS: p99, MaxMS: mx})
	}
	return out
}

func pctl(d []time.Duration, q float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*q+0.999999) - 1
	return round1(ms(s[max(0, min(i, len(s)-1))]))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mb(b int64) float64         { return round1(float64(b) / (1 << 20)) }
func round1(f float64) float64   { return float64(int64(f*10+0.5)) / 10 }
func round3(f float64) float64   { return float64(int64(f*1000+0.5)) / 1000 }

// setServer records the server's counters over the run and the heap
// allocations per completed call.
func (r *report) setServer(d serverCounters) {
	r.RTP = &d
	if r.OK > 0 && d.Mallocs > 0 {
		r.AllocsPerCall = math.Round(float64(d.Mallocs) / float64(r.OK))
		r.AllocKiBPerCall = round1(float64(d.AllocBytes) / 1024 / float64(r.OK))
	}
}
