package testcalls

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/siptest"
)

// The access IVR (docs/ivr.md, issue 3), end to end: sipp logs in with each
// DTMF source, siptest drives the menus and listens to what the server sends.

// accessDial calls the access number 5555 as mailbox from (caller-ID login).
func accessDial(t *testing.T, s *server, from string, cfg ...func(*siptest.Config)) *siptest.Call {
	t.Helper()
	c := siptest.Config{
		Server:     s.sipAddr(),
		RequestURI: fmt.Sprintf("sip:5555@%s", s.sipAddr()),
		From:       fmt.Sprintf(`"Owner" <sip:%s@127.0.0.1>`, from),
	}
	for _, f := range cfg {
		f(&c)
	}
	call, err := siptest.Dial(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if call.Status() != 200 {
		t.Fatalf("access call answered %d", call.Status())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = call.Bye(ctx)
		call.Close()
	})
	time.Sleep(300 * time.Millisecond) // answered; the first prompt starts
	return call
}

// press sends keys as RFC 4733 events, 60 ms each, 80 ms apart.
func press(t *testing.T, c *siptest.Call, keys string) {
	t.Helper()
	for _, k := range keys {
		if err := c.SendDigit(t.Context(), k, 60*time.Millisecond); err != nil {
			t.Fatalf("send %c: %v", k, err)
		}
		time.Sleep(80 * time.Millisecond)
	}
}

// login enters the PIN and waits for the login (bcrypt) to finish.
func login(t *testing.T, c *siptest.Call, pin string) {
	t.Helper()
	press(t, c, pin+"#")
	time.Sleep(1200 * time.Millisecond)
}

// loginPersonal logs in and, as the demo mailboxes belong to group 8000,
// chooses the personal mailbox (1) at the group menu.
func loginPersonal(t *testing.T, c *siptest.Call, pin string) {
	t.Helper()
	login(t, c, pin)
	press(t, c, "1")
	time.Sleep(500 * time.Millisecond)
}

// deposit leaves pcm as a message for mailbox over siptest: '#' skips the
// greeting, the audio follows the beep.
func deposit(t *testing.T, s *server, mailbox string, pcm []int16) {
	t.Helper()
	c, err := siptest.Dial(t.Context(), siptest.Config{Server: s.sipAddr(), RequestURI: fmt.Sprintf("sip:%s@%s", mailbox, s.sipAddr())})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Status() != 200 {
		t.Fatalf("deposit call answered %d", c.Status())
	}
	time.Sleep(300 * time.Millisecond)
	if err := skipGreeting(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if err := c.SendAudio(t.Context(), pcm); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := c.Bye(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitEnded(t *testing.T, c *siptest.Call, timeout time.Duration) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(timeout):
		t.Fatalf("the server did not end the call within %v", timeout)
	}
	if c.PeerBye() == nil {
		t.Fatal("the call ended without a BYE from the server")
	}
}

func mediaPath(s *server, mailbox, id string) string {
	return filepath.Join(s.dataDir, "media", "default", mailbox, id+".wav")
}

func sortedMessages(t *testing.T, s *server, mailbox string) []dbMessage {
	m := s.dbMessages(t, mailbox)
	sort.Slice(m, func(i, j int) bool { return m[i].ID < m[j].ID })
	return m
}

// messageWithDeposit starts a server holding one message for 1001.
func messageWithDeposit(t *testing.T, extra ...string) (*server, dbMessage) {
	t.Helper()
	s := startServer(t, "", extra...)
	deposit(t, s, "1001", source[:3*8000])
	s.waitMessages(t, "1001", 1, 20*time.Second)
	return s, s.dbMessages(t, "1001")[0]
}

// checkDeleted: the row and the audio file of m are gone.
func checkDeleted(t *testing.T, s *server, m dbMessage) {
	t.Helper()
	waitFor(t, "the message row to go", 10*time.Second, func() bool { return len(s.dbMessages(t, "1001")) == 0 })
	if _, err := os.Stat(mediaPath(s, "1001", m.ID)); !os.IsNotExist(err) {
		t.Errorf("the audio of the deleted message is still there: %v", err)
	}
}

// (sipp) RFC 4733 from play_dtmf, payload 96: log in, play, delete, exit.
func TestAccessSippRFC4733(t *testing.T) {
	requireSipp(t)
	t.Parallel()
	s, m := messageWithDeposit(t)
	runSipp(t, s, "access_rfc4733.xml", "5555", "from_user", "1001", "pin", "1234")
	checkDeleted(t, s, m)
}

// (sipp) RFC 4733 from the stock captures, payload 101.
func TestAccessSippPcap101(t *testing.T) {
	requireSipp(t)
	if _, err := os.Stat("/usr/share/sip-tester/dtmf_2833_1.pcap"); err != nil {
		skipOrFail(t, "the stock sipp captures are not installed (Debian package sip-tester)")
	}
	t.Parallel()
	s, m := messageWithDeposit(t)
	runSipp(t, s, "access_pcap101.xml", "5555", "from_user", "1001")
	checkDeleted(t, s, m)
}

// (sipp) SIP INFO, application/dtmf-relay and application/dtmf.
func TestAccessSippINFO(t *testing.T) {
	requireSipp(t)
	t.Parallel()
	s, m := messageWithDeposit(t)
	runSipp(t, s, "access_info.xml", "5555", "from_user", "1001")
	checkDeleted(t, s, m)
}

// (sipp) in-band tones (no telephone-event offered), from testcalls/mkdtmf captures.
func TestAccessSippInband(t *testing.T) {
	requireSipp(t)
	t.Parallel()
	s, m := messageWithDeposit(t)
	runSipp(t, s, "access_inband.xml", "5555", "from_user", "1001")
	checkDeleted(t, s, m)
	if !strings.Contains(s.log.String(), `"own_caller":true`) {
		t.Error("the caller was not recognised as mailbox 1001")
	}
}

// Hear a message (the RTP decodes to the stored audio), save it to a
// folder, forward it, then delete the next one and exit.
func TestAccessMessageOperations(t *testing.T) {
	requireSipp(t)
	t.Parallel()
	s := startServer(t, "")
	var wg sync.WaitGroup
	for i, pcm := range [][]int16{source[:3*8000], source[5*8000 : 8*8000]} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 400 * time.Millisecond) // distinct, ordered ids
			deposit(t, s, "1001", pcm)
		}()
	}
	wg.Wait()
	s.waitMessages(t, "1001", 2, 20*time.Second)
	msgs := sortedMessages(t, s, "1001")
	first, second := msgs[0], msgs[1]
	firstWAV, err := parseWAV(s.audio(t, "1001", first.ID))
	if err != nil {
		t.Fatal(err)
	}

	c := accessDial(t, s, "1001")
	loginPersonal(t, c, "1234")
	mark := len(c.Received())
	press(t, c, "1")                   // first message: its envelope
	time.Sleep(400 * time.Millisecond) //
	press(t, c, "#")                   // skip the envelope to the audio
	want := firstWAV.samples
	var off int
	waitFor(t, "the message audio in the RTP", 15*time.Second, func() bool {
		rx := c.Received()[mark:]
		o, ok := alignAt(want, rx, len(want)/2, 400)
		if !ok || o+len(want) > len(rx) || o < 0 {
			return false
		}
		off = o
		return true
	})
	rx := c.Received()[mark:]
	if n, at := mismatches(want, rx, off, 0, len(want), nil); n != 0 {
		t.Fatalf("played message differs from the stored audio in %d samples (first at %d)", n, at)
	}
	// Played: read, and moved from New to Old.
	waitFor(t, "the message to be marked read", 10*time.Second, func() bool {
		m := sortedMessages(t, s, "1001")[0]
		return m.Read && m.Folder == "old"
	})
	press(t, c, "9")
	time.Sleep(300 * time.Millisecond)
	press(t, c, "2") // save to Work
	waitFor(t, "the message in Work", 10*time.Second, func() bool { return sortedMessages(t, s, "1001")[0].Folder == "work" })

	press(t, c, "8")
	time.Sleep(300 * time.Millisecond)
	press(t, c, "1002#") // forward a copy to 1002
	waitFor(t, "the copy in 1002", 10*time.Second, func() bool { return len(s.dbMessages(t, "1002")) == 1 })
	cp := s.dbMessages(t, "1002")[0]
	if cp.ID == first.ID || cp.Folder != "new" || cp.Read || cp.CallerID != first.CallerID || cp.DurationMS != first.DurationMS {
		t.Errorf("forwarded copy %+v of %+v", cp, first)
	}
	if a, b := s.audio(t, "1002", cp.ID), s.audio(t, "1001", first.ID); string(a) != string(b) {
		t.Error("the forwarded copy's audio differs")
	}

	press(t, c, "6") // the second message
	time.Sleep(500 * time.Millisecond)
	press(t, c, "7") // delete
	time.Sleep(300 * time.Millisecond)
	if len(s.dbMessages(t, "1001")) != 2 {
		t.Fatal("the deletion was applied before leaving the folder")
	}
	press(t, c, "#") // exit: applied
	waitEnded(t, c, 10*time.Second)
	left := s.dbMessages(t, "1001")
	if len(left) != 1 || left[0].ID != first.ID {
		t.Fatalf("after deleting %s, 1001 holds %+v", second.ID, left)
	}
	if _, err := os.Stat(mediaPath(s, "1001", second.ID)); !os.IsNotExist(err) {
		t.Errorf("deleted message audio still there: %v", err)
	}
}

// Record the unavailable greeting (the next deposit plays it) and change
// the PIN (the old one fails, the new one logs in).
func TestAccessGreetingAndPIN(t *testing.T) {
	requireSipp(t)
	t.Parallel()
	s := startServer(t, "")
	const greetingHz = 700.0

	c := accessDial(t, s, "1002")
	loginPersonal(t, c, "1234")
	press(t, c, "0") // mailbox options
	time.Sleep(300 * time.Millisecond)
	mark := len(c.Received())
	press(t, c, "1") // record the unavailable greeting
	waitFor(t, "the beep", 15*time.Second, func() bool { return findTone(c.Received(), beepHz, mark) >= 0 })
	time.Sleep(500 * time.Millisecond) // the beep ends; recording starts
	if err := c.SendAudio(t.Context(), siptest.Tone(greetingHz, 12000, 6000)); err != nil {
		t.Fatal(err)
	}
	press(t, c, "#") // stop; the recording is played back with the review menu
	mark = len(c.Received())
	waitFor(t, "the recording played back", 10*time.Second, func() bool { return findTone(c.Received(), greetingHz, mark) >= 0 })
	press(t, c, "1") // accept
	greeting := filepath.Join(s.dataDir, "media", "default", "1002", "greetings", "unavailable.wav")
	waitFor(t, "the greeting file", 10*time.Second, func() bool { _, err := os.Stat(greeting); return err == nil })

	press(t, c, "5") // change the PIN, entered twice
	time.Sleep(300 * time.Millisecond)
	press(t, c, "5678#")
	time.Sleep(300 * time.Millisecond)
	press(t, c, "5678#")
	waitFor(t, "the PIN change", 10*time.Second, func() bool { return strings.Contains(s.log.String(), `"msg":"PIN changed"`) })
	_, _ = c.Bye(t.Context())

	// The next deposit plays the new greeting.
	d, err := siptest.Dial(t.Context(), siptest.Config{Server: s.sipAddr(), RequestURI: "sip:1002@" + s.sipAddr()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	waitFor(t, "the recorded greeting in the deposit call", 10*time.Second, func() bool { return findTone(d.Received(), greetingHz, 0) >= 0 })
	_, _ = d.Bye(t.Context())

	// The old PIN fails, the new one logs in.
	failures := strings.Count(s.log.String(), `"msg":"login failed"`)
	c = accessDial(t, s, "1002")
	login(t, c, "1234")
	waitFor(t, "the old PIN refused", 5*time.Second, func() bool {
		return strings.Count(s.log.String(), `"msg":"login failed"`) == failures+1
	})
	logins := strings.Count(s.log.String(), `"msg":"login"`)
	login(t, c, "5678")
	waitFor(t, "the new PIN accepted", 5*time.Second, func() bool {
		return strings.Count(s.log.String(), `"msg":"login"`) == logins+1
	})
}

// Three wrong PINs end the call; failures add up across calls and lock
// the mailbox, which then refuses even the right PIN.
func TestAccessWrongPINsAndLockout(t *testing.T) {
	requireSipp(t)
	t.Parallel()
	s := startServer(t, "")
	c := accessDial(t, s, "1001")
	for _, pin := range []string{"1111", "2222", "3333"} {
		login(t, c, pin)
	}
	waitEnded(t, c, 10*time.Second)

	c = accessDial(t, s, "1001")
	login(t, c, "4444")
	login(t, c, "5555") // the fifth failure in 15 minutes locks 1001
	login(t, c, "1234")
	waitEnded(t, c, 10*time.Second)
	if !strings.Contains(s.log.String(), `"msg":"login refused: mailbox locked"`) {
		t.Fatal("the right PIN was not refused while locked")
	}
	// The lock is persisted.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(s.dataDir, "voicemail.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var until int64
	if err := db.QueryRow(`SELECT locked_until FROM login_locks WHERE tenant = 'default' AND mailbox = '1001'`).Scan(&until); err != nil {
		t.Fatalf("no persisted lock: %v", err)
	}
	if d := time.Until(time.Unix(0, until)); d < 14*time.Minute || d > 16*time.Minute {
		t.Errorf("locked for %v, want login.lockout 15m", d)
	}
	// Another mailbox is not affected.
	c = accessDial(t, s, "1002")
	logins := strings.Count(s.log.String(), `"msg":"login"`)
	login(t, c, "1234")
	waitFor(t, "1002 logged in", 5*time.Second, func() bool { return strings.Count(s.log.String(), `"msg":"login"`) == logins+1 })
}

// TestAccessDTMFLatency measures the time from a digit's RFC 4733 packets
// to the first RTP packet of the prompt that answers it, from silence: in
// the PIN-change entry a too-short PIN and '#' answers "Passwords must be 4
// to 10 digits long…"; a digit stops that prompt, and the cycle repeats.
// It logs p50/p99 (no assertion: wall-clock figures go to BENCHMARKS.md);
// VOICEMAIL_BENCH_SAMPLES sets the number of samples (default 60).
func TestAccessDTMFLatency(t *testing.T) {
	requireSipp(t)
	t.Parallel()
	samples := 60
	if v, err := strconv.Atoi(os.Getenv("VOICEMAIL_BENCH_SAMPLES")); err == nil && v > 0 {
		samples = v
	}
	s := startServer(t, "")
	c := accessDial(t, s, "1001")
	loginPersonal(t, c, "1234")
	press(t, c, "05") // options, change PIN
	time.Sleep(200 * time.Millisecond)
	press(t, c, "1") // an entry digit stops the prompt: silence
	pt := c.Codec()
	var fromEnd, fromStart []time.Duration
	errors, pinErrors := 0, 0
	for i := 0; len(fromEnd) < samples && i < 2*samples; i++ {
		// Wait for silence (the stopped prompt's last packets).
		quiet := c.ReceivedPackets()[pt]
		for {
			time.Sleep(120 * time.Millisecond)
			n := c.ReceivedPackets()[pt]
			if n == quiet {
				break
			}
			quiet = n
		}
		first := make(chan time.Time, 1)
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if c.ReceivedPackets()[pt] > quiet {
					first <- time.Now()
					return
				}
				time.Sleep(100 * time.Microsecond)
			}
		}()
		start := time.Now()
		if err := c.SendDigit(t.Context(), '#', 40*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		end := time.Now()
		select {
		case at := <-first:
			fromEnd = append(fromEnd, at.Sub(end))
			fromStart = append(fromStart, at.Sub(start))
		case <-time.After(2 * time.Second):
			errors++
		}
		close(stop)
		time.Sleep(150 * time.Millisecond)
		if pinErrors++; pinErrors == 3 {
			// After three errors the entry gives up to the options menu.
			press(t, c, "5")
			time.Sleep(100 * time.Millisecond)
			pinErrors = 0
		}
		press(t, c, "1") // stop the answer; the entry holds "1"
	}
	if len(fromEnd) < samples/2 {
		t.Fatalf("only %d of %d digits got an answering prompt", len(fromEnd), samples)
	}
	pct := func(d []time.Duration, p float64) time.Duration {
		x := append([]time.Duration(nil), d...)
		sort.Slice(x, func(i, j int) bool { return x[i] < x[j] })
		return x[min(len(x)-1, int(p*float64(len(x))))]
	}
	line := fmt.Sprintf("DTMF-to-prompt latency over %d digits (%d without answer): from the end packet p50 %v p99 %v max %v; from the first packet p50 %v p99 %v max %v",
		len(fromEnd), errors, pct(fromEnd, 0.5), pct(fromEnd, 0.99), pct(fromEnd, 1),
		pct(fromStart, 0.5), pct(fromStart, 0.99), pct(fromStart, 1))
	t.Log(line)
	if out := os.Getenv("VOICEMAIL_BENCH_OUT"); out != "" {
		_ = os.WriteFile(out, []byte(line+"\n"), 0o644)
	}
}

// '*' during a deposit greeting leads to the login of that mailbox.
func TestAccessFromDepositStar(t *testing.T) {
	requireSipp(t)
	t.Parallel()
	s := startServer(t, "")
	c, err := siptest.Dial(t.Context(), siptest.Config{Server: s.sipAddr(), RequestURI: "sip:1002@" + s.sipAddr()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(300 * time.Millisecond)
	press(t, c, "*") // the caller (+14155550100) is not 1002: the PIN is asked
	time.Sleep(300 * time.Millisecond)
	press(t, c, "1234#")
	waitFor(t, "the login of 1002", 10*time.Second, func() bool {
		for _, l := range strings.Split(s.log.String(), "\n") {
			if strings.Contains(l, `"msg":"login"`) && strings.Contains(l, `"mailbox":"1002","groups"`) {
				return true
			}
		}
		return false
	})
	if _, err := c.Bye(t.Context()); err != nil {
		t.Fatal(err)
	}
}
