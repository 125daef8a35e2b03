package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clkTck is USER_HZ, 100 on every Linux this runs on.
const clkTck = 100

// sample is one reading of the server process.
type sample struct {
	at    time.Time
	ticks int64 // utime+stime
	rss   int64 // bytes
	wait  int64 // ns its threads spent runnable but waiting for a CPU (schedstat)
}

func readProc(pid int) (sample, error) {
	s := sample{at: time.Now()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return s, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 22 {
		return s, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	rssPages, _ := strconv.ParseInt(f[21], 10, 64)
	s.ticks = ut + st
	s.rss = rssPages * int64(os.Getpagesize())
	s.wait = runqWait(pid)
	return s, nil
}

// runqWait sums, over the threads of pid, the time they were ready to run
// but waited for a CPU (the second field of /proc/<pid>/task/*/schedstat).
// On a shared machine this is how much other processes on the pinned
// core held the server back: CPU percentages from a starved process are
// not its capacity.
func runqWait(pid int) int64 {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var sum int64
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			sum += n
		}
	}
	return sum
}

// waitPct is the run-queue wait of the process between a and b, as % of
// the wall time: 10 means its threads together waited 0.1 s per second.
func (s *sampler) waitPct(a, b time.Time) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first, last *sample
	for i := range s.all {
		x := &s.all[i]
		if x.at.Before(a) || x.at.After(b) {
			continue
		}
		if first == nil {
			first = x
		}
		last = x
	}
	if first == nil || last == first {
		return 0
	}
	return round1(float64(last.wait-first.wait) / float64(last.at.Sub(first.at)) * 100)
}

// sampler reads /proc/<pid> every period until stopped.
type sampler struct {
	pid  int
	mu   sync.Mutex
	all  []sample
	stop chan struct{}
	done chan struct{}
}

func startSampler(pid int, period time.Duration) *sampler {
	s := &sampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			if x, err := readProc(pid); err == nil {
				s.mu.Lock()
				s.all = append(s.all, x)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) close() { close(s.stop); <-s.done }

// window returns the CPU use (percent of one core) between a and b, the
// busiest one-second stretch in it, and the peak RSS over it.
func (s *sampler) window(a, b time.Time) (avg, peak1s float64, rssPeak int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var in []sample
	for _, x := range s.all {
		if !x.at.Before(a) && !x.at.After(b) {
			in = append(in, x)
		}
	}
	if len(in) < 2 {
		return 0, 0, 0
	}
	first, last := in[0], in[len(in)-1]
	avg = pct(first, last)
	for i := range in {
		rssPeak = max(rssPeak, in[i].rss)
		for j := i + 1; j < len(in); j++ {
			if in[j].at.Sub(in[i].at) >= time.Second {
				peak1s = max(peak1s, pct(in[i], in[j]))
				break
			}
		}
	}
	return avg, peak1s, rssPeak
}

func pct(a, b sample) float64 {
	d := b.at.Sub(a.at).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(b.ticks-a.ticks) / clkTck / d * 100
}

func (s *sampler) peakRSS() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m int64
	for _, x := range s.all {
		m = max(m, x.rss)
	}
	return m
}
