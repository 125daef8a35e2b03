// Package ivr holds the call menus of the voicemail server as pure state
// machines: events go in, actions come out. Nothing here opens a socket,
// reads a clock, starts a goroutine or imports another package of this

// This file is over 600 lines on purpose: the deposit menu is one state
// machine whose states and transitions read best side by side.
// module, so every key of docs/ivr.md (and later §5) is tested by feeding events.
//
// # Deposit API
//
//	// Audio to play. A Play holds a list, played in order.
//	type AudioKind uint8
//	const (
//	    AudioPrompt    AudioKind = iota + 1 // Name: prompt of the prompt set ("vm-intro", "digits/1")
//	    AudioGreeting                       // Name: the mailbox's recorded greeting: "unavailable", "busy", "temporary", "name"
//	    AudioBeep                           // the tone before recording (Name empty)
//	    AudioRecording                      // the recording just made, for review (Name empty)
//	)
//	type Audio struct{ Kind AudioKind; Name string }
//	func Prompt(name string) Audio; func Greeting(name string) Audio
//	var Beep, Recording Audio
//
//	// Events (driver -> machine). Implemented by:
//	type Event interface{ isEvent() }
//	type Start struct{}        // call answered, media ready
//	type Digit struct{ Key rune } // '0'-'9', '*', '#', 'A'-'D'
//	type PlayDone struct{}     // the most recent Play finished by itself (never sent for a stopped or replaced Play)
//	type RecordDone struct{ Reason RecordReason; DurationMS int64 } // the recording ended; DurationMS after trimming trailing silence
//	type RecordReason uint8 // RecordDigit (answer to StopRecording), RecordMax, RecordSilence, RecordHangup
//	type Timeout struct{}      // the most recent StartTimer elapsed (never sent after CancelTimer or a newer StartTimer)
//	type Hangup struct{}       // the caller hung up (BYE/CANCEL)
//
//	// Actions (machine -> driver), executed in slice order. Implemented by:
//	type Action interface{ isAction() }
//	type Play struct{ Items []Audio }                   // replaces any current playback
//	type StopPlay struct{}                              // no PlayDone follows
//	type StartRecording struct{ MaxSeconds, SilenceSeconds int } // 0 = no limit / no silence detection
//	type StopRecording struct{}                         // driver stops, answers RecordDone{Reason: RecordDigit}
//	type SaveRecording struct{ Urgent bool }            // store the last recording durably as a new message
//	type DiscardRecording struct{}                      // delete the last recording
//	type Transfer struct{ Target string }               // blind transfer (REFER) to the operator; machine is Done
//	type Login struct{ Mailbox string }                 // hand the call to the access IVR login of Mailbox; machine is Done
//	type StartTimer struct{ Seconds int }               // one timer; a new one replaces the old
//	type CancelTimer struct{}
//	type EndCall struct{}                               // hang up (BYE); machine is Done
//
//	type DepositConfig struct {
//	    Mailbox   string          // number, spoken digit by digit in the system greeting
//	    Busy      bool            // cause 486 / user-busy
//	    Greetings map[string]bool // recorded greetings that exist: "temporary", "busy", "unavailable", "name"
//	    Full      bool            // message count >= max_messages
//	    Review    bool
//	    Operator  string          // "" = no operator
//	    MaxSeconds, MinSeconds, SilenceSeconds int
//	}
//	func NewDeposit(cfg DepositConfig) *Deposit
//	func (d *Deposit) Handle(ev Event) []Action // nil when the event means nothing in the current state
//	func (d *Deposit) State() string            // "idle" "full" "greeting" "transfer" "beep" "recording" "stopping" "review" "goodbye" "done"
//	func (d *Deposit) Done() bool               // terminal; Handle returns nil from then on
//	var DepositPrompts []string                 // every prompt name the deposit machine may play (besides digits/0-9)
//	const GreetingUnavailable, GreetingBusy, GreetingTemporary, GreetingName // "unavailable" … "name"
//	const PromptIntro = "vm-intro", …                                       // one constant per prompt name
//	const ReviewTimeoutSeconds = 5, ReviewMaxRepeats = 3
//
// Every event and action (and Audio, AudioKind, RecordReason) has a String
// method for logs: "Play[vm-theperson digits/1 vm-intro]", "Digit(#)",
// "SaveRecording(urgent=true)".
//
// # Contract with the driver
//
//   - The driver sends Start once the call is answered and media flows.
//   - PlayDone and Timeout must refer to the latest Play / StartTimer; the
//     driver drops stale ones (a Play finishing at the same moment as a
//     StopPlay, a timer firing after CancelTimer). The machine also ignores
//     them in states where it is not waiting for one.
//   - Hang-up while recording: the driver stops the recorder itself and sends
//     RecordDone{Reason: RecordHangup} (before or after Hangup; both orders
//     work). After a Hangup the machine is Done as soon as no recording is
//     pending. On Hangup the machine never asks to play anything.
//   - After Transfer or Login the machine is Done; if the REFER fails or the
//     access IVR cannot take over, the driver ends the call.
//
// # Choices where docs/ivr.md is silent (Asterisk app_voicemail behaviour unless noted)
//
//   - Mailbox full: checked at Start, before any greeting; "vm-mailbox-full",
//     "vm-goodbye", hang up.
//   - The instructions "vm-intro" follow every greeting, recorded or system
//     (Asterisk plays INTRO after the greeting too).
//   - Busy cause without a busy greeting falls back to the system greeting in
//     its busy wording ("vm-isonphone"), not to the unavailable greeting.
//   - In the system greeting, non-digit characters of the mailbox number are
//     skipped.
//   - '0' during the greeting with no operator set is ignored; other digits
//     than '#', '*', '0' are ignored during the greeting, and all digits are
//     ignored during the beep, the transfer prompt and the good-bye.
//   - During recording only '#' ends it; other keys are part of the audio
//     (Asterisk would also jump to the operator on '0' and to 'a' on '*').
//   - A recording ended by max_seconds is followed by "vm-max-length" before
//     whatever comes next.
//   - A recording shorter than min_seconds, or of zero length whatever
//     min_seconds says (all silence, trimmed away), is discarded. Asterisk
//     drops it silently; we play "vm-too-short", "vm-goodbye" and hang up,
//     even with review on, so the caller knows.
//   - Review menu: "vm-review", then a 5 s timer starts when the prompt ends
//     (not while it plays). A key during a menu prompt (or during the replay
//     of the recording) interrupts it and counts. 1 save, 2 listen (then the
//     menu), 3 discard and re-record (beep, record; the urgent flag is kept),
//     4 toggle urgent ("vm-marked-urgent" / "vm-unmarked-urgent", then the
//     menu); any other key: "vm-invalid", then the menu. A timeout replays the
//     menu; after 3 replays, the 4th timeout saves the message (Asterisk:
//     max_attempts 3, saves on 't'). Consecutive timeouts are counted; any
//     key resets the count.
//   - Hang-up during review saves the message (Asterisk keeps it). Hang-up
//     before the recording (greeting, beep, transfer prompt) saves nothing.
//   - Without review the message is saved at once, then "vm-msgsaved",
//     "vm-goodbye", hang up.
package ivr

import (
	"fmt"
	"strings"
)

// AudioKind says where the audio of a Play item comes from.
type AudioKind uint8

const (
	// AudioPrompt is a prompt of the prompt set; Name is its name ("vm-intro", "digits/1").
	AudioPrompt AudioKind = iota + 1
	// AudioGreeting is a greeting recorded by the mailbox owner; Name is its
	// kind: "unavailable", "busy", "temporary" or "name".
	AudioGreeting
	// AudioBeep is the tone before recording.
	AudioBeep
	// AudioRecording is the recording just made by the caller (review).
	AudioRecording
)

func (k AudioKind) String() string {
	switch k {
	case AudioPrompt:
		return "prompt"
	case AudioGreeting:
		return "greeting"
	case AudioBeep:
		return "beep"
	case AudioRecording:
		return "recording"
	}
	return fmt.Sprintf("AudioKind(%d)", uint8(k))
}

// Audio is one item of a Play.
type Audio struct {
	Kind AudioKind
	Name string
}

func (a Audio) String() string {
	switch a.Kind {
	case AudioPrompt:
		return a.Name
	case AudioGreeting:
		return "greeting:" + a.Name
	case AudioBeep, AudioRecording:
		return "<" + a.Kind.String() + ">"
	}
	return a.Kind.String() + ":" + a.Name
}

// Prompt returns the Audio of the prompt called name.
func Prompt(name string) Audio { return Audio{Kind: AudioPrompt, Name: name} }

// Greeting returns the Audio of the mailbox's recorded greeting of the given kind.
func Greeting(kind string) Audio { return Audio{Kind: AudioGreeting, Name: kind} }

var (
	// Beep is the tone played before recording.
	Beep = Audio{Kind: AudioBeep}
	// Recording is the caller's recording, played back in review.
	Recording = Audio{Kind: AudioRecording}
)

// Greeting kinds (keys of DepositConfig.Greetings, names of AudioGreeting).
const (
	GreetingUnavailable = "unavailable"
	GreetingBusy        = "busy"
	GreetingTemporary   = "temporary"
	GreetingName        = "name"
)

// Prompt names used by the deposit machine.
const (
	PromptMailboxFull    = "vm-mailbox-full"
	PromptGoodbye        = "vm-goodbye"
	PromptThePerson      = "vm-theperson"
	PromptIsOnPhone      = "vm-isonphone"
	PromptIsUnavail      = "vm-isunavail"
	PromptIntro          = "vm-intro"
	PromptTransfer       = "vm-transfer"
	PromptMaxLength      = "vm-max-length"
	PromptTooShort       = "vm-too-short"
	PromptReview         = "vm-review"
	PromptMsgSaved       = "vm-msgsaved"
	PromptMarkedUrgent   = "vm-marked-urgent"
	PromptUnmarkedUrgent = "vm-unmarked-urgent"
	PromptInvalid        = "vm-invalid"
)

// DepositPrompts lists every prompt the deposit machine may play, apart
// from "digits/0" … "digits/9". A prompt set should contain them all.
var DepositPrompts = []string{
	PromptMailboxFull, PromptGoodbye, PromptThePerson, PromptIsOnPhone,
	PromptIsUnavail, PromptIntro, PromptTransfer, PromptMaxLength,
	PromptTooShort, PromptReview, PromptMsgSaved, PromptMarkedUrgent,
	PromptUnmarkedUrgent, PromptInvalid,
}

// ReviewTimeoutSeconds is how long the review menu waits for a key after
// its prompt ended.
const ReviewTimeoutSeconds = 5

// ReviewMaxRepeats is how many times the review menu is repeated after a
// timeout before the message is saved.
const ReviewMaxRepeats = 3

// ---- Events ----

// Event is something that happened on the call (driver -> machine).
type Event interface{ isEvent() }

// Start: the call is answered and media is ready.
type Start struct{}

// Digit: a DTMF key ('0'-'9', '*', '#', 'A'-'D').
type Digit struct{ Key rune }

// PlayDone: the most recent Play finished by itself. Not sent for a Play
// that was stopped or replaced.
type PlayDone struct{}

// RecordReason says why a recording ended.
type RecordReason uint8

const (
	// RecordDigit: the driver stopped it because the machine sent StopRecording.
	RecordDigit RecordReason = iota + 1
	// RecordMax: max_seconds reached.
	RecordMax
	// RecordSilence: silence_seconds of silence (DurationMS is already trimmed).
	RecordSilence
	// RecordHangup: the caller hung up while recording.
	RecordHangup
)

func (r RecordReason) String() string {
	switch r {
	case RecordDigit:
		return "digit"
	case RecordMax:
		return "max"
	case RecordSilence:
		return "silence"
	case RecordHangup:
		return "hangup"
	}
	return fmt.Sprintf("RecordReason(%d)", uint8(r))
}

// RecordDone: the recording ended. DurationMS is its length after trailing
// silence was trimmed.
type RecordDone struct {
	Reason     RecordReason
	DurationMS int64
}

// Timeout: the most recent StartTimer elapsed.
type Timeout struct{}

// Hangup: the caller hung up.
type Hangup struct{}

func (Start) isEvent() {}

func (Start) String() string    { return "Start" }
func (e Digit) String() string  { return "Digit(" + string(e.Key) + ")" }
func (PlayDone) String() string { return "PlayDone" }
func (e RecordDone) String() string {
	return fmt.Sprintf("RecordDone(%v %dms)", e.Reason, e.DurationMS)
}
func (Timeout) String() string { return "Timeout" }
func (Hangup) String() string  { return "Hangup" }

func (Digit) isEvent()      {}
func (PlayDone) isEvent()   {}
func (RecordDone) isEvent() {}
func (Timeout) isEvent()    {}
func (Hangup) isEvent()     {}

// ---- Actions ----

// Action is something the driver must do, in the order returned.
type Action interface{ isAction() }

// Play plays Items in order, replacing any current playback.
type Play struct{ Items []Audio }

func (p Play) String() string {
	s := make([]string, len(p.Items))
	for i, a := range p.Items {
		s[i] = a.String()
	}
	return "Play[" + strings.Join(s, " ") + "]"
}

// StopPlay stops the current playback; no PlayDone follows.
type StopPlay struct{}

// StartRecording starts recording the caller. The driver ends it by itself
// after MaxSeconds (RecordMax) or SilenceSeconds of silence (RecordSilence);
// 0 disables the limit.
type StartRecording struct{ MaxSeconds, SilenceSeconds int }

// StopRecording stops the recording; the driver answers RecordDone{Reason: RecordDigit}.
type StopRecording struct{}

// SaveRecording stores the last recording durably as a new message.
type SaveRecording struct{ Urgent bool }

// DiscardRecording deletes the last recording.
type DiscardRecording struct{}

// Transfer blind-transfers the caller (REFER) to Target. The machine is Done.
type Transfer struct{ Target string }

// Login hands the call to the access IVR, at the login of Mailbox. The machine is Done.
type Login struct{ Mailbox string }

// StartTimer starts the one timer of the machine; a new one replaces the old.
type StartTimer struct{ Seconds int }

// CancelTimer stops the timer; no Timeout follows.
type CancelTimer struct{}

// EndCall hangs up the call (BYE). The machine is Done.
type EndCall struct{}

func (StopPlay) String() string { return "StopPlay" }
func (a StartRecording) String() string {
	return fmt.Sprintf("StartRecording(max=%ds silence=%ds)", a.MaxSeconds, a.SilenceSeconds)
}
func (StopRecording) String() string    { return "StopRecording" }
func (a SaveRecording) String() string  { return fmt.Sprintf("SaveRecording(urgent=%v)", a.Urgent) }
func (DiscardRecording) String() string { return "DiscardRecording" }
func (a Transfer) String() string       { return "Transfer(" + a.Target + ")" }
func (a Login) String() string          { return "Login(" + a.Mailbox + ")" }
func (a StartTimer) String() string     { return fmt.Sprintf("StartTimer(%ds)", a.Seconds) }
func (CancelTimer) String() string      { return "CancelTimer" }
func (EndCall) String() string          { return "EndCall" }

func (Play) isAction()             {}
func (StopPlay) isAction()         {}
func (StartRecording) isAction()   {}
func (StopRecording) isAction()    {}
func (SaveRecording) isAction()    {}
func (DiscardRecording) isAction() {}
func (Transfer) isAction()         {}
func (Login) isAction()            {}
func (StartTimer) isAction()       {}
func (CancelTimer) isAction()      {}
func (EndCall) isAction()          {}

// ---- The machine ----

// DepositConfig describes the mailbox and the call for one deposit.
type DepositConfig struct {
	Mailbox        string          // number, spoken digit by digit in the system greeting
	Busy           bool            // cause 486 / user-busy
	Greetings      map[string]bool // recorded greetings that exist: "temporary", "busy", "unavailable", "name"
	Full           bool            // message count >= max_messages
	Review         bool            // review menu after '#'
	Operator       string          // operator extension for '0'; "" = none
	MaxSeconds     int             // recording limit; 0 = none
	MinSeconds     int             // shorter recordings are discarded
	SilenceSeconds int             // silence that ends the recording; 0 = none
}

type depositState uint8

const (
	stIdle      depositState = iota // before Start
	stFull                          // playing "mailbox full, goodbye"
	stGreeting                      // playing the greeting and instructions
	stTransfer                      // playing "vm-transfer" before the REFER
	stBeep                          // playing the beep
	stRecording                     // recording
	stStopping                      // recording stopped or caller gone, waiting for RecordDone
	stReview                        // review menu (prompt playing or timer running)
	stGoodbye                       // playing the last prompts before EndCall
	stDone
)

var stateNames = [...]string{
	stIdle: "idle", stFull: "full", stGreeting: "greeting", stTransfer: "transfer",
	stBeep: "beep", stRecording: "recording", stStopping: "stopping",
	stReview: "review", stGoodbye: "goodbye", stDone: "done",
}

// Deposit is the state machine of one call leaving a message. It is not safe
// for concurrent use: one driver goroutine feeds it.
type Deposit struct {
	cfg   DepositConfig
	state depositState

	hungUp   bool // caller gone, waiting for RecordDone
	urgent   bool // review key 4
	timer    bool // a StartTimer is pending
	playing  bool // a Play is pending (review: the menu prompt runs, no timer yet)
	timeouts int  // consecutive review timeouts
}

// NewDeposit returns a machine in state "idle", waiting for Start.
func NewDeposit(cfg DepositConfig) *Deposit {
	return &Deposit{cfg: cfg}
}

// State names the current state, for tests and logs.
func (d *Deposit) State() string { return stateNames[d.state] }

// Done reports whether the machine has finished; Handle returns nil from then on.
func (d *Deposit) Done() bool { return d.state == stDone }

// Handle feeds one event and returns the actions to execute, in order. It
// returns nil when the event means nothing in the current state.
func (d *Deposit) Handle(ev Event) []Action {
	if d.state == stDone {
		return nil
	}
	switch ev := ev.(type) {
	case Start:
		if d.state == stIdle {
			return d.start()
		}
	case Digit:
		return d.digit(ev.Key)
	case PlayDone:
		return d.playDone()
	case RecordDone:
		if d.state == stRecording || d.state == stStopping {
			return d.recordDone(ev)
		}
	case Timeout:
		if d.state == stReview && d.timer {
			d.timer = false
			return d.reviewTimeout()
		}
	case Hangup:
		return d.hangup()
	}
	return nil
}

func (d *Deposit) start() []Action {
	if d.cfg.Full {
		return d.goodbye(stFull, nil, Prompt(PromptMailboxFull), Prompt(PromptGoodbye))
	}
	d.state = stGreeting
	return d.play(nil, d.greeting()...)
}

// greeting chooses what to play first (docs/ivr.md).
func (d *Deposit) greeting() []Audio {
	g := d.cfg.Greetings
	switch {
	case g[GreetingTemporary]:
		return []Audio{Greeting(GreetingTemporary), Prompt(PromptIntro)}
	case d.cfg.Busy && g[GreetingBusy]:
		return []Audio{Greeting(GreetingBusy), Prompt(PromptIntro)}
	case !d.cfg.Busy && g[GreetingUnavailable]:
		return []Audio{Greeting(GreetingUnavailable), Prompt(PromptIntro)}
	}
	items := []Audio{Prompt(PromptThePerson)}
	if g[GreetingName] {
		items = append(items, Greeting(GreetingName))
	} else {
		for _, c := range d.cfg.Mailbox {
			if c >= '0' && c <= '9' {
				items = append(items, Prompt("digits/"+string(c)))
			}
		}
	}
	if d.cfg.Busy {
		items = append(items, Prompt(PromptIsOnPhone))
	} else {
		items = append(items, Prompt(PromptIsUnavail))
	}
	return append(items, Prompt(PromptIntro))
}

func (d *Deposit) digit(key rune) []Action {
	switch d.state {
	case stGreeting:
		switch key {
		case '#':
			d.state = stBeep
			return d.play([]Action{StopPlay{}}, Beep)
		case '*':
			d.state = stDone
			return []Action{StopPlay{}, Login{Mailbox: d.cfg.Mailbox}}
		case '0':
			if d.cfg.Operator == "" {
				return nil // Asterisk ignores '0' without an operator
			}
			d.state = stTransfer
			return d.play([]Action{StopPlay{}}, Prompt(PromptTransfer))
		}
	case stRecording:
		if key == '#' {
			d.state = stStopping
			return []Action{StopRecording{}}
		}
	case stReview:
		return d.reviewKey(key)
	}
	return nil
}

func (d *Deposit) playDone() []Action {
	if !d.playing {
		return nil
	}
	d.playing = false
	switch d.state {
	case stFull, stGoodbye:
		d.state = stDone
		return []Action{EndCall{}}
	case stGreeting:
		d.state = stBeep
		return d.play(nil, Beep)
	case stTransfer:
		d.state = stDone
		return []Action{Transfer{Target: d.cfg.Operator}}
	case stBeep:
		d.state = stRecording
		return []Action{StartRecording{MaxSeconds: d.cfg.MaxSeconds, SilenceSeconds: d.cfg.SilenceSeconds}}
	case stReview:
		d.timer = true
		return []Action{StartTimer{Seconds: ReviewTimeoutSeconds}}
	}
	return nil
}

func (d *Deposit) recordDone(ev RecordDone) []Action {
	long := ev.DurationMS > 0 && ev.DurationMS >= int64(d.cfg.MinSeconds)*1000
	if d.hungUp || ev.Reason == RecordHangup {
		d.state = stDone
		if long {
			return []Action{SaveRecording{Urgent: d.urgent}}
		}
		return []Action{DiscardRecording{}}
	}
	var first []Audio
	if ev.Reason == RecordMax {
		first = append(first, Prompt(PromptMaxLength))
	}
	switch {
	case !long:
		return d.goodbye(stGoodbye, []Action{DiscardRecording{}},
			append(first, Prompt(PromptTooShort), Prompt(PromptGoodbye))...)
	case d.cfg.Review:
		d.state = stReview
		d.timeouts = 0
		return d.play(nil, append(first, Prompt(PromptReview))...)
	default:
		return d.goodbye(stGoodbye, []Action{SaveRecording{Urgent: d.urgent}},
			append(first, Prompt(PromptMsgSaved), Prompt(PromptGoodbye))...)
	}
}

// reviewKey handles a key in the review menu, interrupting its prompt or timer.
func (d *Deposit) reviewKey(key rune) []Action {
	var out []Action
	if d.playing {
		d.playing = false
		out = append(out, StopPlay{})
	}
	if d.timer {
		d.timer = false
		out = append(out, CancelTimer{})
	}
	d.timeouts = 0
	switch key {
	case '1':
		out = append(out, SaveRecording{Urgent: d.urgent})
		return d.goodbye(stGoodbye, out, Prompt(PromptMsgSaved), Prompt(PromptGoodbye))
	case '2':
		return d.play(out, Recording, Prompt(PromptReview))
	case '3':
		d.state = stBeep
		out = append(out, DiscardRecording{})
		return d.play(out, Beep)
	case '4':
		d.urgent = !d.urgent
		p := PromptUnmarkedUrgent
		if d.urgent {
			p = PromptMarkedUrgent
		}
		return d.play(out, Prompt(p), Prompt(PromptReview))
	default:
		return d.play(out, Prompt(PromptInvalid), Prompt(PromptReview))
	}
}

func (d *Deposit) reviewTimeout() []Action {
	d.timeouts++
	if d.timeouts > ReviewMaxRepeats {
		// Asterisk keeps the message when the review menu times out.
		return d.goodbye(stGoodbye, []Action{SaveRecording{Urgent: d.urgent}},
			Prompt(PromptMsgSaved), Prompt(PromptGoodbye))
	}
	return d.play(nil, Prompt(PromptReview))
}

func (d *Deposit) hangup() []Action {
	switch d.state {
	case stRecording, stStopping:
		// The driver stops the recorder and reports RecordDone{RecordHangup}
		// (it may already be on its way after a StopRecording).
		d.hungUp = true
		d.state = stStopping
		return nil
	case stReview:
		var out []Action
		if d.timer {
			d.timer = false
			out = append(out, CancelTimer{})
		}
		d.state = stDone
		// Asterisk keeps a recorded message when the caller hangs up in review.
		return append(out, SaveRecording{Urgent: d.urgent})
	}
	d.state = stDone
	return nil
}

// play appends a Play of items to out and marks a playback pending.
func (d *Deposit) play(out []Action, items ...Audio) []Action {
	d.playing = true
	return append(out, Play{Items: items})
}

// goodbye plays items, then ends the call on PlayDone.
func (d *Deposit) goodbye(st depositState, out []Action, items ...Audio) []Action {
	d.state = st
	return d.play(out, items...)
}
