package testcalls

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/siptest"
)

// TestReadmeLeaveMessage runs the sipp line the README and `make run` give
// (leave_message.xml from the repository root): '#' by RFC 4733 payload 96
// skips the greeting, the spoken message streams with rtp_stream, and the
// stored message is that audio, sample for sample.
func TestReadmeLeaveMessage(t *testing.T) {
	requireSipp(t)
	t.Parallel()
	s := startServer(t, "")
	leaveMessage(t, s)
	ms := checkSpokenMessage(t, s)
	// docs/metrics.md: the call, its RTP and the recorded seconds are counted.
	code, body, err := s.api("GET", "/metrics", nil, nil)
	if err != nil || code != 200 {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	for _, want := range []string{
		`voicemail_calls_total{kind="deposit",result="completed"} 1`,
		`voicemail_rtp_packets_total{type="received"}`,
		fmt.Sprintf("voicemail_recording_seconds_total %g", float64(ms)/1000),
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestDepositOverTCP leaves the same message over SIP on TCP.
func TestDepositOverTCP(t *testing.T) {
	requireSipp(t)
	t.Parallel()
	s := startServer(t, "")
	leaveMessage(t, s, "-t", "t1")
	checkSpokenMessage(t, s)
	if !strings.Contains(s.log.String(), `"transport":"TCP"`) {
		t.Error("the server did not log a TCP call")
	}
}

// leaveMessage runs leave_message.xml from the repository root, as the
// README does.
func leaveMessage(t *testing.T, s *server, extra ...string) {
	t.Helper()
	root := filepath.Dir(testDir)
	args := []string{"-sf", "testcalls/scenarios/leave_message.xml", "-s", "1001", "-m", "1", "-nostdin",
		"-i", "127.0.0.1", "-p", fmt.Sprint(freePort(t)), "-mp", fmt.Sprint(portBlock(t, 4)),
		"-timeout", "60s", "-timeout_error"}
	args = append(append(args, extra...), s.sipAddr())
	cmd := exec.Command("sipp", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sipp %v: %v\n%s", args, err, tail(string(out), 30))
	}
}

// checkSpokenMessage checks that 1001 holds exactly the streamed message,
// followed by at most recording.tail_ms of silence; it returns the stored
// duration.
func checkSpokenMessage(t *testing.T, s *server) int64 {
	t.Helper()
	rec := newestRecording(t, s, "1001", 1)
	// rtp_stream sends the file's bytes as they are: raw µ-law.
	ulaw, err := os.ReadFile(filepath.Join(testDir, "audio", "message.ulaw"))
	if err != nil {
		t.Fatal(err)
	}
	want := siptest.Decode(0, ulaw)
	got := rec.w.samples
	// sipp pads the last packet to a whole frame, and trailing silence is
	// trimmed to the 500 ms tail (recording.tail_ms): the recording is the
	// message, not shifted, then silence.
	const tail = 500 * 8
	if len(got) > len(want)+tail+160 {
		t.Fatalf("recording has %d samples, message %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("sample %d: recorded %d, sent %d", i, got[i], want[i])
		}
	}
	if len(got) > len(want) {
		if rest := siptest.MeanAbs(got[len(want):]); rest > 256 {
			t.Fatalf("after the message the recording is not silence (mean %.0f)", rest)
		}
	}
	if len(got) < len(want) {
		if rest := siptest.MeanAbs(want[len(got):]); rest > 256 {
			t.Fatalf("recording stops at %d of %d samples, but the rest is not silence (mean %0.f)", len(got), len(want), rest)
		}
	}
	t.Logf("recorded %d of %d samples (%.2f s) in %v", len(got), len(want), float64(len(got))/8000, time.Duration(rec.api.DurationMS)*time.Millisecond)
	return rec.api.DurationMS
}
