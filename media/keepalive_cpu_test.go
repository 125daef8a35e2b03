//go:build keepalivebench

package media

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// TestKeepAliveCPU measures the CPU a waiting (recording, silent) call
// costs the process, per call, without keep-alive (on hold: the old
// behaviour while recording), with comfort noise and with silence frames.
// It only reports figures (BENCHMARKS.md):
//
//	go test -tags keepalivebench -count=1 -run TestKeepAliveCPU -v ./media/
func TestKeepAliveCPU(t *testing.T) {
	const calls, seconds = 200, 5
	// One socket nobody reads stands for the callers: the kernel drops
	// what overflows its buffer, as the far end's NIC would take it.
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	for _, v := range []struct {
		name   string
		remote *net.UDPAddr
		cn     uint8
	}{
		{"no keep-alive (hold)", nil, 0},
		{"comfort noise", sink.LocalAddr().(*net.UDPAddr), 13},
		{"silence frames", sink.LocalAddr().(*net.UDPAddr), 0},
	} {
		e, err := NewEngine(EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 36000, PortMax: 37999})
		if err != nil {
			t.Fatal(err)
		}
		for range calls {
			s, err := e.NewSession(SessionConfig{Codec: PCMU, CNPayload: v.cn, Remote: v.remote})
			if err != nil {
				t.Fatal(err)
			}
			s.Record(discard{})
		}
		time.Sleep(500 * time.Millisecond)
		before := cpuTime(t)
		time.Sleep(seconds * time.Second)
		used := cpuTime(t) - before
		e.Close()
		perCall := float64(used) / float64(seconds*time.Second) / calls * 100
		t.Logf("%-22s %d calls: %.3f %% of a core in all, %.4f %% of a core per call", v.name, calls, float64(used)/float64(seconds*time.Second)*100, perCall)
	}
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
