package call

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vmserver/voicemail/ivr"
	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/prompts"
	"github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/store"
)

// Greeting recordings made from the access IVR.
const (
	greetingMaxSeconds     = 120
	greetingSilenceSeconds = 5
	storeOpTimeout         = 10 * time.Second
)

// accessCall connects one ivr.Access to a media session and the store
// (docs/architecture.md). It runs on the call's goroutine only. Every change goes
// through deps.Store, the store.Notifying wrapper, so MWI and events follow.
type accessCall struct {
	driverBase
	m *ivr.Access

	rec *memRecorder // greeting being recorded or held for review

	login *store.Mailbox // after a successful login
	open  *store.Mailbox // the chosen (personal or group) mailbox
	msgs  map[string]store.Message
	audio map[string][]int16 // message audio, loaded once per call
	loc   *time.Location
}

// accessIdentity returns the caller's own mailbox when it is a personal
// mailbox of the tenant, and whether that identity is verified: digest
// authenticated, or asserted by a trusted proxy. An unverified one (a From
// anyone may write) only preselects the mailbox; the PIN is still asked.
func (r *Runtime) accessIdentity(ctx context.Context, d *sip.Dialog) (*store.Mailbox, bool) {
	number, verified := d.Identity()
	if number == "" {
		return nil, false
	}
	mb, err := r.deps.Store.GetMailbox(ctx, d.Tenant(), number)
	if err != nil || mb.Type != store.TypePersonal {
		return nil, false
	}
	return mb, verified
}

// access runs the access IVR until it ends or the caller hangs up.
// mailbox is the mailbox to log into ("" = the caller's own, else ask).
func (r *Runtime) access(ctx context.Context, d *sip.Dialog, mailbox string) {
	cfg := ivr.AccessConfig{
		MaxAttempts:            r.cfg.LoginMaxAttempts,
		GreetingMaxSeconds:     greetingMaxSeconds,
		GreetingSilenceSeconds: greetingSilenceSeconds,
		SayNumber:              prompts.Number,
	}
	self, verified := r.accessIdentity(ctx, d)
	switch {
	case mailbox != "":
		cfg.Mailbox = mailbox
	case self != nil:
		cfg.Mailbox = self.Number
	}
	// ask_password: false is honoured only for the mailbox's own, verified
	// caller (docs/sip.md).
	if self != nil && verified && self.Number == cfg.Mailbox && !self.AskPassword {
		cfg.SkipPIN = true
	}
	c := &accessCall{
		driverBase: newDriverBase(r, d), m: ivr.NewAccess(cfg),
		msgs: map[string]store.Message{}, audio: map[string][]int16{}, loc: time.Local,
	}
	// Access lines name their mailboxes; a login from a deposit ('*')
	// must not repeat the deposit's "mailbox" key.
	c.log = d.BaseLog()
	c.log.Info("access call", "mailbox", cfg.Mailbox, "own_caller", self != nil, "verified", verified)
	defer c.discardRecording()
	runMachine(ctx, c.m, c)
}

func (c *accessCall) recEnded() <-chan recordEnd {
	if c.rec == nil || !c.recording {
		return nil
	}
	return c.rec.ended
}

func (c *accessCall) exec(actions []ivr.Action) {
	for _, a := range actions {
		if c.execCommon(a, c.pcm) {
			continue
		}
		switch a := a.(type) {
		case ivr.Seek:
			c.sess.Seek(a.Seconds * media.SampleRate)
		case ivr.Authenticate:
			c.queue = append(c.queue, c.authenticate(a))
		case ivr.OpenMailbox:
			c.queue = append(c.queue, c.openMailbox(a.Mailbox))
		case ivr.MarkRead:
			c.update(a.ID, func(m *store.Message) {
				if m.Folder == store.FolderNew {
					m.Folder = store.FolderOld
				}
				m.Read = true
			})
		case ivr.MoveMessage:
			c.update(a.ID, func(m *store.Message) { m.Folder = a.Folder })
		case ivr.DeleteMessages:
			c.delete(a.IDs)
		case ivr.Forward:
			c.queue = append(c.queue, c.forward(a))
		case ivr.StartRecording:
			c.startRecording(a)
		case ivr.StopRecording:
			c.endRecording(ivr.RecordDigit)
		case ivr.DiscardRecording:
			c.discardRecording()
		case ivr.SaveGreeting:
			c.saveGreeting(a.Kind)
		case ivr.DeleteGreeting:
			c.deleteGreeting(a.Kind)
		case ivr.ChangePIN:
			c.changePIN(a.PIN)
		case ivr.EndCall:
		default:
			c.log.Warn("access action not handled", "action", fmt.Sprint(a))
		}
	}
}

// pcm turns Play items into samples; a message's audio is its cached
// slice when played alone.
func (c *accessCall) pcm(items []ivr.Audio) ([]int16, error) {
	return c.r.playAudio(items, false, func(it ivr.Audio) ([]int16, error) {
		switch it.Kind {
		case ivr.AudioRecording:
			if c.rec != nil {
				return c.rec.samples(), nil
			}
		case ivr.AudioMessage:
			return c.messageAudio(it.Name)
		}
		return nil, nil
	})
}

func (c *accessCall) messageAudio(id string) ([]int16, error) {
	if p, ok := c.audio[id]; ok {
		return p, nil
	}
	m, ok := c.msgs[id]
	if !ok {
		return nil, fmt.Errorf("message %s: not in the open mailbox", id)
	}
	p, err := c.r.blobAudio(m.MediaKey)
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", id, err)
	}
	c.audio[id] = p
	return p, nil
}

// authenticate checks a login (docs/ivr.md): lock first, then the PIN; the
// failure is counted per mailbox across calls and per source IP (the SIP
// lock-out, docs/sip.md). Whether the mailbox exists does not change the
// work done (login.go). The PIN is never logged.
func (c *accessCall) authenticate(a ivr.Authenticate) ivr.Event {
	d := c.d
	st := c.r.deps.Store
	ctx, cancel := storeCtx()
	defer cancel()
	fail := ivr.LoginResult{Status: ivr.LoginFailed}
	var mb *store.Mailbox
	if a.NoPIN {
		var err error
		if mb, err = st.GetMailbox(ctx, d.Tenant(), a.Mailbox); err != nil {
			c.log.Info("login failed", "mailbox", a.Mailbox, "reason", "unknown mailbox")
			return fail
		}
	} else {
		res := checkLogin(ctx, st, store.CheckPIN, d.Tenant(), a.Mailbox, a.PIN, time.Now(), c.r.cfg.LoginLockout)
		switch res.status {
		case loginLocked:
			c.log.Warn("login refused: mailbox locked", "mailbox", a.Mailbox, "until", res.lockedUntil)
			return ivr.LoginResult{Status: ivr.LoginLocked}
		case loginError:
			c.log.Error("login: "+res.reason, "err", res.err)
			return fail
		case loginWrong:
			if res.err != nil {
				c.log.Error("login: record failure", "err", res.err)
			}
			if !res.lockedUntil.IsZero() {
				c.log.Warn("mailbox locked after repeated login failures", "mailbox", a.Mailbox, "until", res.lockedUntil)
			}
			d.AuthFailed()
			c.log.Info("login failed", "mailbox", a.Mailbox, "reason", res.reason)
			return fail
		}
		if res.err != nil {
			c.log.Warn("login: clear failures", "err", res.err)
		}
		mb = res.mb
	}
	c.login = mb
	var groups []string
	if mb.Type == store.TypePersonal {
		gs, err := st.GroupsOf(ctx, d.Tenant(), mb.Number)
		if err != nil {
			c.log.Error("login: groups", "err", err)
		}
		for _, g := range gs {
			groups = append(groups, g.Number)
		}
	}
	c.log.Info("login", "mailbox", mb.Number, "groups", len(groups), "pin", !a.NoPIN)
	return ivr.LoginResult{Status: ivr.LoginOK, Groups: groups}
}

// openMailbox loads every message of the chosen mailbox.
func (c *accessCall) openMailbox(number string) ivr.Event {
	d := c.d
	st := c.r.deps.Store
	ctx, cancel := storeCtx()
	defer cancel()
	mb, err := st.GetMailbox(ctx, d.Tenant(), number)
	if err != nil {
		c.log.Error("open mailbox", "mailbox", number, "err", err)
		return ivr.MailboxOpened{}
	}
	c.open = mb
	c.loc = time.Local
	if mb.Timezone != "" {
		if l, err := time.LoadLocation(mb.Timezone); err == nil {
			c.loc = l
		} else {
			c.log.Warn("mailbox time zone", "timezone", mb.Timezone, "err", err)
		}
	}
	clear(c.msgs)
	clear(c.audio)
	var infos []ivr.MessageInfo
	now := time.Now().In(c.loc)
	f := store.MessageFilter{Tenant: d.Tenant(), Mailbox: number, Limit: 1000}
	for {
		items, next, err := st.ListMessages(ctx, f)
		if err != nil {
			c.log.Error("list messages", "mailbox", number, "err", err)
			break
		}
		for _, m := range items {
			c.msgs[m.ID] = m
			infos = append(infos, ivr.MessageInfo{
				ID: m.ID, Folder: m.Folder, Urgent: m.Urgent, Read: m.Read,
				When: prompts.DateTime(m.ReceivedAt.In(c.loc), now),
				From: m.CallerID, DurationMS: m.DurationMS,
			})
		}
		if next == "" {
			break
		}
		f.After = next
	}
	c.log.Info("mailbox opened", "mailbox", number, "messages", len(infos))
	return ivr.MailboxOpened{Messages: infos}
}

func (c *accessCall) update(id string, f func(*store.Message)) {
	m, ok := c.msgs[id]
	if !ok {
		return
	}
	f(&m)
	ctx, cancel := storeCtx()
	defer cancel()
	if err := c.r.deps.Store.UpdateMessage(ctx, &m); err != nil {
		c.log.Error("update message", "message_id", id, "err", err)
		return
	}
	c.msgs[id] = m
}

func (c *accessCall) delete(ids []string) {
	d := c.d
	ctx, cancel := storeCtx()
	defer cancel()
	for _, id := range ids {
		m, ok := c.msgs[id]
		if !ok {
			continue
		}
		// The row goes first: a message is never listed without its audio.
		if _, err := c.r.deps.Store.DeleteMessage(ctx, d.Tenant(), m.Mailbox, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			c.log.Error("delete message", "message_id", id, "err", err)
			continue
		}
		if err := c.r.deps.Blobs.Delete(m.MediaKey); err != nil {
			c.log.Warn("delete message audio", "message_id", id, "err", err)
		}
		delete(c.msgs, id)
		delete(c.audio, id)
		c.log.Info("message deleted", "message_id", id)
	}
}

// forward copies a message (audio then row) into another mailbox; the
// new row makes its MWI and events follow.
func (c *accessCall) forward(a ivr.Forward) ivr.Event {
	d := c.d
	st := c.r.deps.Store
	ctx, cancel := storeCtx()
	defer cancel()
	src, ok := c.msgs[a.ID]
	if !ok {
		return ivr.ForwardResult{}
	}
	if _, err := st.GetMailbox(ctx, d.Tenant(), a.To); err != nil {
		c.log.Info("forward: no such mailbox", "to", a.To)
		return ivr.ForwardResult{}
	}
	f, err := c.r.deps.Blobs.Open(src.MediaKey)
	if err != nil {
		c.log.Error("forward: open audio", "err", err)
		return ivr.ForwardResult{}
	}
	defer f.Close()
	cp := src
	cp.ID = store.NewMessageID()
	cp.Mailbox, cp.Folder, cp.Read = a.To, store.FolderNew, false
	cp.MediaKey = store.MediaKey(d.Tenant(), a.To, cp.ID)
	if err := c.r.deps.Blobs.Put(cp.MediaKey, f); err != nil {
		c.log.Error("forward: copy audio", "err", err)
		return ivr.ForwardResult{}
	}
	if err := st.CreateMessage(ctx, &cp); err != nil {
		c.log.Error("forward: save message", "err", err)
		_ = c.r.deps.Blobs.Delete(cp.MediaKey)
		return ivr.ForwardResult{}
	}
	c.log.Info("message forwarded", "message_id", src.ID, "to", a.To, "copy_id", cp.ID)
	return ivr.ForwardResult{OK: true}
}

func (c *accessCall) startRecording(a ivr.StartRecording) {
	c.discardRecording()
	c.rec = newMemRecorder(a.MaxSeconds, a.SilenceSeconds, c.r.cfg.Recording.TailMS)
	c.record(c.rec, a.MaxSeconds)
}

func (c *accessCall) endRecording(reason ivr.RecordReason) {
	if c.rec == nil || !c.recording {
		return
	}
	c.stopRecord()
	c.queue = append(c.queue, ivr.RecordDone{Reason: reason, DurationMS: c.rec.finish()})
}

func (c *accessCall) discardRecording() {
	if c.rec == nil {
		return
	}
	if c.recording {
		c.stopRecord()
	}
	c.rec = nil
}

// saveGreeting writes the reviewed recording atomically (temp file,
// fsync, rename) where the deposit looks for it.
func (c *accessCall) saveGreeting(kind string) {
	d := c.d
	if c.rec == nil || c.open == nil {
		return
	}
	key := store.GreetingKey(d.Tenant(), c.open.Number, kind)
	wav, err := media.EncodeWAV(c.rec.samples(), media.FormatPCM16)
	if err == nil {
		err = c.r.deps.Blobs.Put(key, bytes.NewReader(wav))
	}
	if err != nil {
		c.log.Error("save greeting", "kind", kind, "err", err)
	} else {
		c.log.Info("greeting saved", "greeting", kind, "mailbox", c.open.Number)
	}
	c.rec = nil
}

func (c *accessCall) deleteGreeting(kind string) {
	d := c.d
	if c.open == nil {
		return
	}
	if err := c.r.deps.Blobs.Delete(store.GreetingKey(d.Tenant(), c.open.Number, kind)); err != nil {
		c.log.Error("delete greeting", "kind", kind, "err", err)
		return
	}
	c.log.Info("greeting deleted", "greeting", kind, "mailbox", c.open.Number)
}

// changePIN stores the new PIN's hash on the login mailbox.
func (c *accessCall) changePIN(pin string) {
	d := c.d
	if c.login == nil {
		return
	}
	ctx, cancel := storeCtx()
	defer cancel()
	mb, err := c.r.deps.Store.GetMailbox(ctx, d.Tenant(), c.login.Number)
	if err == nil {
		mb.PINHash, err = store.HashPIN(pin)
	}
	if err == nil {
		err = c.r.deps.Store.UpdateMailbox(ctx, mb)
	}
	if err != nil {
		c.log.Error("change PIN", "mailbox", c.login.Number, "err", err)
		return
	}
	c.login = mb
	c.log.Info("PIN changed", "mailbox", mb.Number)
}
