package ivr

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

var fuzzKeys = []rune("0123456789*#AB")

// decodeFuzz turns bytes into a configuration (first two bytes) and a
// sequence of events (one byte each).
func decodeFuzz(data []byte) (DepositConfig, []Event) {
	cfg := DepositConfig{Mailbox: "1001", MaxSeconds: 60, SilenceSeconds: 4}
	if len(data) >= 2 {
		c0, c1 := data[0], data[1]
		cfg.Busy = c0&1 != 0
		cfg.Full = c0&2 != 0 && c0&4 != 0 // rare: most runs should record
		cfg.Review = c0&8 != 0
		if c0&16 != 0 {
			cfg.Operator = "100"
		}
		cfg.MinSeconds = int(c0>>5) % 4
		cfg.Greetings = map[string]bool{
			GreetingTemporary:   c1&1 != 0,
			GreetingBusy:        c1&2 != 0,
			GreetingUnavailable: c1&4 != 0,
			GreetingName:        c1&8 != 0,
		}
		data = data[2:]
	}
	evs := make([]Event, 0, len(data))
	for _, b := range data {
		hi := int(b >> 3)
		switch b % 8 {
		case 0:
			evs = append(evs, Start{})
		case 1, 2:
			evs = append(evs, Digit{Key: fuzzKeys[hi%len(fuzzKeys)]})
		case 3, 4:
			evs = append(evs, PlayDone{})
		case 5:
			evs = append(evs, RecordDone{Reason: RecordReason(hi % 5), DurationMS: int64(hi>>2) * 700})
		case 6:
			evs = append(evs, Timeout{})
		case 7:
			evs = append(evs, Hangup{})
		}
	}
	return cfg, evs
}

// checker models the driver and asserts the invariants of the machine.
type checker struct {
	t *testing.T
	d *Deposit

	lastPlay     []Audio // items of the last Play
	playPending  bool    // a Play runs (not stopped, no PlayDone yet)
	timerPending bool
	recPending   bool // StartRecording sent, no RecordDone yet
	haveRec      bool // a finished recording awaits Save or Discard
	saves        int
	hungUp       bool
	ended        bool // EndCall, Transfer or Login sent
	log          []string
}

func (c *checker) fail(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf("%s\nconfig %+v\nhistory:\n%s", fmt.Sprintf(format, args...), c.d.cfg, strings.Join(c.log, "\n"))
}

func (c *checker) feed(ev Event) {
	c.t.Helper()
	wasDone := c.d.Done()
	before := c.d.State()
	acts := c.d.Handle(ev)
	c.log = append(c.log, fmt.Sprintf("  [%s] %v -> %v", before, ev, acts))

	if wasDone {
		if acts != nil || !c.d.Done() || c.d.State() != "done" {
			c.fail("Done is not terminal")
		}
		return
	}
	// Stale events the driver would have dropped must be ignored.
	switch ev := ev.(type) {
	case PlayDone:
		if !c.playPending && acts != nil {
			c.fail("reacted to a PlayDone with no Play pending")
		}
		c.playPending = false
	case Timeout:
		if !c.timerPending && acts != nil {
			c.fail("reacted to a Timeout with no timer pending")
		}
		c.timerPending = false
	case RecordDone:
		if !c.recPending {
			if acts != nil {
				c.fail("reacted to a RecordDone with no recording")
			}
		} else {
			c.recPending, c.haveRec = false, true
			if ev.Reason == RecordHangup {
				c.hungUp = true // the driver saw the caller go
			}
		}
	case Hangup:
		c.hungUp = true
	}

	for i, a := range acts {
		if c.ended {
			c.fail("action %v after the call was handed off or ended", a)
		}
		switch a := a.(type) {
		case Play:
			if c.hungUp {
				c.fail("Play after Hangup")
			}
			if len(a.Items) == 0 {
				c.fail("empty Play")
			}
			for _, it := range a.Items {
				if it.Kind < AudioPrompt || it.Kind > AudioRecording ||
					(it.Kind == AudioPrompt || it.Kind == AudioGreeting) && it.Name == "" {
					c.fail("bad audio %+v", it)
				}
				if it.Kind == AudioRecording && !c.haveRec {
					c.fail("plays a recording that does not exist")
				}
			}
			c.lastPlay, c.playPending = a.Items, true
		case StopPlay:
			if !c.playPending {
				c.fail("StopPlay with nothing playing")
			}
			c.playPending = false
		case StartRecording:
			if _, ok := ev.(PlayDone); !ok || c.playPending ||
				!reflect.DeepEqual(c.lastPlay, []Audio{Beep}) {
				c.fail("StartRecording not right after the beep")
			}
			if c.hungUp || c.recPending || c.haveRec {
				c.fail("StartRecording with a recording pending or after Hangup")
			}
			if a.MaxSeconds != c.d.cfg.MaxSeconds || a.SilenceSeconds != c.d.cfg.SilenceSeconds {
				c.fail("StartRecording limits %+v", a)
			}
			c.recPending = true
		case StopRecording:
			if !c.recPending {
				c.fail("StopRecording with no recording")
			}
		case SaveRecording:
			if !c.haveRec {
				c.fail("SaveRecording without a recording (or after Discard)")
			}
			c.saves++
			if c.saves > 1 {
				c.fail("two SaveRecording")
			}
			c.haveRec = false
		case DiscardRecording:
			if !c.haveRec {
				c.fail("DiscardRecording without a recording")
			}
			c.haveRec = false
		case StartTimer:
			if c.hungUp || a.Seconds <= 0 {
				c.fail("bad StartTimer")
			}
			c.timerPending = true
		case CancelTimer:
			if !c.timerPending {
				c.fail("CancelTimer with no timer")
			}
			c.timerPending = false
		case EndCall, Transfer, Login:
			if c.hungUp {
				c.fail("%v after Hangup", a)
			}
			if i != len(acts)-1 {
				c.fail("%v is not the last action", a)
			}
			if tr, ok := a.(Transfer); ok && (tr.Target == "" || tr.Target != c.d.cfg.Operator) {
				c.fail("transfer to %q", tr.Target)
			}
			c.ended = true
		default:
			c.fail("unknown action %T", a)
		}
	}

	if c.ended && !c.d.Done() {
		c.fail("call ended but machine not Done")
	}
	if c.d.Done() {
		if !c.ended && !c.hungUp {
			c.fail("Done without EndCall/Transfer/Login or Hangup")
		}
		if c.haveRec || c.recPending {
			c.fail("Done with a recording neither saved nor discarded")
		}
	}
	if c.hungUp && !c.d.Done() && !c.recPending {
		c.fail("not Done after Hangup with no recording pending (state %s)", c.d.State())
	}
}

func runFuzz(t *testing.T, data []byte) {
	cfg, evs := decodeFuzz(data)
	c := &checker{t: t, d: NewDeposit(cfg)}
	for _, ev := range evs {
		c.feed(ev)
	}
}

func FuzzDeposit(f *testing.F) {
	// Seeds: b%8 selects the event (0 Start, 1-2 Digit, 3-4 PlayDone,
	// 5 RecordDone, 6 Timeout, 7 Hangup), b>>3 its argument.
	const (
		start    = 0
		pd       = 3
		hang     = 7
		tmo      = 6
		hash     = 1 | 11<<3 // '#'
		star     = 1 | 10<<3 // '*'
		k0       = 1 | 0<<3
		k1       = 1 | 1<<3
		k2       = 1 | 2<<3
		k3       = 1 | 3<<3
		k4       = 1 | 4<<3
		k9       = 1 | 9<<3
		recDigit = 5 | (1+4*4)<<3 // RecordDigit, 4*700 ms
		recMax   = 5 | (2+4*7)<<3
		recShort = 5 | (1+0*4)<<3
		recHang  = 5 | (4+4*3)<<3
	)
	f.Add([]byte{0, 0, start, pd, pd, hash, recDigit, pd})
	f.Add([]byte{8, 0, start, hash, pd, hash, recDigit, pd, k2, pd, k4, k3, pd, hash, recDigit, tmo, pd, tmo, pd, tmo, pd, tmo, pd, tmo, pd})
	f.Add([]byte{8 | 32, 1, start, hash, pd, recShort, pd})
	f.Add([]byte{16, 2, start, k0, pd, hang})
	f.Add([]byte{0, 4, start, star, pd})
	f.Add([]byte{6, 0, start, hash, pd, hang})
	f.Add([]byte{8, 8, start, pd, pd, recMax, k9, k1, pd, hang})
	f.Add([]byte{8, 0, start, pd, pd, hang, recHang, pd})
	f.Add([]byte{0, 0, start, pd, pd, hash, hang, recDigit})
	f.Fuzz(runFuzz)
}

// TestDepositRandom runs the fuzz invariants over pseudo-random sequences
// in every `go test`, not only under -fuzz.
func TestDepositRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 64)
	for range 20000 {
		n := 2 + r.IntN(len(buf)-2)
		for i := range n {
			buf[i] = byte(r.Uint32())
		}
		runFuzz(t, buf[:n])
	}
}
