package testcalls

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/siptest"
)

// The caller the sipp scenarios present (From: "Test Caller" <sip:+14155550100@...>).
const (
	sippCallerName = "Test Caller"
	callerNumber   = "+14155550100"
)

// Greetings the tests install, in tones away from the 1000 Hz beep.
const (
	busyHz        = 600.0
	unavailableHz = 1400.0
	beepHz        = 1000.0
)

// depositServer starts a server and gives 1001 and 1002 short (0.5 s)
// greetings so that deposits reach the beep quickly.
func depositServer(t *testing.T, extra ...string) *server {
	t.Helper()
	s := startServer(t, "", extra...)
	for _, mb := range []string{"1001", "1002"} {
		s.putGreeting(t, mb, "unavailable", siptest.Tone(unavailableHz, 4000, 6000))
		s.putGreeting(t, mb, "busy", siptest.Tone(busyHz, 4000, 6000))
	}
	return s
}

func pauseFor(pcap string) string {
	return fmt.Sprint(manifest.Pcaps[pcap].DurationMS + 1000)
}

// recording is one stored message with its audio.
type recording struct {
	api  apiMessage
	db   dbMessage
	path string
	wav  []byte
	w    *wavFile
}

// newestRecording waits until mailbox holds want messages and returns the
// newest (ids sort by time), checking that the API, the database row and the
// media file agree.
func newestRecording(t *testing.T, s *server, mailbox string, want int) recording {
	t.Helper()
	msgs := s.waitMessages(t, mailbox, want, 20*time.Second)
	if len(msgs) != want {
		t.Fatalf("mailbox %s has %d messages, want %d: %+v", mailbox, len(msgs), want, msgs)
	}
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].ID < msgs[j].ID })
	r := recording{api: msgs[len(msgs)-1]}

	rows := s.dbMessages(t, mailbox)
	if len(rows) != want {
		t.Fatalf("messages table has %d rows for %s, want %d", len(rows), mailbox, want)
	}
	for _, row := range rows {
		if row.ID == r.api.ID {
			r.db = row
		}
	}
	if r.db.ID == "" {
		t.Fatalf("message %s from the API is not in the messages table", r.api.ID)
	}
	if wantKey := "default/" + mailbox + "/" + r.api.ID + ".wav"; r.db.MediaKey != wantKey {
		t.Errorf("media_key %q, want %q", r.db.MediaKey, wantKey)
	}
	r.path = filepath.Join(s.dataDir, "media", "default", mailbox, r.api.ID+".wav")
	var err error
	if r.wav, err = os.ReadFile(r.path); err != nil {
		t.Fatalf("message audio not at %s: %v", r.path, err)
	}
	if got := s.audio(t, mailbox, r.api.ID); string(got) != string(r.wav) {
		t.Errorf("API audio (%d bytes) differs from %s (%d bytes)", len(got), r.path, len(r.wav))
	}
	if r.w, err = parseWAV(r.wav); err != nil {
		t.Fatalf("message WAV %s: %v", r.path, err)
	}
	checkWAVHeader(t, r.wav, r.w)

	a, d := r.api, r.db
	if a.Mailbox != mailbox || d.Mailbox != mailbox || d.Tenant != "default" {
		t.Errorf("mailbox/tenant: api %q, db %q/%q; want %s/default", a.Mailbox, d.Mailbox, d.Tenant, mailbox)
	}
	if a.Folder != "new" || d.Folder != "new" || a.Read || d.Read || a.Urgent || d.Urgent {
		t.Errorf("new message flags: api folder %q read %v urgent %v, db folder %q read %v urgent %v",
			a.Folder, a.Read, a.Urgent, d.Folder, d.Read, d.Urgent)
	}
	if a.Size != int64(len(r.wav)) || d.Size != a.Size {
		t.Errorf("size: api %d, db %d, file %d bytes", a.Size, d.Size, len(r.wav))
	}
	samples := int64(len(r.w.samples))
	if diff := a.DurationMS - samples/8; diff < -20 || diff > 20 || d.DurationMS != a.DurationMS {
		t.Errorf("duration_ms: api %d, db %d; the WAV holds %d samples = %d ms", a.DurationMS, d.DurationMS, samples, samples/8)
	}
	if ts, err := time.Parse(time.RFC3339Nano, a.ReceivedAt); err != nil {
		t.Errorf("received_at %q is not RFC 3339: %v", a.ReceivedAt, err)
	} else if age := time.Since(ts); age < -time.Minute || age > 10*time.Minute {
		t.Errorf("received_at %s is not now", a.ReceivedAt)
	}
	if !strings.Contains(a.CallerID, strings.TrimPrefix(callerNumber, "+")) || !strings.Contains(d.CallerID, strings.TrimPrefix(callerNumber, "+")) {
		t.Errorf("caller_id: api %q, db %q; want the From user %s", a.CallerID, d.CallerID, callerNumber)
	}
	if d.CallerE164 != callerNumber {
		t.Errorf("caller_e164 %q, want %s", d.CallerE164, callerNumber)
	}
	return r
}

func checkCallerName(t *testing.T, r recording, want string) {
	t.Helper()
	if r.api.CallerName != want || r.db.CallerName != want {
		t.Errorf("caller_name: api %q, db %q; want %q", r.api.CallerName, r.db.CallerName, want)
	}
}

// checkExactSuffix: the recording is exactly the end of the sent audio
// (decoded through the codec), starting wherever recording began.
func checkExactSuffix(t *testing.T, rec []int16, pt uint8, sentSamples int) {
	t.Helper()
	dec := decodedSource(pt, sentSamples)
	off, ok := findOffset(rec, dec)
	if !ok {
		t.Fatalf("the recording (%d samples, mean |x| %.0f) is not found in the sent audio", len(rec), siptest.MeanAbs(rec))
	}
	t.Logf("recording: %d samples (%.2f s), starts at source sample %d (%.3f s)", len(rec), float64(len(rec))/8000, off, float64(off)/8000)
	if off < 0 {
		t.Fatalf("recording starts %d samples before the audio was sent", -off)
	}
	if len(rec) < 2*8000 {
		t.Errorf("recording is %d samples, shorter than min_seconds (2 s)", len(rec))
	}
	if want := len(dec) - off; len(rec) != want {
		t.Errorf("recording has %d samples, want %d (the rest of the sent audio): %+d", len(rec), want, len(rec)-want)
	}
	if n, first := mismatches(rec, dec, off, 0, len(rec), nil); n > 0 {
		t.Errorf("%d samples differ from the sent audio, first at recording sample %d", n, first)
	}
}

// (a) and (b): a clean deposit, stored exactly.
func TestDepositPCMU(t *testing.T) { testDeposit(t, "PCMU", 0, "audio_pcmu.pcap") }
func TestDepositPCMA(t *testing.T) { testDeposit(t, "PCMA", 8, "audio_pcma.pcap") }

func testDeposit(t *testing.T, codec string, pt uint8, pcap string) {
	t.Parallel()
	requireSipp(t)
	s := depositServer(t)
	runSipp(t, s, "uac_deposit.xml", "1001",
		"codec_pt", fmt.Sprint(pt), "codec_name", codec,
		"pcap", pcapPath(pcap), "pause_ms", pauseFor(pcap))
	r := newestRecording(t, s, "1001", 1)
	checkCallerName(t, r, sippCallerName)
	checkExactSuffix(t, r.w.samples, pt, len(source))
	if left := s.mediaFiles(t, ".part"); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if n := len(s.messages(t, "1002")); n != 0 {
		t.Errorf("1002 got %d messages", n)
	}
}

// (c): damaged RTP still gives a recording within one packet of the truth,
// with every frame that was sent stored exactly.
func TestDepositDamagedRTP(t *testing.T) {
	for _, name := range []string{"loss", "reorder", "dup", "wrap", "ssrc"} {
		pcap := "audio_pcmu_" + name + ".pcap"
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			requireSipp(t)
			info := manifest.Pcaps[pcap]
			if info == nil {
				t.Fatalf("%s missing from manifest.json", pcap)
			}
			s := depositServer(t)
			runSipp(t, s, "uac_deposit.xml", "1001",
				"codec_pt", "0", "codec_name", "PCMU",
				"pcap", pcapPath(pcap), "pause_ms", pauseFor(pcap))
			r := newestRecording(t, s, "1001", 1)
			checkDamaged(t, r.w.samples, info)
		})
	}
}

func checkDamaged(t *testing.T, rec []int16, info *pcapInfo) {
	t.Helper()
	dec := decodedSource(0, len(source))
	off, ok := findOffset(rec, dec)
	if !ok {
		t.Fatalf("the recording (%d samples) is not found in the sent audio", len(rec))
	}
	truth := len(dec) - off
	t.Logf("%s: recording %d samples from source sample %d; truth %d (%+d)", info.File, len(rec), off, truth, len(rec)-truth)
	if d := len(rec) - truth; d < -160 || d > 160 {
		t.Errorf("recording has %d samples, truth is %d: off by %d, more than one packet", len(rec), truth, d)
	}
	lost := map[int]bool{}
	for _, f := range info.Dropped {
		lost[f] = true
	}
	end := min(len(rec), truth)
	if info.SSRCChangeAt > 0 {
		seam := info.SSRCChangeAt*160 - off // the seam, in recording samples
		if seam <= 0 || seam >= end {
			t.Fatalf("the SSRC change (source sample %d) is outside the recording", info.SSRCChangeAt*160)
		}
		if n, first := mismatches(rec, dec, off, 0, seam, nil); n > 0 {
			t.Errorf("before the SSRC change: %d samples differ, first at recording sample %d", n, first)
		}
		off2, ok := alignAt(rec, dec, seam+320, 320)
		if !ok {
			t.Fatalf("after the SSRC change the recording no longer matches the sent audio")
		}
		if off2 != off {
			t.Logf("after the SSRC change the recording shifts by %d samples", off2-off)
		}
		if d := off2 - off; d < -160 || d > 160 {
			t.Errorf("after the SSRC change the recording is shifted by %d samples (more than one packet)", d)
		}
		if n, first := mismatches(rec, dec, off2, seam+160, min(len(rec), len(dec)-off2), nil); n > 0 {
			t.Errorf("after the SSRC change: %d samples differ, first at recording sample %d", n, first)
		}
		return
	}
	if n, first := mismatches(rec, dec, off, 0, end, lost); n > 0 {
		t.Errorf("%d samples of frames that were sent differ, first at recording sample %d (source frame %d)", n, first, (first+off)/160)
	}
}

// (d): CANCEL before the answer: 200 to the CANCEL, 487, nothing stored.
func TestCancelBeforeAnswer(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	s := startServer(t, "", "--sip-answer-delay", "2s")
	runSipp(t, s, "uac_cancel.xml", "1001")
	time.Sleep(2500 * time.Millisecond) // past the answer delay
	assertNothingStored(t, s, "1001")
}

// TestCancelAndCopyAfterAnswer: the INVITE's transaction ends at our 200
// (docs/sip.md); a CANCEL crossing the answer still gets 200 and no 487, a
// late copy of the INVITE neither a 482 nor a second call, and the call
// goes on to the caller's BYE (sipp fails on any unexpected answer).
func TestCancelAndCopyAfterAnswer(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	s := startServer(t, "")
	runSipp(t, s, "uac_cancel_after_answer.xml", "1001")
	assertNothingStored(t, s, "1001") // hung up during the greeting
}

// (e): BYE during the greeting: nothing stored.
func TestByeDuringGreeting(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	s := startServer(t, "")
	s.putGreeting(t, "1001", "unavailable", siptest.Tone(unavailableHz, 5*8000, 6000))
	runSipp(t, s, "uac_bye_during_greeting.xml", "1001")
	time.Sleep(1500 * time.Millisecond)
	assertNothingStored(t, s, "1001")
}

func assertNothingStored(t *testing.T, s *server, mailbox string) {
	t.Helper()
	if m := s.messages(t, mailbox); len(m) != 0 {
		t.Errorf("API lists %d messages in %s: %+v", len(m), mailbox, m)
	}
	if rows := s.dbMessages(t, mailbox); len(rows) != 0 {
		t.Errorf("messages table has %d rows for %s", len(rows), mailbox)
	}
	if f := s.mediaFiles(t, ".wav", ".part"); len(f) != 0 {
		t.Errorf("media files left: %v", f)
	}
}

// (f), (g), (h): status codes, one server.
func TestSIPStatusCodes(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	s := startServer(t, "")
	t.Run("unknown_mailbox_404", func(t *testing.T) {
		runSipp(t, s, "uac_expect_status.xml", "1999", "status", "404")
	})
	t.Run("g729_only_488", func(t *testing.T) {
		runSipp(t, s, "uac_g729.xml", "1001")
	})
	t.Run("options_200", func(t *testing.T) {
		runSipp(t, s, "uac_options.xml", "1001")
	})
	t.Run("message_405", func(t *testing.T) {
		runSipp(t, s, "uac_message.xml", "1001")
	})
	t.Run("bye_unknown_481", func(t *testing.T) {
		runSipp(t, s, "uac_bye_unknown.xml", "1001")
	})
	t.Run("unknown_method_501", func(t *testing.T) {
		runSipp(t, s, "uac_unknown_method.xml", "1001")
	})
	assertNothingStored(t, s, "1001")
}

// (i): RFC 4458 cause picks the greeting; heard through the siptest client.
// The greetings are 1.5 s tones: busy 600 Hz, unavailable 1400 Hz; then the
// server may play its instructions, then the 1000 Hz beep.
func TestGreetingByCause(t *testing.T) {
	cases := []struct {
		cause       string
		want, other float64
	}{
		{"486", busyHz, unavailableHz},
		{"480", unavailableHz, busyHz},
	}
	for _, tc := range cases {
		t.Run("cause="+tc.cause, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, "")
			s.putGreeting(t, "1002", "busy", siptest.Tone(busyHz, 12000, 8000))
			s.putGreeting(t, "1002", "unavailable", siptest.Tone(unavailableHz, 12000, 8000))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, err := siptest.Dial(ctx, siptest.Config{
				Server:     s.sipAddr(),
				RequestURI: fmt.Sprintf("sip:vm@127.0.0.1:%d;target=1002;cause=%s", s.sipPort, tc.cause),
				From:       `"siptest" <sip:` + callerNumber + `@127.0.0.1>`,
				Codecs:     []uint8{siptest.PCMU, siptest.PCMA},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Status() != 200 {
				t.Fatalf("INVITE answered %d %s", c.Status(), c.Final().Reason)
			}
			if c.Codec() != siptest.PCMU {
				t.Errorf("answer chose payload %d, want PCMU (the first offered)", c.Codec())
			}
			sent := source
			sendErr := make(chan error, 1)
			go func() { sendErr <- c.SendAudio(ctx, sent) }()

			time.Sleep(1300 * time.Millisecond)
			rx := c.Received()
			if len(rx) < 4000 {
				t.Fatalf("heard only %d samples in the first 1.3 s (packets by type %v)", len(rx), c.ReceivedPackets())
			}
			win := rx[400:min(len(rx), 8000)]
			pw, po, pb := siptest.Goertzel(win, tc.want), siptest.Goertzel(win, tc.other), siptest.Goertzel(win, beepHz)
			t.Logf("greeting window: power at %v Hz %.0f, at %v Hz %.0f, at 1000 Hz %.0f", tc.want, pw, tc.other, po, pb)
			if pw < 10*po || pw < 10*pb {
				t.Errorf("cause %s: the greeting is not the %v Hz one", tc.cause, tc.want)
			}
			if err := <-sendErr; err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			rx = c.Received()
			if at := findTone(rx, beepHz, 12000); at < 0 {
				t.Errorf("no 1000 Hz beep heard after the greeting (%d samples heard)", len(rx))
			} else {
				t.Logf("beep heard at %.2f s", float64(at)/8000)
			}
			if r, err := c.Bye(ctx); err != nil || (r != nil && r.StatusCode != 200) {
				t.Fatalf("BYE: %v %v", r, err)
			}
			rec := newestRecording(t, s, "1002", 1)
			checkCallerName(t, rec, "siptest")
			checkExactSuffix(t, rec.w.samples, siptest.PCMU, len(sent))
			if n := len(s.messages(t, "1001")); n != 0 {
				t.Errorf("1001 got %d messages", n)
			}
		})
	}
}

// TestAnswerWithoutTrying: a call answered at once gets its 200 OK and no
// 100 Trying (the transaction sends one only when no answer has gone out
// after 200 ms, docs/sip.md).
func TestAnswerWithoutTrying(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 3 {
		start := time.Now()
		c, err := siptest.Dial(ctx, siptest.Config{
			Server:     s.sipAddr(),
			RequestURI: fmt.Sprintf("sip:1001@127.0.0.1:%d", s.sipPort),
			From:       `"siptest" <sip:` + callerNumber + `@127.0.0.1>`,
		})
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if c.Status() != 200 {
			t.Fatalf("call %d: INVITE answered %d", i, c.Status())
		}
		for _, p := range c.Provisional() {
			if p.StatusCode != 100 {
				t.Errorf("call %d: provisional %d %s, want none", i, p.StatusCode, p.Reason)
			} else if took < 150*time.Millisecond {
				t.Errorf("call %d: answered in %v, yet a 100 Trying came first", i, took)
			}
		}
		if _, err := c.Bye(ctx); err != nil {
			t.Errorf("call %d: BYE: %v", i, err)
		}
		c.Close()
	}
}

// greetingHeard calls mailbox with an RFC 4458 cause, returns what the
// caller heard between 50 ms and 1 s into the call and hangs up.
func greetingHeard(t *testing.T, s *server, mailbox, cause string) []int16 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := siptest.Dial(ctx, siptest.Config{
		Server:     s.sipAddr(),
		RequestURI: fmt.Sprintf("sip:vm@127.0.0.1:%d;target=%s;cause=%s", s.sipPort, mailbox, cause),
		From:       `"siptest" <sip:` + callerNumber + `@127.0.0.1>`,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Status() != 200 {
		t.Fatalf("INVITE answered %d", c.Status())
	}
	for len(c.Received()) < 8000 {
		select {
		case <-ctx.Done():
			t.Fatalf("heard only %d samples", len(c.Received()))
		case <-time.After(50 * time.Millisecond):
		}
	}
	if _, err := c.Bye(ctx); err != nil {
		t.Errorf("BYE: %v", err)
	}
	return c.Received()[400:8000]
}

// skipGreeting presses '#' in a deposit call and returns once the beep has
// played: audio sent before then is not recorded, and a fixed pause lost a
// message's first second on a loaded machine.
func skipGreeting(ctx context.Context, c *siptest.Call) error {
	mark := len(c.Received())
	if err := c.SendDigit(ctx, '#', 100*time.Millisecond); err != nil {
		return err
	}
	for findTone(c.Received(), beepHz, mark) < 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("no beep after #: %w", ctx.Err())
		case <-c.Done():
			return fmt.Errorf("call ended before the beep")
		case <-time.After(50 * time.Millisecond):
		}
	}
	time.Sleep(500 * time.Millisecond) // the rest of the 300 ms beep
	return nil
}

// findTone returns where (from sample `from` on) a 50 ms window is a pure tone
// of freq: most of its energy at that frequency and loud. -1 if none.
func findTone(rx []int16, freq float64, from int) int {
	for k := from; k+400 <= len(rx); k += 80 {
		w := rx[k : k+400]
		var ms float64
		for _, x := range w {
			ms += float64(x) * float64(x)
		}
		ms /= float64(len(w))
		// a sine of amplitude A: Goertzel power A*A/4, mean square A*A/2
		if ms > 300*300 && siptest.Goertzel(w, freq) > 0.35*ms {
			return k
		}
	}
	return -1
}

// (j): Diversion, History-Info and RFC 4458 target choose the mailbox.
func TestRoutingHeaders(t *testing.T) {
	cases := []struct {
		name, scenario, service string
		keys                    []string
	}{
		{"diversion", "uac_diversion.xml", "1001", nil},
		{"history_info", "uac_history_info.xml", "1001", nil},
		{"target_cause", "uac_target_cause.xml", "vm", []string{"target", "1002", "cause", "486"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			requireSipp(t)
			s := depositServer(t)
			keys := append([]string{"pcap", pcapPath("audio_pcmu.pcap"), "pause_ms", pauseFor("audio_pcmu.pcap")}, tc.keys...)
			runSipp(t, s, tc.scenario, tc.service, keys...)
			r := newestRecording(t, s, "1002", 1)
			checkCallerName(t, r, sippCallerName)
			checkExactSuffix(t, r.w.samples, siptest.PCMU, len(source))
			if n := len(s.messages(t, "1001")); n != 0 {
				t.Errorf("1001 got %d messages; the %s should have sent it to 1002", n, tc.name)
			}
		})
	}
}

// (k): INVITE without SDP: offer in the 200, answer in the ACK.
func TestInviteWithoutSDP(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	s := depositServer(t)
	runSipp(t, s, "uac_nosdp.xml", "1001", "pcap", pcapPath("audio_pcmu.pcap"), "pause_ms", pauseFor("audio_pcmu.pcap"))
	r := newestRecording(t, s, "1001", 1)
	checkExactSuffix(t, r.w.samples, siptest.PCMU, len(source))
}

// (l): SIGKILL mid-recording; the next start turns the temp file into a message.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	s := depositServer(t)
	const pcap = "audio_pcmu_long.pcap"
	p := startSipp(t, s, "uac_deposit.xml", "1001",
		"codec_pt", "0", "codec_name", "PCMU", "pcap", pcapPath(pcap), "pause_ms", pauseFor(pcap))

	const minBytes = 44 + 3*8000*2 // 3 s of PCM16
	var part string
	deadline := time.Now().Add(30 * time.Second)
	for part == "" {
		for _, f := range s.mediaFiles(t, ".part") {
			if st, err := os.Stat(f); err == nil && st.Size() >= minBytes {
				part = f
			}
		}
		select {
		case <-p.done:
			t.Fatalf("sipp ended before a 3 s .part file appeared\n%s", p.res)
		default:
		}
		if part == "" && time.Now().After(deadline) {
			t.Fatalf("no .part file of 3 s audio under %s after 30 s (have %v)", s.dataDir, s.mediaFiles(t, ".part"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.HasSuffix(part, ".wav.part") {
		t.Logf("temp file %s does not end in .wav.part", part)
	}
	t.Logf("killing the server with %s in progress", part)
	s.kill()
	p.kill()

	s2 := startServer(t, s.dataDir)
	r := newestRecording(t, s2, "1001", 1)
	soxiOK(t, r.path)
	if got := len(r.w.samples); got < 3*8000 {
		t.Errorf("recovered message holds %d samples, want at least 3 s", got)
	}
	if left := s2.mediaFiles(t, ".part"); len(left) > 0 {
		t.Errorf("temporary files left after restart: %v", left)
	}
	// What was recovered is a stretch of what was sent (the end may be cut
	// anywhere, so only whole frames before the last one are compared).
	rec := r.w.samples
	if len(rec) > 160 {
		rec = rec[:len(rec)-160]
	}
	dec := siptest.RoundTrip(siptest.PCMU, longSource(t))
	if off, ok := findOffset(rec, dec); !ok {
		t.Errorf("the recovered audio is not found in the sent audio")
	} else if n, first := mismatches(rec, dec, off, 0, len(rec), nil); n > 0 {
		t.Errorf("%d recovered samples differ from the sent audio, first at %d", n, first)
	}
}

// longSource decodes audio_pcmu_long.pcap's payloads back to linear samples
// in frame order (it is a clean stream).
func longSource(t *testing.T) []int16 {
	t.Helper()
	pk, err := readPcap(pcapPath("audio_pcmu_long.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	var out []int16
	for _, p := range pk {
		out = append(out, siptest.Decode(0, p.payload)...)
	}
	// The linear value whose G.711 round trip is the decoded value is the
	// decoded value itself, so RoundTrip(out) == out.
	return out
}
