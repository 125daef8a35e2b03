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

// holdsWhole reports whether rec holds all of src, sample for sample.
func holdsWhole(rec, src []int16) bool {
	off, ok := locate(rec, src)
	if !ok || off > 0 || -off+len(src) > len(rec) {
		return false
	}
	n, _ := mismatches(rec, src, off, -off, -off+len(src), nil)
	return n == 0
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
	// Not parallel: a heavy test runs before the two dozen parallel call
	// tests, alone, so that real phones and proxies are not starved on a
	// 2-core machine (testcalls/README.md).
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

// The phone puts the call on hold and resumes while it speaks: the
// recording goes on, and the hold period is kept as silence, not lost.
func TestSoftphoneBaresipHold(t *testing.T) {
	requireTool(t, "baresip", "baresip-core")
	// Not parallel: a heavy test runs before the two dozen parallel call
	// tests, alone, so that real phones and proxies are not starved on a
	// 2-core machine (testcalls/README.md).
	s := startServer(t, "")
	speech := speechSamples(t)
	b := startBaresip(t, "tester")
	wav := filepath.Join(b.dir, "speech.wav")
	writeWAVFile(t, wav, speech)

	b.command("dial", fmt.Sprintf("sip:1001@%s", s.sipAddr()))
	b.waitEvent("CALL_ESTABLISHED", 10*time.Second)
	waitLog(t, s, `"msg":"recording"`, 30*time.Second)
	b.setSource(wav)
	time.Sleep(3 * time.Second)
	b.command("hold", "")
	time.Sleep(2 * time.Second)
	b.command("resume", "")
	b.waitEvent("CALL_CLOSED", 30*time.Second)

	msgs := s.waitMessages(t, "1001", 1, 20*time.Second)
	w, err := parseWAV(s.audio(t, "1001", msgs[0].ID))
	if err != nil {
		t.Fatal(err)
	}
	rec := w.samples
	off, ok := locate(rec, speech)
	if !ok {
		t.Fatal("the sent speech is not found in the message")
	}
	start := -off
	if start < 0 || start+len(speech) > len(rec) {
		t.Fatalf("the message (%d samples) does not span the %d samples of speech from sample %d: time was lost", len(rec), len(speech), start)
	}
	// Every sample differing from the speech must lie in one stretch of
	// silence: the hold. The speech after it sits at the same offset, so
	// no time was lost.
	first, last := -1, -1
	for i := range speech {
		if rec[start+i] != speech[i] {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	t.Logf("message %d ms; speech from %d ms; differs from %d to %d ms of the speech", msgs[0].DurationMS, start/8, first/8, last/8)
	if first < 0 || last-first < 8000 {
		t.Fatalf("the hold left no silence of a second or more in the message (differs from sample %d to %d)", first, last)
	}
	if first < 2*8000 || last > 6*8000 {
		t.Errorf("the silence spans %d to %d ms of the speech, want it within the hold (3 s to 5 s)", first/8, last/8)
	}
	for i := first; i <= last; i++ {
		if v := rec[start+i]; v > 16 || v < -16 {
			t.Fatalf("sample %d of the hold is %d, not silence", start+i, v)
		}
	}
}

// The phone calls the access number, logs in with RFC 4733 digits (its own
// number is the mailbox: only the PIN), hears the message and deletes it.
func TestSoftphoneBaresipAccess(t *testing.T) {
	requireTool(t, "baresip", "baresip-core")
	// Not parallel: a heavy test runs before the two dozen parallel call
	// tests, alone, so that real phones and proxies are not starved on a
	// 2-core machine (testcalls/README.md).
	s := startServer(t, "")
	speech := speechSamples(t)
	deposit(t, s, "1001", speech)
	m := s.waitMessages(t, "1001", 1, 20*time.Second)[0]
	stored, err := parseWAV(s.audio(t, "1001", m.ID))
	if err != nil {
		t.Fatal(err)
	}

	b := startBaresip(t, "1001")
	b.command("dial", fmt.Sprintf("sip:5555@%s", s.sipAddr()))
	b.waitEvent("CALL_ESTABLISHED", 10*time.Second)
	keys := func(digits string, then time.Duration) {
		for _, d := range digits {
			b.command("sndcode", string(d))
			time.Sleep(250 * time.Millisecond)
		}
		time.Sleep(then)
	}
	time.Sleep(time.Second)
	keys("1234#", 3500*time.Millisecond) // the PIN
	keys("1", time.Second)               // the personal mailbox
	keys("1", 0)                         // play: the envelope, then the message
	b.waitHeard(stored.samples, 40*time.Second)
	keys("7", time.Second) // delete
	keys("#", 0)           // exit: the server says goodbye and hangs up
	b.waitEvent("CALL_CLOSED", 20*time.Second)
	b.stop()

	heard := b.heard()
	start := requireWhole(t, "what baresip heard", heard, stored.samples)
	t.Logf("baresip heard %d ms; the message from %d ms", len(heard)/8, start/8)
	checkDeleted(t, s, dbMessage{ID: m.ID})
}
