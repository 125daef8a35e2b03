package ivr

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

type step struct {
	ev   Event
	want []Action
}

// helpers to keep the tables short
func P(names ...string) Play {
	items := make([]Audio, len(names))
	for i, n := range names {
		switch {
		case n == "<beep>":
			items[i] = Beep
		case n == "<recording>":
			items[i] = Recording
		case strings.HasPrefix(n, "greeting:"):
			items[i] = Greeting(strings.TrimPrefix(n, "greeting:"))
		default:
			items[i] = Prompt(n)
		}
	}
	return Play{Items: items}
}

func A(a ...Action) []Action { return a }

func D(k rune) Digit { return Digit{Key: k} }

func RD(r RecordReason, ms int64) RecordDone { return RecordDone{Reason: r, DurationMS: ms} }

var (
	beepPlay  = P("<beep>")
	startRec  = StartRecording{MaxSeconds: 180, SilenceSeconds: 5}
	saved     = P("vm-msgsaved", "vm-goodbye")
	review    = P("vm-review")
	reviewTmr = StartTimer{Seconds: 5}
)

func baseCfg() DepositConfig {
	return DepositConfig{Mailbox: "1001", MaxSeconds: 180, MinSeconds: 2, SilenceSeconds: 5}
}

func withCfg(f func(*DepositConfig)) DepositConfig {
	c := baseCfg()
	f(&c)
	return c
}

var systemUnavail = P("vm-theperson", "digits/1", "digits/0", "digits/0", "digits/1", "vm-isunavail", "vm-intro")

// toRecording: greeting skipped with '#', beep played, recording running.
var toRecording = []step{
	{Start{}, A(systemUnavail)},
	{D('#'), A(StopPlay{}, beepPlay)},
	{PlayDone{}, A(startRec)},
}

// toReview: recording ended with '#' at 10 s, review menu waiting for a key.
var toReview = concat(toRecording, []step{
	{D('#'), A(StopRecording{})},
	{RD(RecordDigit, 10000), A(review)},
	{PlayDone{}, A(reviewTmr)},
})

func concat(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestDeposit(t *testing.T) {
	reviewCfg := withCfg(func(c *DepositConfig) { c.Review = true })
	tests := []struct {
		name  string
		cfg   DepositConfig
		steps []step
		state string // final state
	}{
		// --- greeting choice ---
		{"system greeting unavailable", baseCfg(), []step{
			{Start{}, A(systemUnavail)},
		}, "greeting"},
		{"system greeting busy", withCfg(func(c *DepositConfig) { c.Busy = true; c.Mailbox = "42" }), []step{
			{Start{}, A(P("vm-theperson", "digits/4", "digits/2", "vm-isonphone", "vm-intro"))},
		}, "greeting"},
		{"system greeting skips non-digits", withCfg(func(c *DepositConfig) { c.Mailbox = "1a*2" }), []step{
			{Start{}, A(P("vm-theperson", "digits/1", "digits/2", "vm-isunavail", "vm-intro"))},
		}, "greeting"},
		{"system greeting with recorded name", withCfg(func(c *DepositConfig) {
			c.Greetings = map[string]bool{"name": true}
		}), []step{
			{Start{}, A(P("vm-theperson", "greeting:name", "vm-isunavail", "vm-intro"))},
		}, "greeting"},
		{"system greeting busy with recorded name", withCfg(func(c *DepositConfig) {
			c.Busy = true
			c.Greetings = map[string]bool{"name": true, "unavailable": true}
		}), []step{
			{Start{}, A(P("vm-theperson", "greeting:name", "vm-isonphone", "vm-intro"))},
		}, "greeting"},
		{"unavailable greeting", withCfg(func(c *DepositConfig) {
			c.Greetings = map[string]bool{"unavailable": true, "busy": true, "name": true}
		}), []step{
			{Start{}, A(P("greeting:unavailable", "vm-intro"))},
		}, "greeting"},
		{"unavailable greeting absent, busy present, not busy", withCfg(func(c *DepositConfig) {
			c.Greetings = map[string]bool{"busy": true}
		}), []step{
			{Start{}, A(systemUnavail)},
		}, "greeting"},
		{"busy greeting", withCfg(func(c *DepositConfig) {
			c.Busy = true
			c.Greetings = map[string]bool{"unavailable": true, "busy": true}
		}), []step{
			{Start{}, A(P("greeting:busy", "vm-intro"))},
		}, "greeting"},
		{"temporary greeting wins over busy", withCfg(func(c *DepositConfig) {
			c.Busy = true
			c.Greetings = map[string]bool{"unavailable": true, "busy": true, "temporary": true}
		}), []step{
			{Start{}, A(P("greeting:temporary", "vm-intro"))},
		}, "greeting"},
		{"temporary greeting wins over unavailable", withCfg(func(c *DepositConfig) {
			c.Greetings = map[string]bool{"unavailable": true, "temporary": true, "name": false}
		}), []step{
			{Start{}, A(P("greeting:temporary", "vm-intro"))},
		}, "greeting"},
		{"greeting false entries ignored", withCfg(func(c *DepositConfig) {
			c.Greetings = map[string]bool{"unavailable": false, "temporary": false}
		}), []step{
			{Start{}, A(systemUnavail)},
		}, "greeting"},

		// --- greeting keys ---
		{"greeting ends, beep, record", baseCfg(), []step{
			{Start{}, A(systemUnavail)},
			{PlayDone{}, A(beepPlay)},
			{PlayDone{}, A(startRec)},
		}, "recording"},
		{"# skips greeting", baseCfg(), toRecording, "recording"},
		{"* goes to login", baseCfg(), []step{
			{Start{}, A(systemUnavail)},
			{D('*'), A(StopPlay{}, Login{Mailbox: "1001"})},
		}, "done"},
		{"0 with operator transfers", withCfg(func(c *DepositConfig) { c.Operator = "100" }), []step{
			{Start{}, A(systemUnavail)},
			{D('0'), A(StopPlay{}, P("vm-transfer"))},
			{D('#'), nil},
			{PlayDone{}, A(Transfer{Target: "100"})},
		}, "done"},
		{"0 with operator, hangup during transfer prompt", withCfg(func(c *DepositConfig) { c.Operator = "100" }), []step{
			{Start{}, A(systemUnavail)},
			{D('0'), A(StopPlay{}, P("vm-transfer"))},
			{Hangup{}, nil},
		}, "done"},
		{"0 without operator ignored", baseCfg(), []step{
			{Start{}, A(systemUnavail)},
			{D('0'), nil},
			{PlayDone{}, A(beepPlay)},
		}, "beep"},
		{"other digits ignored in greeting", baseCfg(), []step{
			{Start{}, A(systemUnavail)},
			{D('1'), nil}, {D('9'), nil}, {D('A'), nil},
			{Timeout{}, nil},
			{RD(RecordDigit, 5000), nil},
			{Start{}, nil},
		}, "greeting"},
		{"digits ignored during beep", baseCfg(), []step{
			{Start{}, A(systemUnavail)},
			{D('#'), A(StopPlay{}, beepPlay)},
			{D('#'), nil}, {D('*'), nil}, {D('0'), nil},
			{PlayDone{}, A(startRec)},
		}, "recording"},
		{"events before Start ignored", baseCfg(), []step{
			{D('#'), nil}, {PlayDone{}, nil}, {Timeout{}, nil}, {RD(RecordDigit, 3000), nil},
			{Start{}, A(systemUnavail)},
		}, "greeting"},

		// --- recording ends ---
		{"# ends recording, no review, saved", baseCfg(), concat(toRecording, []step{
			{D('1'), nil}, {D('*'), nil},
			{D('#'), A(StopRecording{})},
			{D('#'), nil},
			{RD(RecordDigit, 2000), A(SaveRecording{}, saved)},
			{D('1'), nil},
			{PlayDone{}, A(EndCall{})},
		}), "done"},
		{"max length", baseCfg(), concat(toRecording, []step{
			{RD(RecordMax, 180000), A(SaveRecording{}, P("vm-max-length", "vm-msgsaved", "vm-goodbye"))},
			{PlayDone{}, A(EndCall{})},
		}), "done"},
		{"max length with review", reviewCfg, concat(toRecording, []step{
			{RD(RecordMax, 180000), A(P("vm-max-length", "vm-review"))},
			{PlayDone{}, A(reviewTmr)},
		}), "review"},
		{"silence ends recording", baseCfg(), concat(toRecording, []step{
			{RD(RecordSilence, 7000), A(SaveRecording{}, saved)},
			{PlayDone{}, A(EndCall{})},
		}), "done"},
		{"silence ends recording, review", reviewCfg, concat(toRecording, []step{
			{RD(RecordSilence, 7000), A(review)},
		}), "review"},
		{"too short after #", baseCfg(), concat(toRecording, []step{
			{D('#'), A(StopRecording{})},
			{RD(RecordDigit, 1999), A(DiscardRecording{}, P("vm-too-short", "vm-goodbye"))},
			{D('1'), nil},
			{PlayDone{}, A(EndCall{})},
		}), "done"},
		{"too short with review skips review", reviewCfg, concat(toRecording, []step{
			{D('#'), A(StopRecording{})},
			{RD(RecordDigit, 500), A(DiscardRecording{}, P("vm-too-short", "vm-goodbye"))},
			{PlayDone{}, A(EndCall{})},
		}), "done"},
		{"too short after silence", baseCfg(), concat(toRecording, []step{
			{RD(RecordSilence, 0), A(DiscardRecording{}, P("vm-too-short", "vm-goodbye"))},
		}), "goodbye"},
		{"zero length discarded even with min 0", withCfg(func(c *DepositConfig) { c.MinSeconds = 0 }), concat(toRecording, []step{
			{RD(RecordSilence, 0), A(DiscardRecording{}, P("vm-too-short", "vm-goodbye"))},
		}), "goodbye"},
		{"min 0 saves short", withCfg(func(c *DepositConfig) { c.MinSeconds = 0 }), concat(toRecording, []step{
			{RD(RecordSilence, 20), A(SaveRecording{}, saved)},
		}), "goodbye"},
		{"max length and too short", withCfg(func(c *DepositConfig) { c.MaxSeconds = 1; c.MinSeconds = 3 }), []step{
			{Start{}, A(systemUnavail)},
			{PlayDone{}, A(beepPlay)},
			{PlayDone{}, A(StartRecording{MaxSeconds: 1, SilenceSeconds: 5})},
			{RD(RecordMax, 1000), A(DiscardRecording{}, P("vm-max-length", "vm-too-short", "vm-goodbye"))},
		}, "goodbye"},
		{"max reached while stopping", baseCfg(), concat(toRecording, []step{
			{D('#'), A(StopRecording{})},
			{RD(RecordMax, 180000), A(SaveRecording{}, P("vm-max-length", "vm-msgsaved", "vm-goodbye"))},
		}), "goodbye"},

		// --- hang-up while recording ---
		{"hangup while recording, RecordDone first, long", baseCfg(), concat(toRecording, []step{
			{RD(RecordHangup, 2000), A(SaveRecording{})},
			{Hangup{}, nil},
		}), "done"},
		{"hangup while recording, Hangup first, long", baseCfg(), concat(toRecording, []step{
			{Hangup{}, nil},
			{D('#'), nil},
			{Timeout{}, nil},
			{RD(RecordHangup, 2000), A(SaveRecording{})},
		}), "done"},
		{"hangup while recording, Hangup first, other reason", baseCfg(), concat(toRecording, []step{
			{Hangup{}, nil},
			{RD(RecordSilence, 9000), A(SaveRecording{})},
		}), "done"},
		{"hangup while recording, RecordDone first, short", baseCfg(), concat(toRecording, []step{
			{RD(RecordHangup, 1999), A(DiscardRecording{})},
			{Hangup{}, nil},
		}), "done"},
		{"hangup while recording, Hangup first, short", baseCfg(), concat(toRecording, []step{
			{Hangup{}, nil},
			{RD(RecordHangup, 100), A(DiscardRecording{})},
		}), "done"},
		{"hangup while recording with review saves without review", reviewCfg, concat(toRecording, []step{
			{RD(RecordHangup, 30000), A(SaveRecording{})},
		}), "done"},
		{"hangup after # before RecordDone", reviewCfg, concat(toRecording, []step{
			{D('#'), A(StopRecording{})},
			{Hangup{}, nil},
			{RD(RecordDigit, 3000), A(SaveRecording{})},
		}), "done"},
		{"hangup after # before RecordDone, short", baseCfg(), concat(toRecording, []step{
			{D('#'), A(StopRecording{})},
			{Hangup{}, nil},
			{RD(RecordDigit, 300), A(DiscardRecording{})},
		}), "done"},

		// --- review menu ---
		{"review 1 saves", reviewCfg, concat(toReview, []step{
			{D('1'), A(CancelTimer{}, SaveRecording{}, saved)},
			{Timeout{}, nil},
			{PlayDone{}, A(EndCall{})},
		}), "done"},
		{"review 1 interrupts the menu prompt", reviewCfg, concat(toRecording, []step{
			{D('#'), A(StopRecording{})},
			{RD(RecordDigit, 10000), A(review)},
			{D('1'), A(StopPlay{}, SaveRecording{}, saved)},
		}), "goodbye"},
		{"review 2 listens then menu", reviewCfg, concat(toReview, []step{
			{D('2'), A(CancelTimer{}, P("<recording>", "vm-review"))},
			{PlayDone{}, A(reviewTmr)},
			{D('2'), A(CancelTimer{}, P("<recording>", "vm-review"))},
			{D('1'), A(StopPlay{}, SaveRecording{}, saved)},
		}), "goodbye"},
		{"review 3 re-records", reviewCfg, concat(toReview, []step{
			{D('3'), A(CancelTimer{}, DiscardRecording{}, beepPlay)},
			{D('1'), nil},
			{PlayDone{}, A(startRec)},
			{D('#'), A(StopRecording{})},
			{RD(RecordDigit, 4000), A(review)},
			{PlayDone{}, A(reviewTmr)},
			{D('1'), A(CancelTimer{}, SaveRecording{}, saved)},
		}), "goodbye"},
		{"review 3 then hangup during beep saves nothing", reviewCfg, concat(toReview, []step{
			{D('3'), A(CancelTimer{}, DiscardRecording{}, beepPlay)},
			{Hangup{}, nil},
		}), "done"},
		{"review 4 toggles urgent", reviewCfg, concat(toReview, []step{
			{D('4'), A(CancelTimer{}, P("vm-marked-urgent", "vm-review"))},
			{PlayDone{}, A(reviewTmr)},
			{D('4'), A(CancelTimer{}, P("vm-unmarked-urgent", "vm-review"))},
			{D('4'), A(StopPlay{}, P("vm-marked-urgent", "vm-review"))},
			{D('1'), A(StopPlay{}, SaveRecording{Urgent: true}, saved)},
			{PlayDone{}, A(EndCall{})},
		}), "done"},
		{"review urgent kept across re-record", reviewCfg, concat(toReview, []step{
			{D('4'), A(CancelTimer{}, P("vm-marked-urgent", "vm-review"))},
			{D('3'), A(StopPlay{}, DiscardRecording{}, beepPlay)},
			{PlayDone{}, A(startRec)},
			{RD(RecordSilence, 4000), A(review)},
			{D('1'), A(StopPlay{}, SaveRecording{Urgent: true}, saved)},
		}), "goodbye"},
		{"review invalid keys", reviewCfg, concat(toReview, []step{
			{D('9'), A(CancelTimer{}, P("vm-invalid", "vm-review"))},
			{D('#'), A(StopPlay{}, P("vm-invalid", "vm-review"))},
			{PlayDone{}, A(reviewTmr)},
			{D('*'), A(CancelTimer{}, P("vm-invalid", "vm-review"))},
			{D('0'), A(StopPlay{}, P("vm-invalid", "vm-review"))},
		}), "review"},
		{"review timeout x3 repeats, 4th saves", reviewCfg, concat(toReview, []step{
			{Timeout{}, A(review)},
			{Timeout{}, nil}, // no timer while the prompt plays
			{PlayDone{}, A(reviewTmr)},
			{Timeout{}, A(review)},
			{PlayDone{}, A(reviewTmr)},
			{Timeout{}, A(review)},
			{PlayDone{}, A(reviewTmr)},
			{Timeout{}, A(SaveRecording{}, saved)},
			{PlayDone{}, A(EndCall{})},
		}), "done"},
		{"review timeout count reset by a key", reviewCfg, concat(toReview, []step{
			{Timeout{}, A(review)},
			{PlayDone{}, A(reviewTmr)},
			{Timeout{}, A(review)},
			{PlayDone{}, A(reviewTmr)},
			{Timeout{}, A(review)},
			{D('4'), A(StopPlay{}, P("vm-marked-urgent", "vm-review"))},
			{PlayDone{}, A(reviewTmr)},
			{Timeout{}, A(review)},
			{PlayDone{}, A(reviewTmr)},
			{Timeout{}, A(review)},
			{PlayDone{}, A(reviewTmr)},
			{Timeout{}, A(review)},
			{PlayDone{}, A(reviewTmr)},
			{Timeout{}, A(SaveRecording{Urgent: true}, saved)},
		}), "goodbye"},
		{"review hangup while waiting saves", reviewCfg, concat(toReview, []step{
			{Hangup{}, A(CancelTimer{}, SaveRecording{})},
		}), "done"},
		{"review hangup during prompt saves urgent", reviewCfg, concat(toReview, []step{
			{D('4'), A(CancelTimer{}, P("vm-marked-urgent", "vm-review"))},
			{Hangup{}, A(SaveRecording{Urgent: true})},
		}), "done"},
		{"review hangup during listen saves", reviewCfg, concat(toReview, []step{
			{D('2'), A(CancelTimer{}, P("<recording>", "vm-review"))},
			{Hangup{}, A(SaveRecording{})},
		}), "done"},
		{"hangup during goodbye after save", reviewCfg, concat(toReview, []step{
			{D('1'), A(CancelTimer{}, SaveRecording{}, saved)},
			{Hangup{}, nil},
		}), "done"},
		{"stale events in review ignored", reviewCfg, concat(toReview, []step{
			{PlayDone{}, nil},
			{RD(RecordDigit, 1000), nil},
			{Start{}, nil},
		}), "review"},

		// --- mailbox full ---
		{"mailbox full", withCfg(func(c *DepositConfig) {
			c.Full = true
			c.Greetings = map[string]bool{"temporary": true}
			c.Operator = "100"
		}), []step{
			{Start{}, A(P("vm-mailbox-full", "vm-goodbye"))},
			{D('#'), nil}, {D('*'), nil}, {D('0'), nil},
			{PlayDone{}, A(EndCall{})},
		}, "done"},
		{"mailbox full, hangup", withCfg(func(c *DepositConfig) { c.Full = true }), []step{
			{Start{}, A(P("vm-mailbox-full", "vm-goodbye"))},
			{Hangup{}, nil},
		}, "done"},

		// --- hang-up before recording ---
		{"hangup before start", baseCfg(), []step{
			{Hangup{}, nil},
			{Start{}, nil},
		}, "done"},
		{"hangup during greeting saves nothing", baseCfg(), []step{
			{Start{}, A(systemUnavail)},
			{Hangup{}, nil},
			{PlayDone{}, nil},
		}, "done"},
		{"hangup during beep saves nothing", baseCfg(), []step{
			{Start{}, A(systemUnavail)},
			{PlayDone{}, A(beepPlay)},
			{Hangup{}, nil},
			{PlayDone{}, nil},
			{RD(RecordHangup, 5000), nil},
		}, "done"},

		// --- after Done ---
		{"events after done ignored", baseCfg(), concat(toRecording, []step{
			{RD(RecordSilence, 7000), A(SaveRecording{}, saved)},
			{PlayDone{}, A(EndCall{})},
			{Start{}, nil}, {D('#'), nil}, {D('1'), nil}, {PlayDone{}, nil},
			{RD(RecordDigit, 5000), nil}, {Timeout{}, nil}, {Hangup{}, nil},
		}), "done"},
		{"events after login ignored", baseCfg(), []step{
			{Start{}, A(systemUnavail)},
			{D('*'), A(StopPlay{}, Login{Mailbox: "1001"})},
			{PlayDone{}, nil}, {D('#'), nil}, {Hangup{}, nil},
		}, "done"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDeposit(tt.cfg)
			if d.State() != "idle" || d.Done() {
				t.Fatalf("new machine: state %s done %v", d.State(), d.Done())
			}
			for i, s := range tt.steps {
				before := d.State()
				got := d.Handle(s.ev)
				if !reflect.DeepEqual(got, s.want) {
					t.Fatalf("step %d %v (state %s):\n got %v\nwant %v", i, s.ev, before, got, s.want)
				}
			}
			if d.State() != tt.state {
				t.Errorf("final state %q, want %q", d.State(), tt.state)
			}
			if d.Done() != (tt.state == "done") {
				t.Errorf("Done() = %v in state %q", d.Done(), d.State())
			}
		})
	}
}

func TestDepositPromptsListed(t *testing.T) {
	known := map[string]bool{}
	for _, p := range DepositPrompts {
		if known[p] {
			t.Errorf("duplicate %q", p)
		}
		known[p] = true
	}
	// Drive many sequences and check every prompt played is listed.
	seen := map[string]bool{}
	r := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 80)
	for range 5000 {
		for i := range buf {
			buf[i] = byte(r.Uint32())
		}
		cfg, evs := decodeFuzz(buf)
		d := NewDeposit(cfg)
		for _, ev := range evs {
			for _, a := range d.Handle(ev) {
				if p, ok := a.(Play); ok {
					for _, it := range p.Items {
						if it.Kind == AudioPrompt {
							seen[it.Name] = true
						}
					}
				}
			}
		}
	}
	for name := range seen {
		if !known[name] && !strings.HasPrefix(name, "digits/") {
			t.Errorf("prompt %q played but not in DepositPrompts", name)
		}
	}
}

func TestStrings(t *testing.T) {
	if s := P("vm-intro", "<beep>", "greeting:name", "<recording>").String(); s != "Play[vm-intro <beep> greeting:name <recording>]" {
		t.Errorf("Play.String() = %q", s)
	}
	for r := RecordDigit; r <= RecordHangup; r++ {
		if strings.HasPrefix(r.String(), "RecordReason(") {
			t.Errorf("no name for %d", r)
		}
	}
	if RecordReason(0).String() != "RecordReason(0)" || AudioKind(0).String() != "AudioKind(0)" {
		t.Error("unknown values")
	}
}

func ExampleDeposit_recordAndSave() {
	d := NewDeposit(DepositConfig{Mailbox: "1001", MaxSeconds: 180, MinSeconds: 1, SilenceSeconds: 5})
	for _, ev := range []Event{
		Start{}, Digit{Key: '#'}, PlayDone{}, Digit{Key: '#'},
		RecordDone{Reason: RecordDigit, DurationMS: 4200}, PlayDone{},
	} {
		fmt.Printf("%-9s %v\n", d.State(), d.Handle(ev))
	}
	fmt.Println(d.State(), d.Done())
	// Output:
	// idle      [Play[vm-theperson digits/1 digits/0 digits/0 digits/1 vm-isunavail vm-intro]]
	// greeting  [StopPlay Play[<beep>]]
	// beep      [StartRecording(max=180s silence=5s)]
	// recording [StopRecording]
	// stopping  [SaveRecording(urgent=false) Play[vm-msgsaved vm-goodbye]]
	// goodbye   [EndCall]
	// done true
}
