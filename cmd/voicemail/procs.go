package main

import (
	"log/slog"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// minProcs is the GOMAXPROCS the server runs with: the runtime's choice,
// but at least 2 unless GOMAXPROCS is set in the environment.
//
// With one P (a process allowed a single CPU: taskset, a cpuset, a
// one-CPU machine), a goroutine inside a blocking system call or cgo call
// — a recording's fsync, a SQLite statement — keeps the only P until the
// runtime's monitor takes it back, which can be milliseconds later; the
// shared RTP reader, the media clock and new INVITEs wait meanwhile. At
// 2,000 concurrent deposits on one pinned core that put the RTP reader
// seconds behind and INVITE→200 p99 at 21–27 ms; with two Ps the kernel
// runs the other thread while one blocks (docs/performance.md). Go itself
// never goes below 2 for a cgroup CPU quota; this is the same floor for a
// single allowed CPU.
func minProcs(current int, env string) int {
	if env != "" || current >= 2 {
		return current
	}
	return 2
}

// setMemoryLimit makes a container's memory limit (cgroup v1 or v2) the
// garbage collector's soft limit, at 90 % of it: near the limit the
// collector runs more often instead of the kernel killing the process in
// a burst of calls, and far from it nothing changes (GOGC stays 100).
// GOMEMLIMIT in the environment wins; AUTOMEMLIMIT=off or a ratio
// (AUTOMEMLIMIT=0.8) is read by the library. Without a limit, no change.
func setMemoryLimit(log *slog.Logger, opts ...memlimit.Option) {
	opts = append([]memlimit.Option{memlimit.WithLogger(log)}, opts...)
	// The library logs what it set, or why not; a failure leaves Go's default.
	_, _ = memlimit.Set(opts...)
}
