package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// perfbudget reads `perf script` output of the server (perf record -g)
// and prints where its samples went: each sample counts once, in the
// first of budgetRows whose functions are on its stack, and as kernel time
// when the sampled function is the kernel's. pprof cannot show this: it
// sees a system call as one frame, not the network stack or the page
// cache under it (BENCHMARKS.md, "What one core does at 3,000").
//
//	perf script -i perf.data | vmload perfbudget
func cmdPerfBudget(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("perfbudget reads perf script output on standard input; no arguments")
	}
	stacks, err := parsePerfScript(os.Stdin)
	if err != nil {
		return err
	}
	printBudget(os.Stdout, budget(stacks))
	return nil
}

// perfFrame is one frame of a sample's stack, leaf first.
type perfFrame struct {
	sym    string // without the +0x offset
	kernel bool
}

// parsePerfScript splits perf script output into samples: a header line,
// then one indented frame per line ("addr sym+off (dso)"), then a blank
// line.
func parsePerfScript(r io.Reader) ([][]perfFrame, error) {
	var stacks [][]perfFrame
	var cur []perfFrame
	in := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			if in && len(cur) > 0 {
				stacks = append(stacks, cur)
			}
			cur, in = nil, false
		case line[0] != ' ' && line[0] != '\t':
			if in && len(cur) > 0 {
				stacks = append(stacks, cur)
			}
			cur, in = nil, true
		case in:
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			sym, _, _ := strings.Cut(f[1], "+0x")
			cur = append(cur, perfFrame{sym: sym, kernel: strings.HasSuffix(line, "([kernel.kallsyms])")})
		}
	}
	if in && len(cur) > 0 {
		stacks = append(stacks, cur)
	}
	return stacks, sc.Err()
}

// budgetRow is a share of the server's work: samples with any of these
// functions on their stack (a substring of the symbol).
type budgetRow struct {
	name  string
	funcs []string
}

// budgetRows, in order: the first row that matches takes the sample, so
// system calls come before the goroutines that make them.
var budgetRows = []budgetRow{
	{"sending RTP: sendmmsg (loopback delivery to the generator included)", []string{"__sys_sendmmsg"}},
	{"media clock, the rest (which calls send what)", []string{"media.(*clock).run"}},
	{"receiving RTP: recvmmsg", []string{"__x64_sys_recvmmsg"}},
	{"receiving RTP: to the recording (lookup, jitter, recorder)", []string{"media.(*mux).readLoop"}},
	{"writing recordings (writers: write)", []string{"call.(*writers).run"}},
	{"commit: fsync of the WAV", []string{"do_fsync"}},
	{"commit: the rest (header, rename, rows)", []string{"call.(*recorder).commit", "store.(*groupCommitter).run", "call.(*depositCall).endRecording"}},
	{"starting a recording (files)", []string{"call.(*depositCall).startRecording"}},
	{"SIP and the calls' own goroutines (sipgo, dialogs, the deposit machine)", []string{"emiago/sipgo", "voicemail/sip."}},
	{"change feed: webhooks, followers", []string{"api.(*Server).consumeWebhooks", "store.Follow", "store.(*Changes)", "store.(*subscriber)"}},
	{"Go: garbage collector", []string{"runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge"}},
	{"Go: sysmon", []string{"runtime.sysmon"}},
	{"Go: scheduler (park, find work, system call hand-offs)", []string{"runtime.schedule", "runtime.findRunnable", "runtime.park_m", "runtime.mcall", "runtime.exitsyscall", "runtime.entersyscall"}},
}

type budgetLine struct {
	name            string
	samples, kernel int
}

// budget counts the samples per row; the last line is what no row took,
// and the total is the count of samples.
func budget(stacks [][]perfFrame) (lines []budgetLine) {
	lines = make([]budgetLine, len(budgetRows)+1)
	for i, r := range budgetRows {
		lines[i].name = r.name
	}
	lines[len(budgetRows)].name = "other (SQLite, Go without a known caller)"
	for _, s := range stacks {
		i := rowOf(s)
		lines[i].samples++
		if s[0].kernel {
			lines[i].kernel++
		}
	}
	return lines
}

func rowOf(s []perfFrame) int {
	for i, r := range budgetRows {
		for _, f := range s {
			for _, fn := range r.funcs {
				if strings.Contains(f.sym, fn) {
					return i
				}
			}
		}
	}
	return len(budgetRows)
}

func printBudget(w io.Writer, lines []budgetLine) {
	total, kernel := 0, 0
	for _, l := range lines {
		total += l.samples
		kernel += l.kernel
	}
	if total == 0 {
		fmt.Fprintln(w, "no samples")
		return
	}
	pct := func(n int) float64 { return 100 * float64(n) / float64(total) }
	fmt.Fprintf(w, "| where | %% of the server's samples | of which in the kernel |\n|---|---:|---:|\n")
	for _, l := range lines {
		fmt.Fprintf(w, "| %s | %.1f | %.1f |\n", l.name, pct(l.samples), pct(l.kernel))
	}
	fmt.Fprintf(w, "| **all** (%d samples) | 100 | **%.1f** |\n", total, pct(kernel))
}
