package testcalls

// Real softphones against the real server (issue 16): baresip and
// linphonec, headless, file audio, loopback. They prove what sipp and the
// siptest client cannot: a phone that hangs up without incoming RTP stays
// in the call, and its audio is stored frame for frame.

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// locate finds src inside rec: the returned offset maps rec[i] to
// src[i+offset]. Unlike findOffset it tries windows over the whole of rec,
// as a phone's message may start with seconds of silence.
func locate(rec, src []int16) (int, bool) {
	for k := 0; k+320 <= len(rec); k += 160*3 + 17 {
		if off, ok := alignAt(rec, src, k, 320); ok {
			return off, true
		}
	}
	return 0, false
}

// requireWhole fails unless rec holds all of src, sample for sample, from
// its first frame to its last (the decay of the last word included), and
// returns where src starts in rec.
func requireWhole(t *testing.T, what string, rec, src []int16) int {
	t.Helper()
	off, ok := locate(rec, src)
	if !ok {
		t.Fatalf("%s (%d samples): the sent audio is not found in it", what, len(rec))
	}
	start := -off
	if start < 0 {
		t.Fatalf("%s: the first %d samples of the sent audio are missing", what, off)
	}
	if end := start + len(src); end > len(rec) {
		t.Fatalf("%s: the last %d samples (%.2f s) of the sent audio are missing", what, end-len(rec), float64(end-len(rec))/8000)
	}
	if n, first := mismatches(rec, src, off, start, start+len(src), nil); n > 0 {
		t.Fatalf("%s: %d of %d samples differ from what was sent, first at sent sample %d", what, n, len(src), first+off)
	}
	return start
}

// The phone leaves a message without pressing anything: it listens to the
// greeting and the beep, speaks 8.7 s and hangs up when its file ends.
func TestSoftphoneBaresipDeposit(t *testing.T) {
	requireTool(t, "baresip", "baresip-core")
	t.Parallel()
	s := startServer(t, "")
	speech := speechSamples(t)
	b := startBaresip(t, "tester")
	wav := filepath.Join(b.dir, "speech.wav")
	writeWAVFile(t, wav, speech)

	b.command("dial", fmt.Sprintf("sip:1001@%s", s.sipAddr()))
	b.waitEvent("CALL_ESTABLISHED", 10*time.Second)
	waitLog(t, s, `"msg":"recording"`, 30*time.Second)
	b.setSource(wav)
	b.waitEvent("CALL_CLOSED", 30*time.Second)

	msgs := s.waitMessages(t, "1001", 1, 20*time.Second)
	w, err := parseWAV(s.audio(t, "1001", msgs[0].ID))
	if err != nil {
		t.Fatal(err)
	}
	start := requireWhole(t, "the stored message", w.samples, speech)
	after := len(w.samples) - start - len(speech)
	t.Logf("message %d ms: %d ms before the speech, %d ms after", msgs[0].DurationMS, start/8, after/8)
	if after > 8000 {
		t.Errorf("%d ms kept after the end of the speech, want at most the 500 ms tail and a hang-up's latency", after/8)
	}
}
