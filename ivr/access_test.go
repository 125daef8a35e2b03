package ivr

// This file is over 600 lines on purpose: a table per menu of the access
// IVR, each key of docs/ivr.md fed as an event; they share one fixture.

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/vmserver/voicemail/prompts"
)

// AP is P for the access machine: "msg:<id>" is a message's audio.
func AP(names ...string) Play {
	items := make([]Audio, len(names))
	for i, n := range names {
		if id, ok := strings.CutPrefix(n, "msg:"); ok {
			items[i] = MessageAudio(id)
			continue
		}
		items[i] = P(n).Items[0]
	}
	return Play{Items: items}
}

var (
	menuTmr  = StartTimer{Seconds: MenuTimeoutSeconds}
	entryTmr = StartTimer{Seconds: EntryTimeoutSeconds}
	stop     = StopPlay{}
	cancelT  = CancelTimer{}
	pd       = PlayDone{}
	to       = Timeout{}
)

func accessCfg() AccessConfig {
	return AccessConfig{MaxAttempts: 3, GreetingMaxSeconds: 60, GreetingSilenceSeconds: 5, SayNumber: prompts.Number}
}

// The fixture mailbox: the initial play list is m1 (urgent new), m2 (new), m3 (old).
func fixture() []MessageInfo {
	when := []string{"today", "vm-at", "num/3", "time/pm"}
	return []MessageInfo{
		{ID: "m2", Folder: "new", From: "", When: when},
		{ID: "m1", Folder: "new", Urgent: true, From: "2001", When: when},
		{ID: "m3", Folder: "old", Read: true, From: "2003", When: when},
		{ID: "m4", Folder: "work", Read: true, From: "2004", When: when},
	}
}

var (
	env1 = []string{"vm-envelope-urgent", "vm-received", "today", "vm-at", "num/3", "time/pm", "vm-from", "digits/2", "digits/0", "digits/0", "digits/1"}
	env2 = []string{"vm-received", "today", "vm-at", "num/3", "time/pm", "vm-from", "vm-unknown-caller"}
	env3 = []string{"vm-received", "today", "vm-at", "num/3", "time/pm", "vm-from", "digits/2", "digits/0", "digits/0", "digits/3"}
	env4 = []string{"vm-received", "today", "vm-at", "num/3", "time/pm", "vm-from", "digits/2", "digits/0", "digits/0", "digits/4"}

	summaryFixture = []string{"vm-youhave", "num/1", "vm-urgent", "vm-and", "num/1", "vm-new", "vm-and", "num/1", "vm-old", "vm-message"}
	mainMenu       = AP(append(append([]string{}, summaryFixture...), "vm-main-menu")...)
)

func cat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func s(names ...string) []string { return names }

type astep struct {
	ev   Event
	want []Action
}

func runAccess(t *testing.T, m *Access, steps []astep) {
	t.Helper()
	for i, st := range steps {
		got := m.Handle(st.ev)
		if !reflect.DeepEqual(got, st.want) {
			t.Fatalf("step %d: %v in state %s\n got: %v\nwant: %v", i, st.ev, m.State(), got, st.want)
		}
	}
}

func digits(keys string, first []Action) []astep {
	var out []astep
	for i, k := range keys {
		if i == 0 {
			out = append(out, astep{D(k), first})
			continue
		}
		out = append(out, astep{D(k), A(cancelT, entryTmr)})
	}
	return out
}

// loggedIn returns a machine at the main menu of the fixture mailbox
// (caller-ID login), with the menu prompt still playing.
func loggedIn(t *testing.T) *Access {
	t.Helper()
	m := NewAccess(withAccess(func(c *AccessConfig) { c.Mailbox = "1001" }))
	steps := []astep{
		{Start{}, A(AP("vm-password"))},
		{pd, A(entryTmr)},
	}
	steps = append(steps, digits("1234", A(cancelT, entryTmr))...)
	steps = append(steps,
		astep{D('#'), A(cancelT, Authenticate{Mailbox: "1001", PIN: "1234"})},
		astep{LoginResult{Status: LoginOK}, A(OpenMailbox{Mailbox: "1001"})},
		astep{MailboxOpened{Messages: fixture()}, A(mainMenu)},
	)
	runAccess(t, m, steps)
	return m
}

func withAccess(f func(*AccessConfig)) AccessConfig {
	c := accessCfg()
	f(&c)
	return c
}

func TestAccessLoginTypedMailbox(t *testing.T) {
	m := NewAccess(accessCfg())
	steps := []astep{
		{Start{}, A(AP("vm-login"))},
		{D('1'), A(stop, entryTmr)}, // a key interrupts the prompt
		{D('0'), A(cancelT, entryTmr)},
		{D('0'), A(cancelT, entryTmr)},
		{D('1'), A(cancelT, entryTmr)},
		{D('#'), A(cancelT, AP("vm-password"))},
		{pd, A(entryTmr)},
		{D('4'), A(cancelT, entryTmr)},
		{D('3'), A(cancelT, entryTmr)},
		{D('2'), A(cancelT, entryTmr)},
		{D('1'), A(cancelT, entryTmr)},
		{D('#'), A(cancelT, Authenticate{Mailbox: "1001", PIN: "4321"})},
		{D('5'), nil}, // keys while the login is checked are ignored
		{pd, nil},
		{LoginResult{Status: LoginOK}, A(OpenMailbox{Mailbox: "1001"})},
		{MailboxOpened{}, A(AP("vm-youhave", "vm-no", "vm-messages", "vm-main-menu"))},
	}
	runAccess(t, m, steps)
	if m.LoginMailbox() != "1001" || m.Mailbox() != "1001" {
		t.Fatalf("LoginMailbox %q Mailbox %q", m.LoginMailbox(), m.Mailbox())
	}
}

func TestAccessLoginFailuresTyped(t *testing.T) {
	m := NewAccess(accessCfg())
	fail := func(attempt int) []astep {
		st := []astep{}
		st = append(st, digits("1002", A(stop, entryTmr))...)
		st = append(st, astep{D('#'), A(cancelT, AP("vm-password"))})
		st = append(st, digits("9", A(stop, entryTmr))...)
		st = append(st, astep{D('#'), A(cancelT, Authenticate{Mailbox: "1002", PIN: "9"})})
		if attempt < 3 {
			// a typed mailbox is asked again
			st = append(st, astep{LoginResult{Status: LoginFailed}, A(AP("vm-incorrect", "vm-login"))})
		} else {
			st = append(st, astep{LoginResult{Status: LoginFailed}, A(AP("vm-incorrect", "vm-goodbye"))})
		}
		return st
	}
	steps := []astep{{Start{}, A(AP("vm-login"))}}
	steps = append(steps, fail(1)...)
	steps = append(steps, fail(2)...)
	steps = append(steps, fail(3)...)
	steps = append(steps, astep{D('1'), nil}, astep{pd, A(EndCall{})})
	runAccess(t, m, steps)
	if !m.Done() || m.LoginMailbox() != "" {
		t.Fatalf("done %v login %q", m.Done(), m.LoginMailbox())
	}
}

func TestAccessLoginFailuresCallerID(t *testing.T) {
	m := NewAccess(withAccess(func(c *AccessConfig) { c.Mailbox = "1001"; c.MaxAttempts = 2 }))
	steps := []astep{
		{Start{}, A(AP("vm-password"))},
		{D('#'), A(stop, Authenticate{Mailbox: "1001", PIN: ""})},
		{LoginResult{Status: LoginFailed}, A(AP("vm-incorrect", "vm-password"))}, // only the PIN again
		{D('1'), A(stop, entryTmr)},
		{D('#'), A(cancelT, Authenticate{Mailbox: "1001", PIN: "1"})},
		{LoginResult{Status: LoginFailed}, A(AP("vm-incorrect", "vm-goodbye"))}, // login.max_attempts 2
		{pd, A(EndCall{})},
		{D('1'), nil},
	}
	runAccess(t, m, steps)
}

func TestAccessLocked(t *testing.T) {
	m := NewAccess(withAccess(func(c *AccessConfig) { c.Mailbox = "1001" }))
	runAccess(t, m, []astep{
		{Start{}, A(AP("vm-password"))},
		{D('1'), A(stop, entryTmr)},
		{D('#'), A(cancelT, Authenticate{Mailbox: "1001", PIN: "1"})},
		{LoginResult{Status: LoginLocked}, A(AP("vm-locked", "vm-goodbye"))},
		{pd, A(EndCall{})},
	})
	if !m.Done() {
		t.Fatal("not done")
	}
}

func TestAccessSkipPIN(t *testing.T) {
	m := NewAccess(withAccess(func(c *AccessConfig) { c.Mailbox = "1001"; c.SkipPIN = true }))
	runAccess(t, m, []astep{
		{Start{}, A(Authenticate{Mailbox: "1001", NoPIN: true})},
		{LoginResult{Status: LoginOK}, A(OpenMailbox{Mailbox: "1001"})},
	})
}

func TestAccessEntryTimeoutsAndStar(t *testing.T) {
	m := NewAccess(accessCfg())
	runAccess(t, m, []astep{
		{Start{}, A(AP("vm-login"))},
		{pd, A(entryTmr)},
		{to, A(AP("vm-login"))}, // nothing typed: the prompt again
		{pd, A(entryTmr)},
		{D('1'), A(cancelT, entryTmr)},
		{D('*'), A(cancelT, AP("vm-login"))}, // '*' starts the entry over
		{D('7'), A(stop, entryTmr)},
		{to, A(AP("vm-password"))}, // something typed: the timeout submits it
		{pd, A(entryTmr)},
		{D('5'), A(cancelT, entryTmr)},
		{to, A(Authenticate{Mailbox: "7", PIN: "5"})},
	})
	m = NewAccess(accessCfg())
	runAccess(t, m, []astep{
		{Start{}, A(AP("vm-login"))},
		{pd, A(entryTmr)},
		{to, A(AP("vm-login"))},
		{pd, A(entryTmr)},
		{to, A(AP("vm-login"))},
		{pd, A(entryTmr)},
		{to, A(AP("vm-goodbye"))},
		{pd, A(EndCall{})},
	})
	// A stale timeout (none pending) means nothing.
	m = NewAccess(accessCfg())
	runAccess(t, m, []astep{{Start{}, A(AP("vm-login"))}, {to, nil}})
}

func TestAccessGroupChoice(t *testing.T) {
	m := NewAccess(withAccess(func(c *AccessConfig) { c.Mailbox = "1001"; c.SkipPIN = true }))
	choose := AP("vm-choose-mailbox",
		"vm-press", "digits/2", "vm-for-group", "digits/8", "digits/0", "digits/0", "digits/0",
		"vm-press", "digits/3", "vm-for-group", "digits/8", "digits/1", "digits/0", "digits/0")
	runAccess(t, m, []astep{
		{Start{}, A(Authenticate{Mailbox: "1001", NoPIN: true})},
		{LoginResult{Status: LoginOK, Groups: []string{"8000", "8100"}}, A(choose)},
		{pd, A(menuTmr)},
		{to, A(choose)},
		{D('4'), A(stop, AP(append([]string{"vm-invalid"}, namesOf(choose)...)...))}, // no third group
		{D('3'), A(stop, OpenMailbox{Mailbox: "8100"})},
		{MailboxOpened{}, A(AP("vm-youhave", "vm-no", "vm-messages", "vm-main-menu"))},
	})
	if m.Mailbox() != "8100" || m.LoginMailbox() != "1001" {
		t.Fatalf("mailbox %q login %q", m.Mailbox(), m.LoginMailbox())
	}
	for key, want := range map[rune]string{'1': "1001", '2': "8000"} {
		m := NewAccess(withAccess(func(c *AccessConfig) { c.Mailbox = "1001"; c.SkipPIN = true }))
		m.Handle(Start{})
		m.Handle(LoginResult{Status: LoginOK, Groups: []string{"8000", "8100"}})
		if got := m.Handle(D(key)); !reflect.DeepEqual(got, A(stop, OpenMailbox{Mailbox: want})) {
			t.Errorf("key %c: %v", key, got)
		}
	}
	// More than 8 groups: keys 2…9 only.
	m = NewAccess(withAccess(func(c *AccessConfig) { c.Mailbox = "1001"; c.SkipPIN = true }))
	m.Handle(Start{})
	groups := []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}
	m.Handle(LoginResult{Status: LoginOK, Groups: groups})
	if got := m.Handle(D('9')); !reflect.DeepEqual(got, A(stop, OpenMailbox{Mailbox: "8"})) {
		t.Errorf("key 9: %v", got)
	}
}

func namesOf(p Play) []string {
	var out []string
	for _, a := range p.Items {
		out = append(out, a.Name)
	}
	return out
}

func TestAccessSummary(t *testing.T) {
	for _, tc := range []struct {
		msgs []MessageInfo
		want []string
	}{
		{nil, s("vm-youhave", "vm-no", "vm-messages")},
		{[]MessageInfo{{ID: "a", Folder: "old"}, {ID: "b", Folder: "old"}}, s("vm-youhave", "num/2", "vm-old", "vm-messages")},
		{[]MessageInfo{{ID: "a", Folder: "new"}}, s("vm-youhave", "num/1", "vm-new", "vm-message")},
		{[]MessageInfo{{ID: "a", Folder: "new", Urgent: true}, {ID: "b", Folder: "new", Urgent: true}, {ID: "c", Folder: "new", Read: true}},
			s("vm-youhave", "num/2", "vm-urgent", "vm-and", "num/1", "vm-old", "vm-message")},
		{fixture(), summaryFixture},
		{[]MessageInfo{{ID: "w", Folder: "work"}}, s("vm-youhave", "vm-no", "vm-messages")},
	} {
		m := NewAccess(withAccess(func(c *AccessConfig) { c.Mailbox = "1"; c.SkipPIN = true }))
		m.Handle(Start{})
		m.Handle(LoginResult{Status: LoginOK})
		got := m.Handle(MailboxOpened{Messages: tc.msgs})
		want := A(AP(append(tc.want, "vm-main-menu")...))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v:\n got %v\nwant %v", tc.msgs, got, want)
		}
	}
	// Without SayNumber counts are said digit by digit.
	m := NewAccess(AccessConfig{Mailbox: "1", SkipPIN: true})
	m.Handle(Start{})
	m.Handle(LoginResult{Status: LoginOK})
	msgs := make([]MessageInfo, 12)
	for i := range msgs {
		msgs[i] = MessageInfo{ID: fmt.Sprint(i), Folder: "old"}
	}
	got := m.Handle(MailboxOpened{Messages: msgs})
	if want := A(AP("vm-youhave", "digits/1", "digits/2", "vm-old", "vm-messages", "vm-main-menu")); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
}

func TestAccessMainMenu(t *testing.T) {
	for _, tc := range []struct {
		key  rune
		want []Action
	}{
		{'1', A(stop, AP(cat(s("vm-first"), env1)...))},
		{'2', A(stop, AP("vm-folder-menu"))},
		{'3', A(stop, AP("vm-invalid", "vm-main-menu"))}, // no current message yet
		{'0', A(stop, AP("vm-options"))},
		{'*', A(stop, AP("vm-help", "vm-main-menu"))},
		{'#', A(stop, AP("vm-goodbye"))},
		{'5', A(stop, AP("vm-invalid", "vm-main-menu"))},
		{'A', A(stop, AP("vm-invalid", "vm-main-menu"))},
	} {
		m := loggedIn(t)
		if got := m.Handle(D(tc.key)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("key %c:\n got %v\nwant %v", tc.key, got, tc.want)
		}
	}
	// Timeouts repeat the menu, then goodbye.
	m := loggedIn(t)
	runAccess(t, m, []astep{
		{pd, A(menuTmr)},
		{to, A(AP("vm-main-menu"))},
		{pd, A(menuTmr)},
		{to, A(AP("vm-main-menu"))},
		{pd, A(menuTmr)},
		{to, A(AP("vm-goodbye"))},
		{pd, A(EndCall{})},
	})
	// A key resets the timeout count.
	m = loggedIn(t)
	runAccess(t, m, []astep{
		{pd, A(menuTmr)},
		{to, A(AP("vm-main-menu"))},
		{pd, A(menuTmr)},
		{to, A(AP("vm-main-menu"))},
		{D('9'), A(stop, AP("vm-invalid", "vm-main-menu"))},
		{pd, A(menuTmr)},
		{to, A(AP("vm-main-menu"))},
	})
}

// playFirst: from the main menu, '1', the envelope, then the audio of m1.
func playFirst(t *testing.T) *Access {
	m := loggedIn(t)
	runAccess(t, m, []astep{
		{D('1'), A(stop, AP(cat(s("vm-first"), env1)...))},
		{pd, A(AP("msg:m1"))},
	})
	return m
}

func TestAccessMessagePlayback(t *testing.T) {
	m := playFirst(t)
	runAccess(t, m, []astep{
		{D('*'), A(Seek{Seconds: -3})},
		{D('#'), A(Seek{Seconds: 3})},
		{D('#'), A(Seek{Seconds: 3})},
		{pd, A(MarkRead{ID: "m1"}, AP("vm-msg-menu"))}, // played: read, moved to Old
		{pd, A(menuTmr)},
		{D('6'), A(cancelT, AP(env2...))}, // a middle message has no announcement
		{D('#'), A(stop, AP("msg:m2"))},   // '#' during the envelope skips to the audio
		{D('6'), A(stop, MarkRead{ID: "m2"}, AP(cat(s("vm-last"), env3)...))},
		{pd, A(AP("msg:m3"))},
		{pd, A(AP("vm-msg-menu"))}, // m3 was read and in Old already: no MarkRead
		{D('6'), A(stop, AP("vm-nomore", "vm-main-menu"))},
		{D('1'), A(stop, AP(cat(s("vm-first"), env1)...))},
		{D('*'), nil}, // '*' during the envelope: nothing
		{D('4'), A(stop, AP("vm-nomore", "vm-msg-menu"))},
		{D('5'), A(stop, AP(cat(s("vm-first"), env1)...))},
		{D('6'), A(stop, AP(env2...))},
		{D('4'), A(stop, AP(cat(s("vm-first"), env1)...))},
	})
	// Marked read once: playing m1 again does not mark it again.
	runAccess(t, m, []astep{{pd, A(AP("msg:m1"))}, {pd, A(AP("vm-msg-menu"))}})
}

func TestAccessMessageMenuKeys(t *testing.T) {
	atMenu := func(t *testing.T) *Access {
		m := playFirst(t)
		runAccess(t, m, []astep{{pd, A(MarkRead{ID: "m1"}, AP("vm-msg-menu"))}})
		return m
	}
	for _, tc := range []struct {
		key  rune
		want []Action
	}{
		{'1', A(stop, AP(cat(s("vm-first"), env1)...))},
		{'2', A(stop, AP("vm-folder-menu"))},
		{'3', A(stop, AP("vm-advanced"))},
		{'4', A(stop, AP("vm-nomore", "vm-msg-menu"))},
		{'5', A(stop, AP(cat(s("vm-first"), env1)...))},
		{'6', A(stop, AP(env2...))},
		{'7', A(stop, AP("vm-deleted", "vm-msg-menu"))},
		{'8', A(stop, AP("vm-forward-to"))},
		{'9', A(stop, AP("vm-folder-menu"))},
		{'0', A(stop, AP("vm-options"))},
		{'*', A(stop, AP("vm-help", "vm-msg-menu"))},
		{'#', A(stop, AP("vm-goodbye"))},
		{'B', A(stop, AP("vm-invalid", "vm-msg-menu"))},
	} {
		m := atMenu(t)
		if got := m.Handle(D(tc.key)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("key %c:\n got %v\nwant %v", tc.key, got, tc.want)
		}
	}
	// A key during the audio interrupts it, marks it read and counts.
	m := playFirst(t)
	runAccess(t, m, []astep{{D('7'), A(stop, MarkRead{ID: "m1"}, AP("vm-deleted", "vm-msg-menu"))}})
	// Message menu timeouts: repeat, then goodbye (deletions applied).
	runAccess(t, m, []astep{
		{pd, A(menuTmr)},
		{to, A(AP("vm-msg-menu"))},
		{pd, A(menuTmr)},
		{to, A(AP("vm-msg-menu"))},
		{pd, A(menuTmr)},
		{to, A(DeleteMessages{IDs: []string{"m1"}}, AP("vm-goodbye"))},
		{pd, A(EndCall{})},
	})
}

func TestAccessDeleteUndelete(t *testing.T) {
	m := playFirst(t)
	runAccess(t, m, []astep{
		{pd, A(MarkRead{ID: "m1"}, AP("vm-msg-menu"))},
		{D('7'), A(stop, AP("vm-deleted", "vm-msg-menu"))},
		{D('7'), A(stop, AP("vm-undeleted", "vm-msg-menu"))},
		{D('7'), A(stop, AP("vm-deleted", "vm-msg-menu"))},
		{D('6'), A(stop, AP(env2...))},
		{D('7'), A(stop, AP("vm-deleted", "vm-msg-menu"))},
		// Leaving the folder applies the deletions.
		{D('2'), A(stop, AP("vm-folder-menu"))},
		{D('1'), A(stop, DeleteMessages{IDs: []string{"m2", "m1"}}, AP("vm-folder-old", "vm-youhave", "num/1", "vm-message", "vm-main-menu"))},
		{D('1'), A(stop, AP(cat(s("vm-first"), env3)...))},
	})
	// Exit with '#' applies them.
	m = playFirst(t)
	runAccess(t, m, []astep{
		{D('7'), A(stop, MarkRead{ID: "m1"}, AP("vm-deleted", "vm-msg-menu"))},
		{D('#'), A(stop, DeleteMessages{IDs: []string{"m1"}}, AP("vm-goodbye"))},
		{pd, A(EndCall{})},
	})
	// So does hanging up; undeleted messages stay.
	m = playFirst(t)
	runAccess(t, m, []astep{
		{D('7'), A(stop, MarkRead{ID: "m1"}, AP("vm-deleted", "vm-msg-menu"))},
		{Hangup{}, A(DeleteMessages{IDs: []string{"m1"}})},
		{D('1'), nil},
	})
	m = playFirst(t)
	runAccess(t, m, []astep{
		{D('7'), A(stop, MarkRead{ID: "m1"}, AP("vm-deleted", "vm-msg-menu"))},
		{D('7'), A(stop, AP("vm-undeleted", "vm-msg-menu"))},
		{Hangup{}, nil},
	})
	if !m.Done() {
		t.Fatal("not done after hang-up")
	}
}

func TestAccessFolders(t *testing.T) {
	m := loggedIn(t)
	runAccess(t, m, []astep{
		{D('2'), A(stop, AP("vm-folder-menu"))},
		{pd, A(menuTmr)},
		{to, A(AP("vm-folder-menu"))},
		{D('7'), A(stop, AP("vm-invalid", "vm-folder-menu"))},
		{D('*'), A(stop, AP("vm-main-menu"))},
		{D('2'), A(stop, AP("vm-folder-menu"))},
		{D('2'), A(stop, AP("vm-folder-work", "vm-youhave", "num/1", "vm-message", "vm-main-menu"))},
		{D('1'), A(stop, AP(cat(s("vm-first"), env4)...))},
		{D('2'), A(stop, AP("vm-folder-menu"))},
		{D('3'), A(stop, AP("vm-folder-family", "vm-youhave", "vm-no", "vm-messages", "vm-main-menu"))},
		{D('1'), A(stop, AP("vm-youhave", "vm-no", "vm-messages", "vm-main-menu"))},
		{D('2'), A(stop, AP("vm-folder-menu"))},
		{D('0'), A(stop, AP("vm-folder-new", "vm-youhave", "num/2", "vm-messages", "vm-main-menu"))},
		{D('1'), A(stop, AP(cat(s("vm-first"), env1)...))}, // urgent first
		{D('6'), A(stop, AP(cat(s("vm-last"), env2)...))},
	})
}

func TestAccessSaveToFolder(t *testing.T) {
	m := playFirst(t)
	runAccess(t, m, []astep{
		{pd, A(MarkRead{ID: "m1"}, AP("vm-msg-menu"))},
		{D('9'), A(stop, AP("vm-folder-menu"))},
		{D('8'), A(stop, AP("vm-invalid", "vm-folder-menu"))},
		{D('*'), A(stop, AP("vm-msg-menu"))},
		{D('9'), A(stop, AP("vm-folder-menu"))},
		{D('4'), A(stop, MoveMessage{ID: "m1", Folder: "friends"}, AP("vm-saved-to", "vm-folder-friends", "vm-msg-menu"))},
		{D('2'), A(stop, AP("vm-folder-menu"))},
		{D('4'), A(stop, AP("vm-folder-friends", "vm-youhave", "num/1", "vm-message", "vm-main-menu"))},
	})
}

func TestAccessForward(t *testing.T) {
	m := playFirst(t)
	runAccess(t, m, []astep{
		{pd, A(MarkRead{ID: "m1"}, AP("vm-msg-menu"))},
		{D('8'), A(stop, AP("vm-forward-to"))},
		{D('1'), A(stop, entryTmr)},
		{D('0'), A(cancelT, entryTmr)},
		{D('0'), A(cancelT, entryTmr)},
		{D('2'), A(cancelT, entryTmr)},
		{D('#'), A(cancelT, Forward{ID: "m1", To: "1002"})},
		{D('5'), nil},
		{ForwardResult{OK: true}, A(AP("vm-forwarded", "vm-msg-menu"))},
		{D('8'), A(stop, AP("vm-forward-to"))},
		{D('9'), A(stop, entryTmr)},
		{D('#'), A(cancelT, Forward{ID: "m1", To: "9"})},
		{ForwardResult{OK: false}, A(AP("vm-no-such-mailbox", "vm-msg-menu"))},
		{D('8'), A(stop, AP("vm-forward-to"))},
		{D('#'), A(stop, AP("vm-invalid", "vm-msg-menu"))}, // nothing typed
		{D('8'), A(stop, AP("vm-forward-to"))},
		{D('1'), A(stop, entryTmr)},
		{D('*'), A(cancelT, AP("vm-msg-menu"))}, // '*' cancels
	})
}

func TestAccessAdvancedEnvelope(t *testing.T) {
	m := playFirst(t)
	runAccess(t, m, []astep{
		{pd, A(MarkRead{ID: "m1"}, AP("vm-msg-menu"))},
		{D('3'), A(stop, AP("vm-advanced"))},
		{D('1'), A(stop, AP("vm-invalid", "vm-advanced"))},
		{D('3'), A(stop, AP(env1...))},
		{pd, A(AP("vm-msg-menu"))},
		{D('3'), A(stop, AP("vm-advanced"))},
		{D('*'), A(stop, AP("vm-msg-menu"))},
		{D('2'), A(stop, AP("vm-folder-menu"))},
		{D('*'), A(stop, AP("vm-main-menu"))},
		{D('3'), A(stop, AP("vm-advanced"))}, // a current message now exists
		{pd, A(menuTmr)},
		{D('3'), A(cancelT, AP(env1...))},
		{D('6'), A(stop, AP(env2...))}, // keys during the envelope act as message keys
	})
}

func toOptions(t *testing.T) *Access {
	m := loggedIn(t)
	runAccess(t, m, []astep{{D('0'), A(stop, AP("vm-options"))}})
	return m
}

func TestAccessRecordGreeting(t *testing.T) {
	rec := StartRecording{MaxSeconds: 60, SilenceSeconds: 5}
	for key, kind := range map[rune]string{'1': "unavailable", '2': "busy", '3': "name"} {
		m := toOptions(t)
		runAccess(t, m, []astep{
			{D(key), A(stop, AP("vm-record-after-tone", "<beep>"))},
			{D('5'), nil},
			{pd, A(rec)},
			{D('1'), nil}, // only '#' ends it
			{D('#'), A(StopRecording{})},
			{D('#'), nil},
			{RD(RecordDigit, 3000), A(AP("<recording>", "vm-greeting-review"))},
			{D('2'), A(stop, AP("<recording>", "vm-greeting-review"))},
			{D('7'), A(stop, AP("vm-invalid", "vm-greeting-review"))},
			{D('3'), A(stop, DiscardRecording{}, AP("vm-record-after-tone", "<beep>"))},
			{pd, A(rec)},
			{RD(RecordSilence, 2000), A(AP("<recording>", "vm-greeting-review"))},
			{pd, A(menuTmr)},
			{D('1'), A(cancelT, SaveGreeting{Kind: kind}, AP("vm-greeting-saved", "vm-options"))},
			{D('*'), A(stop, AP("vm-main-menu"))},
		})
	}
	// The limit says so; '*' at review discards; an empty recording is refused.
	m := toOptions(t)
	runAccess(t, m, []astep{
		{D('1'), A(stop, AP("vm-record-after-tone", "<beep>"))},
		{pd, A(rec)},
		{RD(RecordMax, 60000), A(AP("vm-max-length", "<recording>", "vm-greeting-review"))},
		{D('*'), A(stop, DiscardRecording{}, AP("vm-options"))},
		{D('2'), A(stop, AP("vm-record-after-tone", "<beep>"))},
		{pd, A(rec)},
		{D('#'), A(StopRecording{})},
		{RD(RecordDigit, 0), A(DiscardRecording{}, AP("vm-too-short", "vm-options"))},
		{D('3'), A(stop, AP("vm-record-after-tone", "<beep>"))},
		{D('*'), A(stop, AP("vm-options"))}, // '*' before the beep cancels
	})
	// Review timeouts discard the recording at the goodbye; so does hang-up.
	m = toOptions(t)
	runAccess(t, m, []astep{
		{D('1'), A(stop, AP("vm-record-after-tone", "<beep>"))},
		{pd, A(rec)},
		{RD(RecordSilence, 1000), A(AP("<recording>", "vm-greeting-review"))},
		{pd, A(menuTmr)},
		{to, A(AP("<recording>", "vm-greeting-review"))},
		{pd, A(menuTmr)},
		{to, A(AP("<recording>", "vm-greeting-review"))},
		{pd, A(menuTmr)},
		{to, A(DiscardRecording{}, AP("vm-goodbye"))},
	})
	m = toOptions(t)
	runAccess(t, m, []astep{
		{D('1'), A(stop, AP("vm-record-after-tone", "<beep>"))},
		{pd, A(rec)},
		{RD(RecordSilence, 1000), A(AP("<recording>", "vm-greeting-review"))},
		{Hangup{}, A(DiscardRecording{})},
	})
	// Hang-up while recording: the driver reports RecordHangup; nothing is kept.
	m = toOptions(t)
	runAccess(t, m, []astep{
		{D('1'), A(stop, AP("vm-record-after-tone", "<beep>"))},
		{pd, A(rec)},
		{Hangup{}, nil},
		{RD(RecordHangup, 1000), nil},
	})
	if !m.Done() {
		t.Fatal("not done")
	}
}

func TestAccessTemporaryGreeting(t *testing.T) {
	m := toOptions(t)
	runAccess(t, m, []astep{
		{D('4'), A(stop, AP("vm-temp-menu"))},
		{D('3'), A(stop, AP("vm-invalid", "vm-temp-menu"))},
		{D('2'), A(stop, DeleteGreeting{Kind: "temporary"}, AP("vm-temp-removed", "vm-options"))},
		{D('4'), A(stop, AP("vm-temp-menu"))},
		{D('*'), A(stop, AP("vm-options"))},
		{D('4'), A(stop, AP("vm-temp-menu"))},
		{D('1'), A(stop, AP("vm-record-after-tone", "<beep>"))},
		{pd, A(StartRecording{MaxSeconds: 60, SilenceSeconds: 5})},
		{D('#'), A(StopRecording{})},
		{RD(RecordDigit, 1500), A(AP("<recording>", "vm-greeting-review"))},
		{D('1'), A(stop, SaveGreeting{Kind: "temporary"}, AP("vm-greeting-saved", "vm-options"))},
	})
}

func TestAccessChangePIN(t *testing.T) {
	enter := func(pin string, first []Action) []astep {
		st := digits(pin, first)
		return st
	}
	m := toOptions(t)
	steps := []astep{{D('5'), A(stop, AP("vm-newpassword"))}}
	steps = append(steps, enter("123", A(stop, entryTmr))...)
	steps = append(steps, astep{D('#'), A(cancelT, AP("vm-password-length", "vm-newpassword"))})
	steps = append(steps, enter("5678", A(stop, entryTmr))...)
	steps = append(steps, astep{D('#'), A(cancelT, AP("vm-reenterpassword"))})
	steps = append(steps, enter("5679", A(stop, entryTmr))...)
	steps = append(steps, astep{D('#'), A(cancelT, AP("vm-mismatch", "vm-newpassword"))})
	steps = append(steps, enter("5678", A(stop, entryTmr))...)
	steps = append(steps, astep{D('#'), A(cancelT, AP("vm-reenterpassword"))})
	steps = append(steps, enter("5678", A(stop, entryTmr))...)
	steps = append(steps, astep{D('#'), A(cancelT, ChangePIN{PIN: "5678"}, AP("vm-passchanged", "vm-options"))})
	runAccess(t, m, steps)

	// Too long, then three errors give up; '*' goes back to the options.
	m = toOptions(t)
	steps = []astep{{D('5'), A(stop, AP("vm-newpassword"))}}
	steps = append(steps, enter("12345678901", A(stop, entryTmr))...)
	steps = append(steps, astep{D('#'), A(cancelT, AP("vm-password-length", "vm-newpassword"))})
	steps = append(steps, astep{D('#'), A(stop, AP("vm-password-length", "vm-newpassword"))})
	steps = append(steps, astep{D('#'), A(stop, AP("vm-password-length", "vm-options"))})
	steps = append(steps, astep{D('5'), A(stop, AP("vm-newpassword"))})
	steps = append(steps, astep{D('*'), A(stop, AP("vm-options"))})
	steps = append(steps, astep{D('9'), A(stop, AP("vm-invalid", "vm-options"))})
	steps = append(steps, astep{pd, A(menuTmr)})
	steps = append(steps, astep{to, A(AP("vm-options"))})
	runAccess(t, m, steps)

	if s := (ChangePIN{PIN: "5678"}).String() + (Authenticate{Mailbox: "1", PIN: "5678"}).String(); strings.Contains(s, "5678") {
		t.Fatalf("a PIN in a log string: %s", s)
	}
}

func TestAccessPromptsExist(t *testing.T) {
	set, err := prompts.Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range AccessPrompts {
		if _, ok := set.Get(n); !ok {
			t.Errorf("prompt %q is not in the prompt set", n)
		}
	}
}

// TestAccessRandomWalk feeds random events (answering the machine's store
// actions) and checks that it never panics, never acts after Done and ends
// only through EndCall or Hangup.
func TestAccessRandomWalk(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	keys := []rune("0123456789*#A")
	for run := 0; run < 3000; run++ {
		cfg := accessCfg()
		if r.IntN(2) == 0 {
			cfg.Mailbox = "1001"
			cfg.SkipPIN = r.IntN(2) == 0
		}
		m := NewAccess(cfg)
		pending := []Event{Start{}}
		ended := false
		for i := 0; i < 200 && !m.Done(); i++ {
			var ev Event
			if len(pending) > 0 && r.IntN(3) > 0 {
				ev, pending = pending[0], pending[1:]
			} else {
				switch r.IntN(6) {
				case 0, 1, 2:
					ev = D(keys[r.IntN(len(keys))])
				case 3:
					ev = pd
				case 4:
					ev = to
				case 5:
					if r.IntN(20) == 0 {
						ev = Hangup{}
					} else {
						ev = RD(RecordReason(1+r.IntN(3)), int64(r.IntN(3))*1000)
					}
				}
			}
			acts := m.Handle(ev)
			for _, a := range acts {
				switch a := a.(type) {
				case Authenticate:
					st := LoginStatus(1 + r.IntN(3))
					var groups []string
					if r.IntN(2) == 0 {
						groups = []string{"8000"}
					}
					pending = append(pending, LoginResult{Status: st, Groups: groups})
				case OpenMailbox:
					var msgs []MessageInfo
					for j := range r.IntN(4) {
						msgs = append(msgs, MessageInfo{ID: fmt.Sprint(j), Folder: accessFolders[r.IntN(5)], Urgent: r.IntN(2) == 0})
					}
					pending = append(pending, MailboxOpened{Messages: msgs})
				case Forward:
					pending = append(pending, ForwardResult{OK: r.IntN(2) == 0})
				case EndCall:
					ended = true
				case Play:
					if len(a.Items) == 0 {
						t.Fatalf("empty Play in state %s", m.State())
					}
				}
			}
			if _, ok := ev.(Hangup); ok {
				ended = true
			}
		}
		if m.Done() && !ended {
			t.Fatalf("run %d: done without EndCall or Hangup", run)
		}
		if m.Done() && m.Handle(D('1')) != nil {
			t.Fatal("actions after done")
		}
	}
}
