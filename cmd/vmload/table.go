package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// cmdTable turns the JSON lines of runs (vmload run -json, and the sipp
// runs of testcalls/load/run.sh, which write the same fields) into a
// Markdown table.
func cmdTable(args []string) error {
	var in io.Reader = os.Stdin
	if len(args) > 0 {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	var churn []report
	fmt.Println("| run | mode | level | calls ok/failed (503) | retrans | INVITE→200 avg / p99 ms | DTMF→prompt p99 ms | server CPU % of a core (peak 1 s) | CPU %/call | RSS idle / peak / after MB | KiB/call | recordings complete (exact / ±1 pkt / files) |")
	fmt.Println("|---|---|---:|---|---:|---|---:|---|---:|---|---:|---|")
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r report
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return err
		}
		if r.Mode == "churn" || r.Mode == "sipp-churn" {
			churn = append(churn, r)
			continue
		}
		rec := "—"
		if r.Rec != nil {
			rec = fmt.Sprintf("%d / %d / %d", r.Rec.Exact, r.Rec.OnePacket, r.Rec.Files)
			if r.Rec.Parts > 0 || r.Rec.Short > 0 {
				rec += fmt.Sprintf(" (short %d, parts %d)", r.Rec.Short, r.Rec.Parts)
			}
		}
		dtmf := "—"
		if r.DTMFN > 0 {
			dtmf = fmt.Sprintf("%.1f (n=%d)", r.DTMFP99MS, r.DTMFN)
		}
		level := fmt.Sprint(r.Target)
		if r.Mode == "setup" {
			level = fmt.Sprintf("%.0f/s", r.Rate)
		}
		fmt.Printf("| %s | %s | %s | %d/%d (%d) | %d+%d | %.1f / %.1f | %s | %.1f (%.1f) | %.3f | %.1f / %.1f / %.1f | %.1f | %s |\n",
			r.Label, r.Mode, level, r.OK, r.Failed, r.Rejected503, r.RetransC, r.RetransS, r.SetupAvgMS, r.SetupP99MS,
			dtmf, r.CPUPct, r.CPUPeakPct, r.CPUPerCall, r.RSSIdleMB, r.RSSPeakMB, r.RSSAfterMB, r.KiBPerCall, rec)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(churn) > 0 {
		fmt.Println()
		churnTable(churn)
	}
	return nil
}

// churnTable prints the churn runs (vmload churn and sipp churn) in the
// form of BENCHMARKS.md: steady-window CPU, CPU per completed call,
// content of the recordings, the server's RTP counters, generator CPU.
func churnTable(rs []report) {
	fmt.Println("| run | level | calls ok/failed | retrans | INVITE→200 p50 / p99 ms | server CPU % of a core, steady window (peak 1 s) | server run-queue wait % | %/call | CPU ms per completed call (whole run) | frames good / total | files every frame good / files | server RTP lost / late / dup | generator CPU % (run-queue wait %) |")
	fmt.Println("|---|---:|---|---:|---|---|---:|---:|---:|---|---|---|---|")
	for _, r := range rs {
		frames, files := "—", "—"
		if r.Rec != nil {
			frames = fmt.Sprintf("%d / %d", r.Rec.FramesGood, r.Rec.FramesTotal)
			files = fmt.Sprintf("%d / %d", r.Rec.FilesExact, r.Rec.Files)
			if r.Rec.Missing > 0 {
				files += fmt.Sprintf(" (%d completed calls left no file)", r.Rec.Missing)
			}
			if r.Rec.StartMissing > 0 || r.Rec.NotAligned > 0 {
				files += fmt.Sprintf(" (start missing %d, worst %d ms; not found %d)", r.Rec.StartMissing, r.Rec.WorstStartMS, r.Rec.NotAligned)
			}
		}
		rtp := "—"
		if r.RTP != nil {
			rtp = fmt.Sprintf("%d / %d / %d", r.RTP.Lost, r.RTP.Late, r.RTP.Duplicate)
		}
		gen := "—"
		if r.GenCPUPct > 0 {
			gen = fmt.Sprintf("%.1f (wait %.1f)", r.GenCPUPct, r.GenWaitPct)
		}
		if r.EarlyStarts > 0 {
			files += fmt.Sprintf("; %d early starts", r.EarlyStarts)
		}
		fmt.Printf("| %s | %d | %d/%d | %d+%d | %.1f / %.1f | %.1f (%.1f) | %.1f | %.3f | %.1f | %s | %s | %s | %s |\n",
			r.Label, r.Target, r.OK, r.Failed, r.RetransC, r.RetransS, r.SetupP50MS, r.SetupP99MS,
			r.CPUPct, r.CPUPeakPct, r.WaitPct, r.CPUPerCall, r.CPUMsPerCall, frames, files, rtp, gen)
	}
}
