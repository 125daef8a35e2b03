package main

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
