package ivr

// This file is over 600 lines on purpose: the access menu is one state
// machine (login, folders, message and advanced menus, forwarding,
// greetings, PIN change) whose states hand over to one another; its
// transitions are easier to check read together than spread over files.

import (
	"fmt"
	"strconv"
	"strings"
)

// # Access API (docs/ivr.md, the access number)
//
// Access is the menu of mailbox owners, keyed like Asterisk's
// VoiceMailMain. Like Deposit it is pure: the driver turns SIP, RTP, the
// store and the clock into events, and executes the actions. Everything
// that needs the store comes back as an event answering an action:
//
//	Authenticate{Mailbox, PIN, NoPIN} -> LoginResult{Status, Groups}
//	OpenMailbox{Mailbox}              -> MailboxOpened{Messages}
//	Forward{ID, To}                   -> ForwardResult{OK}
//
// The other store actions (MarkRead, MoveMessage, DeleteMessages,
// SaveGreeting, DeleteGreeting, ChangePIN) need no answer. Seek moves the
// current playback (rewind / skip ahead during a message).
//
// Contract with the driver, in addition to the Deposit one:
//   - Authenticate: the driver checks the lock, then the PIN (never logged),
//     records a failure (store.FailLogin) or clears the failures, and answers
//     LoginResult. NoPIN is only asked when AccessConfig.SkipPIN was set.
//   - MessageInfo.When holds the prompt names of the received date and time
//     in the mailbox time zone (prompts.DateTime), From the caller number.
//   - Play items of kind AudioMessage name a message ID of the open mailbox.
//   - A greeting recording is kept by the driver until SaveGreeting (commit)
//     or DiscardRecording; a recording still held when the machine is Done
//     is discarded.
//
// # Choices where docs/ivr.md is silent (Asterisk VoiceMailMain unless noted)
//
//   - Every menu plays its prompt, then waits MenuTimeoutSeconds; a timeout
//     replays it, and the MenuMaxRepeats+1-th timeout says goodbye. A key
//     interrupts any prompt. Digit entries (mailbox, PIN, forward number)
//     end with '#', or with a timeout once something was typed.
//   - Login: a mailbox taken from the caller identity is asked only for the
//     PIN, again after each failure; a typed mailbox is asked again with its
//     PIN. An unknown mailbox is a failed attempt like a wrong PIN. A locked
//     mailbox says "locked" and hangs up. '*' during an entry clears it.
//   - The summary counts like Asterisk: urgent new, other new, old (the Old
//     folder plus played messages still in New). Playing starts with the New
//     folder (urgent first, then by time), followed by the Old folder; a
//     folder chosen with 2 plays alone (urgent first).
//   - "vm-first" / "vm-last" announce the first / last message before its
//     envelope (date, time, caller). A message becomes read (and moves from
//     New to Old) when its audio ends or a key interrupts the audio.
//   - Keys of the main menu work at the message menu too (1 first message,
//     2 folders, 0 options); after a message '*' is help and '#' exits.
//     During the envelope '#' skips to the audio; during the audio '*'/'#'
//     seek by SeekSeconds.
//   - 4 at the first message and 6 at the last say "no more messages"; 6
//     then returns to the main menu. 7 toggles the deletion mark and stays.
//     Deletions are applied when the folder is left (folder change), at
//     exit, at the goodbye after timeouts and on hang-up.
//   - 9 moves the message at once; the play list keeps it until the folder
//     is left. 8 forwards a copy; an unknown target says so.
//   - Greetings: "record after the tone", beep, record until '#', silence or
//     the limit; then the recording is played back with the review menu.
//     Only key 1 replaces the greeting: a hang-up, a timeout or '*' discards
//     it. PIN change applies to the login mailbox, greetings to the chosen
//     (personal or group) mailbox.
//   - Group choice: 1 personal, 2…9 the groups in number order (at most 8),
//     each announced by number.

// AudioMessage is a recorded message of the open mailbox; Name is its ID.
const AudioMessage AudioKind = 16

// MessageAudio returns the Audio of the message with the given ID.
func MessageAudio(id string) Audio { return Audio{Kind: AudioMessage, Name: id} }

// Access timing and limits.
const (
	MenuTimeoutSeconds  = 5  // wait after a menu prompt
	EntryTimeoutSeconds = 5  // wait after a prompt or digit during an entry
	MenuMaxRepeats      = 2  // replays after a timeout before goodbye
	SeekSeconds         = 3  // '*' / '#' during a message
	MaxGroups           = 8  // keys 2…9
	PINMinLen           = 4  // new PIN
	PINMaxLen           = 10 // new PIN
	maxEntryLen         = 32
)

// Prompt names used by the access machine.
const (
	PromptLogin          = "vm-login"
	PromptPassword       = "vm-password"
	PromptIncorrect      = "vm-incorrect"
	PromptLocked         = "vm-locked"
	PromptYouHave        = "vm-youhave"
	PromptNew            = "vm-new"
	PromptOld            = "vm-old"
	PromptUrgent         = "vm-urgent"
	PromptAnd            = "vm-and"
	PromptMessage        = "vm-message"
	PromptMessages       = "vm-messages"
	PromptNo             = "vm-no"
	PromptFirst          = "vm-first"
	PromptLast           = "vm-last"
	PromptNoMore         = "vm-nomore"
	PromptReceived       = "vm-received"
	PromptFrom           = "vm-from"
	PromptUnknownCaller  = "vm-unknown-caller"
	PromptMainMenu       = "vm-main-menu"
	PromptMsgMenu        = "vm-msg-menu"
	PromptDeleted        = "vm-deleted"
	PromptUndeleted      = "vm-undeleted"
	PromptSavedTo        = "vm-saved-to"
	PromptForwardTo      = "vm-forward-to"
	PromptForwarded      = "vm-forwarded"
	PromptNoSuchMailbox  = "vm-no-such-mailbox"
	PromptFolderMenu     = "vm-folder-menu"
	PromptOptions        = "vm-options"
	PromptTempMenu       = "vm-temp-menu"
	PromptTempRemoved    = "vm-temp-removed"
	PromptRecordAfter    = "vm-record-after-tone"
	PromptGreetingReview = "vm-greeting-review"
	PromptGreetingSaved  = "vm-greeting-saved"
	PromptNewPassword    = "vm-newpassword"
	PromptReenter        = "vm-reenterpassword"
	PromptMismatch       = "vm-mismatch"
	PromptPassChanged    = "vm-passchanged"
	PromptPasswordLength = "vm-password-length"
	PromptChooseMailbox  = "vm-choose-mailbox"
	PromptPress          = "vm-press"
	PromptForGroup       = "vm-for-group"
	PromptHelp           = "vm-help"
	PromptEnvUrgent      = "vm-envelope-urgent"
	PromptAdvanced       = "vm-advanced"
)

// Folder names, in the order of the folder keys 0…4.
var accessFolders = [...]string{"new", "old", "work", "family", "friends"}

// FolderPrompt is the prompt naming a folder ("vm-folder-work").
func FolderPrompt(folder string) string { return "vm-folder-" + folder }

// AccessPrompts lists every prompt the access machine may play apart from
// digits/*, num/* and whatever MessageInfo.When holds.
var AccessPrompts = []string{
	PromptLogin, PromptPassword, PromptIncorrect, PromptLocked, PromptYouHave,
	PromptNew, PromptOld, PromptUrgent, PromptAnd, PromptMessage, PromptMessages,
	PromptNo, PromptFirst, PromptLast, PromptNoMore, PromptReceived, PromptFrom,
	PromptUnknownCaller, PromptMainMenu, PromptMsgMenu, PromptDeleted,
	PromptUndeleted, PromptSavedTo, PromptForwardTo, PromptForwarded,
	PromptNoSuchMailbox, PromptFolderMenu, PromptOptions, PromptTempMenu,
	PromptTempRemoved, PromptRecordAfter, PromptGreetingReview,
	PromptGreetingSaved, PromptNewPassword, PromptReenter, PromptMismatch,
	PromptPassChanged, PromptPasswordLength, PromptChooseMailbox, PromptPress,
	PromptForGroup, PromptHelp, PromptEnvUrgent, PromptAdvanced, PromptGoodbye,
	PromptInvalid, PromptTooShort,
	FolderPrompt("new"), FolderPrompt("old"), FolderPrompt("work"),
	FolderPrompt("family"), FolderPrompt("friends"),
}

// ---- Access events ----

// LoginStatus is the outcome of an Authenticate.
type LoginStatus uint8

const (
	LoginOK     LoginStatus = iota + 1
	LoginFailed             // unknown mailbox or wrong PIN (the failure is recorded)
	LoginLocked             // too many failures: the mailbox is locked
)

func (s LoginStatus) String() string {
	switch s {
	case LoginOK:
		return "ok"
	case LoginFailed:
		return "failed"
	case LoginLocked:
		return "locked"
	}
	return fmt.Sprintf("LoginStatus(%d)", uint8(s))
}

// LoginResult answers Authenticate. Groups are the numbers of the group
// mailboxes the user belongs to, in number order.
type LoginResult struct {
	Status LoginStatus
	Groups []string
}

// MessageInfo is one message of the open mailbox, as the machine needs it.
type MessageInfo struct {
	ID         string
	Folder     string // "new", "old", "work", "family", "friends"
	Urgent     bool
	Read       bool
	When       []string // prompt names: the received date and time in the mailbox time zone
	From       string   // caller number ("" = unknown)
	DurationMS int64
}

// MailboxOpened answers OpenMailbox with every message of the mailbox,
// oldest first.
type MailboxOpened struct{ Messages []MessageInfo }

// ForwardResult answers Forward: OK false when the target mailbox does not exist.
type ForwardResult struct{ OK bool }

func (LoginResult) isEvent()   {}
func (MailboxOpened) isEvent() {}
func (ForwardResult) isEvent() {}

func (e LoginResult) String() string {
	return "LoginResult(" + e.Status.String() + " groups=" + strings.Join(e.Groups, ",") + ")"
}
func (e MailboxOpened) String() string { return fmt.Sprintf("MailboxOpened(%d)", len(e.Messages)) }
func (e ForwardResult) String() string { return fmt.Sprintf("ForwardResult(ok=%v)", e.OK) }

// ---- Access actions ----

// Authenticate asks the driver to check a login. NoPIN: the mailbox's own
// caller with ask_password off (AccessConfig.SkipPIN).
type Authenticate struct {
	Mailbox, PIN string
	NoPIN        bool
}

// OpenMailbox loads the messages of Mailbox (answered by MailboxOpened);
// the following message actions refer to it.
type OpenMailbox struct{ Mailbox string }

// MarkRead marks a message played: read, and moved from New to Old.
type MarkRead struct{ ID string }

// MoveMessage moves a message to Folder.
type MoveMessage struct{ ID, Folder string }

// DeleteMessages deletes messages (row and audio).
type DeleteMessages struct{ IDs []string }

// Forward copies a message into mailbox To (answered by ForwardResult).
type Forward struct{ ID, To string }

// Seek moves the current playback by Seconds (negative rewinds).
type Seek struct{ Seconds int }

// SaveGreeting stores the last recording as the open mailbox's greeting Kind.
type SaveGreeting struct{ Kind string }

// DeleteGreeting removes the open mailbox's greeting Kind.
type DeleteGreeting struct{ Kind string }

// ChangePIN sets the login mailbox's PIN.
type ChangePIN struct{ PIN string }

func (Authenticate) isAction()   {}
func (OpenMailbox) isAction()    {}
func (MarkRead) isAction()       {}
func (MoveMessage) isAction()    {}
func (DeleteMessages) isAction() {}
func (Forward) isAction()        {}
func (Seek) isAction()           {}
func (SaveGreeting) isAction()   {}
func (DeleteGreeting) isAction() {}
func (ChangePIN) isAction()      {}

// String never shows a PIN.
func (a Authenticate) String() string {
	return fmt.Sprintf("Authenticate(%s nopin=%v)", a.Mailbox, a.NoPIN)
}
func (a OpenMailbox) String() string    { return "OpenMailbox(" + a.Mailbox + ")" }
func (a MarkRead) String() string       { return "MarkRead(" + a.ID + ")" }
func (a MoveMessage) String() string    { return "MoveMessage(" + a.ID + " " + a.Folder + ")" }
func (a DeleteMessages) String() string { return "DeleteMessages(" + strings.Join(a.IDs, ",") + ")" }
func (a Forward) String() string        { return "Forward(" + a.ID + " to " + a.To + ")" }
func (a Seek) String() string           { return fmt.Sprintf("Seek(%+ds)", a.Seconds) }
func (a SaveGreeting) String() string   { return "SaveGreeting(" + a.Kind + ")" }
func (a DeleteGreeting) String() string { return "DeleteGreeting(" + a.Kind + ")" }
func (ChangePIN) String() string        { return "ChangePIN(****)" }

// ---- The machine ----

// AccessConfig describes one access call.
type AccessConfig struct {
	// Mailbox is the mailbox whose PIN is asked: the caller's own (From /
	// P-Asserted-Identity) or the one whose greeting '*' interrupted.
	// "" asks "mailbox?" first.
	Mailbox string
	// SkipPIN logs Mailbox in without a PIN (ask_password off and the
	// caller is that mailbox).
	SkipPIN bool
	// MaxAttempts is login.max_attempts (failed logins per call); 0 means 3.
	MaxAttempts int
	// GreetingMaxSeconds and GreetingSilenceSeconds bound greeting
	// recordings; 0 = no limit.
	GreetingMaxSeconds, GreetingSilenceSeconds int
	// SayNumber turns a count into prompt names (prompts.Number, so that
	// numbers are composed by one function); nil says counts digit by digit.
	SayNumber func(int) []string
}

type accessState uint8

const (
	asIdle accessState = iota
	asAskMailbox
	asAskPIN
	asAuth
	asChooseBox
	asOpening
	asMain
	asFolderMenu
	asEnvelope // a message's announcement and envelope
	asAudio    // a message's audio
	asMsgMenu
	asAdvanced
	asEnvOnly // advanced 3: the envelope alone
	asForwardEntry
	asForwarding
	asSaveFolder
	asOptions
	asTempMenu
	asRecPrompt
	asRecording
	asRecStopping
	asRecReview
	asNewPIN1
	asNewPIN2
	asGoodbye
	asDone
)

var accessStateNames = [...]string{
	asIdle: "idle", asAskMailbox: "ask-mailbox", asAskPIN: "ask-pin", asAuth: "auth",
	asChooseBox: "choose-mailbox", asOpening: "opening", asMain: "main",
	asFolderMenu: "folder-menu", asEnvelope: "envelope", asAudio: "audio",
	asMsgMenu: "message-menu", asAdvanced: "advanced", asEnvOnly: "envelope-only",
	asForwardEntry: "forward-entry", asForwarding: "forwarding", asSaveFolder: "save-folder",
	asOptions: "options", asTempMenu: "temp-menu", asRecPrompt: "record-prompt",
	asRecording: "recording", asRecStopping: "record-stopping", asRecReview: "record-review",
	asNewPIN1: "new-pin", asNewPIN2: "new-pin-again", asGoodbye: "goodbye", asDone: "done",
}

type accessMsg struct {
	MessageInfo
	deleted bool
}

// Access is the state machine of one call to the access number. It is not
// safe for concurrent use.
type Access struct {
	cfg   AccessConfig
	state accessState

	playing  bool
	timer    bool
	timeouts int    // consecutive timeouts in the current menu or entry
	entry    string // digits typed in an entry

	// login
	login     string // the mailbox logging in
	typedBox  bool   // the mailbox was typed (asked again after a failure)
	pin       string
	attempts  int
	loggedIn  bool
	groups    []string
	open      string // the mailbox whose messages are open
	msgs      []*accessMsg
	list      []*accessMsg // the play list of the current folder
	folder    string       // "" = the initial New+Old list
	cur       int          // index in list; -1 = none yet
	recKind   string       // greeting being recorded
	hasRec    bool         // a recording is held by the driver
	newPIN    string
	pinErrors int
}

// NewAccess returns a machine in state "idle", waiting for Start.
func NewAccess(cfg AccessConfig) *Access {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	return &Access{cfg: cfg, cur: -1}
}

// State names the current state, for tests and logs.
func (a *Access) State() string { return accessStateNames[a.state] }

// Done reports whether the machine has finished.
func (a *Access) Done() bool { return a.state == asDone }

// Secret reports whether the digits the machine takes now are (part of) a
// PIN, which must never be logged: the login PIN, the new PIN twice, and
// keys typed ahead while a login is checked.
func (a *Access) Secret() bool {
	switch a.state {
	case asAskPIN, asAuth, asNewPIN1, asNewPIN2:
		return true
	}
	return false
}

// Mailbox is the mailbox whose messages are open ("" before).
func (a *Access) Mailbox() string { return a.open }

// LoginMailbox is the mailbox that logged in ("" before).
func (a *Access) LoginMailbox() string {
	if !a.loggedIn {
		return ""
	}
	return a.login
}

// Handle feeds one event and returns the actions to execute, in order.
func (a *Access) Handle(ev Event) []Action {
	if a.state == asDone {
		return nil
	}
	switch ev := ev.(type) {
	case Start:
		if a.state == asIdle {
			return a.start()
		}
	case Digit:
		return a.digit(ev.Key)
	case PlayDone:
		return a.playDone()
	case Timeout:
		if a.timer {
			a.timer = false
			return a.timeout()
		}
	case RecordDone:
		if a.state == asRecording || a.state == asRecStopping {
			return a.recordDone(ev)
		}
	case LoginResult:
		if a.state == asAuth {
			return a.loginResult(ev)
		}
	case MailboxOpened:
		if a.state == asOpening {
			return a.opened(ev)
		}
	case ForwardResult:
		if a.state == asForwarding {
			if ev.OK {
				return a.msgMenu(Prompt(PromptForwarded))
			}
			return a.msgMenu(Prompt(PromptNoSuchMailbox))
		}
	case Hangup:
		out := a.applyDeletes(nil)
		if a.hasRec {
			a.hasRec = false
			out = append(out, DiscardRecording{})
		}
		a.state = asDone
		return out
	}
	return nil
}

// ---- helpers ----

// interrupt stops the running prompt and timer.
func (a *Access) interrupt(out []Action) []Action {
	if a.playing {
		a.playing = false
		out = append(out, StopPlay{})
	}
	if a.timer {
		a.timer = false
		out = append(out, CancelTimer{})
	}
	return out
}

func (a *Access) play(out []Action, items ...Audio) []Action {
	a.playing = true
	return append(out, Play{Items: items})
}

func promptList(names ...string) []Audio {
	out := make([]Audio, len(names))
	for i, n := range names {
		out[i] = Prompt(n)
	}
	return out
}

// enter switches to a menu or entry state and plays prefix then its prompt.
func (a *Access) enter(out []Action, st accessState, prefix ...Audio) []Action {
	if st != a.state {
		a.timeouts = 0
	}
	a.state = st
	a.entry = ""
	items := append(prefix, a.menuPrompt()...)
	if len(items) == 0 {
		a.timer = true
		return append(out, StartTimer{Seconds: MenuTimeoutSeconds})
	}
	return a.play(out, items...)
}

func (a *Access) menuPrompt() []Audio {
	switch a.state {
	case asAskMailbox:
		return promptList(PromptLogin)
	case asAskPIN:
		return promptList(PromptPassword)
	case asChooseBox:
		items := promptList(PromptChooseMailbox)
		for i, g := range a.groups {
			items = append(items, Prompt(PromptPress), Prompt("digits/"+strconv.Itoa(i+2)), Prompt(PromptForGroup))
			items = append(items, digitPrompts(g)...)
		}
		return items
	case asMain:
		return promptList(PromptMainMenu)
	case asFolderMenu, asSaveFolder:
		return promptList(PromptFolderMenu)
	case asMsgMenu:
		return promptList(PromptMsgMenu)
	case asAdvanced:
		return promptList(PromptAdvanced)
	case asForwardEntry:
		return promptList(PromptForwardTo)
	case asOptions:
		return promptList(PromptOptions)
	case asTempMenu:
		return promptList(PromptTempMenu)
	case asRecReview:
		return []Audio{Recording, Prompt(PromptGreetingReview)}
	case asNewPIN1:
		return promptList(PromptNewPassword)
	case asNewPIN2:
		return promptList(PromptReenter)
	}
	return nil
}

func digitPrompts(number string) []Audio {
	var out []Audio
	for _, c := range number {
		switch {
		case c >= '0' && c <= '9':
			out = append(out, Prompt("digits/"+string(c)))
		case c == '*':
			out = append(out, Prompt("digits/star"))
		case c == '#':
			out = append(out, Prompt("digits/pound"))
		}
	}
	return out
}

// number says a count with cfg.SayNumber (digit by digit without one).
func (a *Access) number(n int) []Audio {
	if a.cfg.SayNumber == nil {
		return digitPrompts(strconv.Itoa(n))
	}
	return promptList(a.cfg.SayNumber(n)...)
}

func isEntryState(st accessState) bool {
	switch st {
	case asAskMailbox, asAskPIN, asForwardEntry, asNewPIN1, asNewPIN2:
		return true
	}
	return false
}

// goodbye applies pending deletions, says goodbye (after prefix) and hangs up.
func (a *Access) goodbye(out []Action, prefix ...Audio) []Action {
	out = a.applyDeletes(out)
	if a.hasRec {
		a.hasRec = false
		out = append(out, DiscardRecording{})
	}
	a.state = asGoodbye
	return a.play(out, append(prefix, Prompt(PromptGoodbye))...)
}

// ---- events ----

func (a *Access) start() []Action {
	a.login = a.cfg.Mailbox
	if a.login == "" {
		a.typedBox = true
		return a.enter(nil, asAskMailbox)
	}
	if a.cfg.SkipPIN {
		a.state = asAuth
		return []Action{Authenticate{Mailbox: a.login, NoPIN: true}}
	}
	return a.enter(nil, asAskPIN)
}

func (a *Access) playDone() []Action {
	if !a.playing {
		return nil
	}
	a.playing = false
	switch a.state {
	case asGoodbye:
		a.state = asDone
		return []Action{EndCall{}}
	case asEnvelope:
		a.state = asAudio
		return a.play(nil, MessageAudio(a.list[a.cur].ID))
	case asAudio:
		out := a.markRead(nil)
		return a.msgMenuOut(out)
	case asEnvOnly:
		return a.msgMenu()
	case asRecPrompt:
		a.state = asRecording
		return []Action{StartRecording{MaxSeconds: a.cfg.GreetingMaxSeconds, SilenceSeconds: a.cfg.GreetingSilenceSeconds}}
	case asAuth, asOpening, asForwarding, asRecording, asRecStopping, asIdle, asDone:
		return nil
	}
	// A menu or entry prompt ended: wait for keys.
	a.timer = true
	secs := MenuTimeoutSeconds
	if isEntryState(a.state) {
		secs = EntryTimeoutSeconds
	}
	return []Action{StartTimer{Seconds: secs}}
}

func (a *Access) timeout() []Action {
	if isEntryState(a.state) && a.entry != "" {
		return a.submit(nil)
	}
	a.timeouts++
	if a.timeouts > MenuMaxRepeats {
		return a.goodbye(nil)
	}
	// Replay the menu (keeping the timeout count).
	return a.play(nil, a.menuPrompt()...)
}

func (a *Access) digit(k rune) []Action {
	switch a.state {
	case asIdle, asAuth, asOpening, asForwarding, asGoodbye, asRecStopping:
		return nil
	case asAudio:
		switch k {
		case '*':
			return []Action{Seek{Seconds: -SeekSeconds}}
		case '#':
			return []Action{Seek{Seconds: SeekSeconds}}
		}
		out := a.interrupt(nil)
		out = a.markRead(out)
		return a.msgKey(out, k)
	case asEnvelope:
		switch k {
		case '*':
			return nil
		case '#':
			a.state = asAudio
			return a.play(a.interrupt(nil), MessageAudio(a.list[a.cur].ID))
		}
		return a.msgKey(a.interrupt(nil), k)
	case asRecPrompt:
		if k == '*' {
			return a.enter(a.interrupt(nil), asOptions)
		}
		return nil
	case asRecording:
		if k == '#' {
			a.state = asRecStopping
			return []Action{StopRecording{}}
		}
		return nil
	}
	out := a.interrupt(nil)
	a.timeouts = 0
	if isEntryState(a.state) {
		return a.entryKey(out, k)
	}
	switch a.state {
	case asChooseBox:
		if k == '1' {
			return a.openBox(out, a.login)
		}
		if i := int(k - '2'); k >= '2' && k <= '9' && i < len(a.groups) {
			return a.openBox(out, a.groups[i])
		}
		return a.enter(out, asChooseBox, Prompt(PromptInvalid))
	case asMain:
		return a.mainKey(out, k)
	case asMsgMenu:
		return a.msgKey(out, k)
	case asEnvOnly:
		return a.msgKey(out, k)
	case asFolderMenu:
		if f, ok := folderKey(k); ok {
			out = a.applyDeletes(out)
			a.setList(f)
			return a.enter(out, asMain, append([]Audio{Prompt(FolderPrompt(f)), Prompt(PromptYouHave)},
				a.counted(len(a.list))...)...)
		}
		if k == '*' {
			return a.enter(out, asMain)
		}
		return a.enter(out, asFolderMenu, Prompt(PromptInvalid))
	case asSaveFolder:
		if f, ok := folderKey(k); ok {
			m := a.list[a.cur]
			m.Folder = f
			out = append(out, MoveMessage{ID: m.ID, Folder: f})
			return a.msgMenuOut(out, Prompt(PromptSavedTo), Prompt(FolderPrompt(f)))
		}
		if k == '*' {
			return a.msgMenuOut(out)
		}
		return a.enter(out, asSaveFolder, Prompt(PromptInvalid))
	case asAdvanced:
		switch k {
		case '3':
			a.state = asEnvOnly
			return a.play(out, a.envelope(a.list[a.cur])...)
		case '*':
			return a.msgMenuOut(out)
		}
		return a.enter(out, asAdvanced, Prompt(PromptInvalid))
	case asOptions:
		switch k {
		case '1':
			return a.record(out, GreetingUnavailable)
		case '2':
			return a.record(out, GreetingBusy)
		case '3':
			return a.record(out, GreetingName)
		case '4':
			return a.enter(out, asTempMenu)
		case '5':
			a.pinErrors = 0
			return a.enter(out, asNewPIN1)
		case '*':
			return a.enter(out, asMain)
		}
		return a.enter(out, asOptions, Prompt(PromptInvalid))
	case asTempMenu:
		switch k {
		case '1':
			return a.record(out, GreetingTemporary)
		case '2':
			out = append(out, DeleteGreeting{Kind: GreetingTemporary})
			return a.enter(out, asOptions, Prompt(PromptTempRemoved))
		case '*':
			return a.enter(out, asOptions)
		}
		return a.enter(out, asTempMenu, Prompt(PromptInvalid))
	case asRecReview:
		switch k {
		case '1':
			a.hasRec = false
			out = append(out, SaveGreeting{Kind: a.recKind})
			return a.enter(out, asOptions, Prompt(PromptGreetingSaved))
		case '2':
			return a.play(out, a.menuPrompt()...)
		case '3':
			a.hasRec = false
			out = append(out, DiscardRecording{})
			return a.record(out, a.recKind)
		case '*':
			a.hasRec = false
			out = append(out, DiscardRecording{})
			return a.enter(out, asOptions)
		}
		return a.play(out, Prompt(PromptInvalid), Prompt(PromptGreetingReview))
	}
	return out
}

func folderKey(k rune) (string, bool) {
	if k >= '0' && k <= '4' {
		return accessFolders[k-'0'], true
	}
	return "", false
}

// entryKey collects digits of a mailbox, PIN or forward number.
func (a *Access) entryKey(out []Action, k rune) []Action {
	switch {
	case k == '#':
		return a.submit(out)
	case k == '*':
		if a.state == asForwardEntry {
			return a.msgMenuOut(out)
		}
		if a.state == asNewPIN1 || a.state == asNewPIN2 {
			return a.enter(out, asOptions)
		}
		return a.enter(out, a.state) // start over
	case k >= '0' && k <= '9':
		if len(a.entry) >= maxEntryLen {
			return a.submit(out)
		}
		a.entry += string(k)
	}
	a.timer = true
	return append(out, StartTimer{Seconds: EntryTimeoutSeconds})
}

// submit ends an entry.
func (a *Access) submit(out []Action) []Action {
	v := a.entry
	a.entry = ""
	switch a.state {
	case asAskMailbox:
		if v == "" {
			return a.enter(out, asAskMailbox)
		}
		a.login = v
		return a.enter(out, asAskPIN)
	case asAskPIN:
		a.state = asAuth
		return append(out, Authenticate{Mailbox: a.login, PIN: v})
	case asForwardEntry:
		if v == "" {
			return a.msgMenuOut(out, Prompt(PromptInvalid))
		}
		a.state = asForwarding
		return append(out, Forward{ID: a.list[a.cur].ID, To: v})
	case asNewPIN1:
		if !validPIN(v) {
			return a.pinRetry(out, Prompt(PromptPasswordLength))
		}
		a.newPIN = v
		return a.enter(out, asNewPIN2)
	case asNewPIN2:
		if v != a.newPIN {
			a.newPIN = ""
			return a.pinRetry(out, Prompt(PromptMismatch))
		}
		out = append(out, ChangePIN{PIN: v})
		a.newPIN = ""
		return a.enter(out, asOptions, Prompt(PromptPassChanged))
	}
	return out
}

func (a *Access) pinRetry(out []Action, why Audio) []Action {
	a.pinErrors++
	if a.pinErrors >= 3 {
		return a.enter(out, asOptions, why)
	}
	a.state = asNewPIN1
	a.timeouts = 0
	return a.enter(out, asNewPIN1, why)
}

func validPIN(p string) bool {
	if len(p) < PINMinLen || len(p) > PINMaxLen {
		return false
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (a *Access) loginResult(ev LoginResult) []Action {
	switch ev.Status {
	case LoginOK:
		a.loggedIn = true
		a.groups = ev.Groups
		if len(a.groups) > MaxGroups {
			a.groups = a.groups[:MaxGroups]
		}
		if len(a.groups) > 0 {
			return a.enter(nil, asChooseBox)
		}
		return a.openBox(nil, a.login)
	case LoginLocked:
		return a.goodbye(nil, Prompt(PromptLocked))
	}
	a.attempts++
	if a.attempts >= a.cfg.MaxAttempts {
		return a.goodbye(nil, Prompt(PromptIncorrect))
	}
	if a.typedBox {
		return a.enter(nil, asAskMailbox, Prompt(PromptIncorrect))
	}
	return a.enter(nil, asAskPIN, Prompt(PromptIncorrect))
}

func (a *Access) openBox(out []Action, mb string) []Action {
	a.open = mb
	a.state = asOpening
	return append(out, OpenMailbox{Mailbox: mb})
}

func (a *Access) opened(ev MailboxOpened) []Action {
	a.msgs = make([]*accessMsg, len(ev.Messages))
	for i := range ev.Messages {
		a.msgs[i] = &accessMsg{MessageInfo: ev.Messages[i]}
	}
	a.setList("")
	return a.enter(nil, asMain, a.summary()...)
}

// setList makes the play list of folder ("" = New then Old), urgent first.
func (a *Access) setList(folder string) {
	a.folder = folder
	a.cur = -1
	a.list = a.list[:0:0]
	folders := []string{folder}
	if folder == "" {
		folders = []string{"new", "old"}
	}
	for _, f := range folders {
		for _, urgent := range []bool{true, false} {
			for _, m := range a.msgs {
				if m.Folder == f && m.Urgent == urgent {
					a.list = append(a.list, m)
				}
			}
		}
	}
}

// summary: "You have <u> urgent and <n> new and <o> old messages".
func (a *Access) summary() []Audio {
	var urgent, newN, old int
	for _, m := range a.msgs {
		switch {
		case m.Folder == "new" && !m.Read && m.Urgent:
			urgent++
		case m.Folder == "new" && !m.Read:
			newN++
		case m.Folder == "new" || m.Folder == "old":
			old++
		}
	}
	out := promptList(PromptYouHave)
	last := 0
	for _, p := range []struct {
		n    int
		word string
	}{{urgent, PromptUrgent}, {newN, PromptNew}, {old, PromptOld}} {
		if p.n == 0 {
			continue
		}
		if last > 0 {
			out = append(out, Prompt(PromptAnd))
		}
		out = append(out, a.number(p.n)...)
		out = append(out, Prompt(p.word))
		last = p.n
	}
	switch last {
	case 0:
		return append(out, Prompt(PromptNo), Prompt(PromptMessages))
	case 1:
		return append(out, Prompt(PromptMessage))
	}
	return append(out, Prompt(PromptMessages))
}

func (a *Access) counted(n int) []Audio {
	switch n {
	case 0:
		return promptList(PromptNo, PromptMessages)
	case 1:
		return append(a.number(1), Prompt(PromptMessage))
	}
	return append(a.number(n), Prompt(PromptMessages))
}

func (a *Access) mainKey(out []Action, k rune) []Action {
	switch k {
	case '1':
		return a.playMsg(out, 0)
	case '2':
		return a.enter(out, asFolderMenu)
	case '3':
		if a.cur < 0 {
			return a.enter(out, asMain, Prompt(PromptInvalid))
		}
		return a.enter(out, asAdvanced)
	case '0':
		return a.enter(out, asOptions)
	case '*':
		return a.enter(out, asMain, Prompt(PromptHelp))
	case '#':
		return a.goodbye(out)
	}
	return a.enter(out, asMain, Prompt(PromptInvalid))
}

// msgKey handles the per-message keys (docs/ivr.md) at the message menu.
func (a *Access) msgKey(out []Action, k rune) []Action {
	m := a.list[a.cur]
	switch k {
	case '1':
		return a.playMsg(out, 0)
	case '2':
		return a.enter(out, asFolderMenu)
	case '3':
		return a.enter(out, asAdvanced)
	case '4':
		if a.cur == 0 {
			return a.msgMenuOut(out, Prompt(PromptNoMore))
		}
		return a.playMsg(out, a.cur-1)
	case '5':
		return a.playMsg(out, a.cur)
	case '6':
		if a.cur+1 >= len(a.list) {
			return a.enter(out, asMain, Prompt(PromptNoMore))
		}
		return a.playMsg(out, a.cur+1)
	case '7':
		m.deleted = !m.deleted
		if m.deleted {
			return a.msgMenuOut(out, Prompt(PromptDeleted))
		}
		return a.msgMenuOut(out, Prompt(PromptUndeleted))
	case '8':
		return a.enter(out, asForwardEntry)
	case '9':
		return a.enter(out, asSaveFolder)
	case '0':
		return a.enter(out, asOptions)
	case '*':
		return a.msgMenuOut(out, Prompt(PromptHelp))
	case '#':
		return a.goodbye(out)
	}
	return a.msgMenuOut(out, Prompt(PromptInvalid))
}

func (a *Access) msgMenu(prefix ...Audio) []Action { return a.msgMenuOut(nil, prefix...) }

func (a *Access) msgMenuOut(out []Action, prefix ...Audio) []Action {
	return a.enter(out, asMsgMenu, prefix...)
}

// playMsg announces message i of the play list, then plays it.
func (a *Access) playMsg(out []Action, i int) []Action {
	if i >= len(a.list) {
		return a.enter(out, asMain, append(promptList(PromptYouHave), a.counted(0)...)...)
	}
	a.cur = i
	a.state = asEnvelope
	a.timeouts = 0
	var items []Audio
	switch {
	case i == 0:
		items = promptList(PromptFirst)
	case i == len(a.list)-1:
		items = promptList(PromptLast)
	}
	items = append(items, a.envelope(a.list[i])...)
	return a.play(out, items...)
}

// envelope: [urgent] received <when> from <number>.
func (a *Access) envelope(m *accessMsg) []Audio {
	var out []Audio
	if m.Urgent {
		out = append(out, Prompt(PromptEnvUrgent))
	}
	if len(m.When) > 0 {
		out = append(out, Prompt(PromptReceived))
		for _, w := range m.When {
			out = append(out, Prompt(w))
		}
	}
	out = append(out, Prompt(PromptFrom))
	if d := digitPrompts(m.From); len(d) > 0 {
		out = append(out, d...)
	} else {
		out = append(out, Prompt(PromptUnknownCaller))
	}
	return out
}

func (a *Access) markRead(out []Action) []Action {
	m := a.list[a.cur]
	if m.Read && m.Folder != "new" {
		return out
	}
	if m.Folder == "new" {
		m.Folder = "old"
	}
	m.Read = true
	return append(out, MarkRead{ID: m.ID})
}

// applyDeletes deletes the messages marked in the current play list.
func (a *Access) applyDeletes(out []Action) []Action {
	var ids []string
	keep := a.msgs[:0:0]
	for _, m := range a.msgs {
		if m.deleted {
			ids = append(ids, m.ID)
			continue
		}
		keep = append(keep, m)
	}
	if len(ids) == 0 {
		return out
	}
	a.msgs = keep
	a.list = nil
	a.cur = -1
	return append(out, DeleteMessages{IDs: ids})
}

func (a *Access) record(out []Action, kind string) []Action {
	a.recKind = kind
	a.state = asRecPrompt
	a.timeouts = 0
	return a.play(out, Prompt(PromptRecordAfter), Beep)
}

func (a *Access) recordDone(ev RecordDone) []Action {
	if ev.Reason == RecordHangup {
		a.state = asDone
		return []Action{DiscardRecording{}}
	}
	if ev.DurationMS <= 0 {
		return a.enter([]Action{DiscardRecording{}}, asOptions, Prompt(PromptTooShort))
	}
	a.hasRec = true
	var prefix []Audio
	if ev.Reason == RecordMax {
		prefix = promptList(PromptMaxLength)
	}
	return a.enter(nil, asRecReview, prefix...)
}
