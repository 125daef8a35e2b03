package main

import (
	"syscall"
	"time"
)

// launchesDue is the call scheduler: how many calls to start now. Calls
// are due one every 1/rate s from the start (the first at once); calls
// held back by the concurrency limit start as soon as places free up
// (as sipp's -r with -l does), never more than the calls left.
//
// With limit N, rate N/10 and total 2N this is the churn mix (the same as
// sipp -l N -r N/10 -m 2N): N calls up after 10 s, each ended call
// replaced at once, so greetings, recordings, commits and call setups
// overlap.
func launchesDue(elapsed time.Duration, rate float64, launched, live, limit, total int) int {
	if elapsed < 0 || rate <= 0 {
		return 0
	}
	due := int(elapsed.Seconds()*rate) + 1
	n := min(due-launched, total-launched, limit-live)
	return max(n, 0)
}

// churnWindow is the steady window of a churn run, measured from the
// start of the load: from the moment the Nth call is due (the level is
// full) to the moment the last call is due, when calls stop being
// replaced. callLen is a call's length (greeting, beep, audio, hang-up).
// It is used for sipp, whose launch times vmload does not see; vmload
// measures the same two moments from its own launches.
func churnWindow(level, total int, rate float64, callLen time.Duration) (from, to time.Duration) {
	if level < 1 || rate <= 0 {
		return 0, 0
	}
	// start[k] is when call k (0-based) starts: when the rate schedule
	// makes it due, or, beyond the level, when the call it replaces
	// (k-level) has ended, whichever is later.
	total = max(total, level)
	start := make([]time.Duration, total)
	for k := range start {
		start[k] = time.Duration(float64(k) / rate * float64(time.Second))
		if k >= level {
			start[k] = max(start[k], start[k-level]+callLen)
		}
	}
	return start[level-1], start[total-1]
}

// framesDue is how many audio frames a call sends on this clock round:
// the frames whose 20 ms slot has come since the first (sent at 0), at
// most 2 at once so that a late round catches up without a burst.
func framesDue(sinceFirst time.Duration, sent int) int {
	if sinceFirst < 0 {
		return 0
	}
	due := int(sinceFirst/(20*time.Millisecond)) + 1
	return max(min(due-sent, 2), 0)
}

// selfCPU is the CPU time this process used so far (user + system), from
// getrusage: the generator reports its own load so that a saturated
// generator is visible next to the server's figures.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
