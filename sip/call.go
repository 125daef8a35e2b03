package sip

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vmserver/voicemail/ivr"
	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/store"
)

// greetingKinds are the recorded greetings a mailbox may have (SPEC §7).
var greetingKinds = []string{"temporary", "busy", "unavailable", "name"}

// depositCall connects one ivr.Deposit to a media session and the store.
// It runs on the call's goroutine only.
type depositCall struct {
	driverBase
	m         *ivr.Deposit
	ctx       context.Context
	rec       *recorder
	recording bool // media feeds c.rec
}

// driverBase is what every IVR driver of a call has: the media session,
// the events its own actions produce, one IVR timer and the wall-clock
// guard of a recording.
type driverBase struct {
	d       *dialog
	sess    *media.Session
	queue   []ivr.Event // events produced by our own actions
	timer   *time.Timer
	recMax  *time.Timer // wall-clock guard when RTP stops flowing
	playing bool
}

func newDriverBase(d *dialog) driverBase {
	return driverBase{d: d, sess: d.session(), timer: stoppedTimer(), recMax: stoppedTimer()}
}

func (b *driverBase) base() *driverBase { return b }

// execCommon carries out the actions every machine shares (playback and
// the IVR timer); it reports whether a was one of them.
func (b *driverBase) execCommon(a ivr.Action, audio func([]ivr.Audio) ([]int16, error)) bool {
	switch a := a.(type) {
	case ivr.Play:
		pcm, err := audio(a.Items)
		if err != nil {
			b.d.log.Error("audio for prompt", "err", err)
		}
		if len(pcm) == 0 {
			b.playing = false
			b.queue = append(b.queue, ivr.PlayDone{})
			return true
		}
		b.playing = true
		b.sess.Play(pcm)
	case ivr.StopPlay:
		b.playing = false
		b.sess.StopPlay()
	case ivr.StartTimer:
		b.timer.Reset(time.Duration(a.Seconds) * time.Second)
	case ivr.CancelTimer:
		b.timer.Stop()
	default:
		return false
	}
	return true
}

// machine is an IVR state machine (ivr.Deposit, ivr.Access).
type machine interface {
	Handle(ivr.Event) []ivr.Action
	Done() bool
}

// driver is a call's IVR driver: it carries out the machine's actions.
type driver interface {
	base() *driverBase
	exec(actions []ivr.Action)
	recEnded() <-chan recordEnd
	endRecording(reason ivr.RecordReason)
}

// runMachine feeds m with the call's events (digits, playback ends,
// timers, recording limits, hang-up) and has c carry out its actions,
// until the machine is done.
func runMachine(ctx context.Context, m machine, c driver) {
	b := c.base()
	defer b.timer.Stop()
	defer b.recMax.Stop()
	b.queue = append(b.queue, ivr.Start{})
	hungUp := false
	for !m.Done() {
		if len(b.queue) > 0 {
			ev := b.queue[0]
			b.queue = b.queue[1:]
			c.exec(m.Handle(ev))
			continue
		}
		var hangup <-chan struct{}
		if !hungUp {
			hangup = ctx.Done()
		}
		select {
		case ev := <-b.sess.Events():
			switch ev.Kind {
			case media.EventDigit:
				// The key itself is not logged: it may be part of a PIN.
				b.d.log.Debug("digit")
				b.queue = append(b.queue, ivr.Digit{Key: ev.Digit})
			case media.EventPlayDone:
				if b.playing {
					b.playing = false
					b.queue = append(b.queue, ivr.PlayDone{})
				}
			}
		case <-b.timer.C:
			b.queue = append(b.queue, ivr.Timeout{})
		case e := <-c.recEnded():
			reason := ivr.RecordSilence
			if e == endMax {
				reason = ivr.RecordMax
			}
			c.endRecording(reason)
		case <-b.recMax.C:
			c.endRecording(ivr.RecordMax)
		case <-b.d.hangCh:
			// Drain timeout: keep what was recorded, then we hang up.
			hungUp = true
			c.endRecording(ivr.RecordHangup)
			b.queue = append(b.queue, ivr.Hangup{})
		case <-hangup:
			hungUp = true
			c.endRecording(ivr.RecordHangup)
			b.queue = append(b.queue, ivr.Hangup{})
		}
	}
}

// drive runs the call's IVR until it ends or the caller hangs up.
func (d *dialog) drive(ctx context.Context) {
	if d.access {
		d.driveAccess(ctx, "") // the access IVR (SPEC §5), sip/access.go
		return
	}
	cfg, err := d.depositConfig(ctx)
	if err != nil {
		d.log.Error("deposit setup", "err", err)
		return
	}
	c := &depositCall{driverBase: newDriverBase(d), m: ivr.NewDeposit(cfg), ctx: ctx}
	defer c.cleanup()
	runMachine(ctx, c.m, c)
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func (c *depositCall) recEnded() <-chan recordEnd {
	if c.rec == nil {
		return nil
	}
	return c.rec.ended
}

func (d *dialog) depositConfig(ctx context.Context) (ivr.DepositConfig, error) {
	s, mb := d.s, d.mailbox
	rc := s.cfg.Recording
	cfg := ivr.DepositConfig{
		Mailbox: mb.Number, Busy: d.target.Busy, Greetings: map[string]bool{},
		Review: mb.Review, Operator: mb.Operator,
		MaxSeconds: rc.MaxSeconds, MinSeconds: rc.MinSeconds, SilenceSeconds: rc.SilenceSeconds,
	}
	if mb.MaxSeconds > 0 {
		cfg.MaxSeconds = mb.MaxSeconds
	}
	for _, k := range greetingKinds {
		cfg.Greetings[k] = s.deps.Blobs.Exists(store.GreetingKey(d.tenant, mb.Number, k))
	}
	if mb.MaxMessages > 0 {
		n, err := s.deps.Store.CountMessages(ctx, d.tenant, mb.Number)
		if err != nil {
			return cfg, fmt.Errorf("count messages: %w", err)
		}
		cfg.Full = n.New+n.Old >= mb.MaxMessages
	}
	return cfg, nil
}

func (c *depositCall) exec(actions []ivr.Action) {
	d, ctx := c.d, c.ctx
	for _, a := range actions {
		if c.execCommon(a, c.audio) {
			continue
		}
		switch a := a.(type) {
		case ivr.StartRecording:
			if err := c.startRecording(a); err != nil {
				d.log.Error("start recording", "err", err)
				c.queue = append(c.queue, ivr.RecordDone{Reason: ivr.RecordDigit})
			}
		case ivr.StopRecording:
			c.endRecording(ivr.RecordDigit)
		case ivr.SaveRecording:
			c.save(a.Urgent)
		case ivr.DiscardRecording:
			if c.rec != nil {
				if err := c.rec.discard(); err != nil {
					d.log.Warn("discard recording", "err", err)
				}
				d.log.Info("recording discarded")
				c.rec = nil
			}
		case ivr.Transfer:
			rctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			err := d.refer(rctx, a.Target)
			cancel()
			if err != nil {
				d.log.Warn("transfer to operator failed", "target", a.Target, "err", err)
			} else {
				d.log.Info("call transferred to operator", "target", a.Target)
			}
		case ivr.Login:
			d.driveAccess(ctx, a.Mailbox) // '*' during the greeting: this mailbox's login
		case ivr.EndCall:
		}
	}
}

// audio turns Play items into one PCM buffer.
func (c *depositCall) audio(items []ivr.Audio) ([]int16, error) {
	return c.d.s.playAudio(items, true, func(it ivr.Audio) ([]int16, error) {
		switch it.Kind {
		case ivr.AudioGreeting:
			return c.d.greeting(it.Name)
		case ivr.AudioRecording:
			if c.rec != nil {
				return c.rec.audio()
			}
		}
		return nil, nil
	})
}

// playAudio returns the samples of a Play. Prompts and the beep come from
// the shared set; a single item is played without a copy; with cache, a
// sequence of prompts only is built once and shared (promptcache.go).
// Everything recorded (greetings, recordings, messages) comes from
// recorded.
func (s *Server) playAudio(items []ivr.Audio, cache bool, recorded func(ivr.Audio) ([]int16, error)) ([]int16, error) {
	if len(items) == 1 && items[0].Kind != ivr.AudioBeep {
		return s.itemAudio(items[0], recorded)
	}
	if key := s.prompts.key(items); cache && key != "" {
		return s.prompts.get(key, func() ([]int16, error) { return s.joinAudio(items, recorded) })
	}
	return s.joinAudio(items, recorded)
}

func (s *Server) joinAudio(items []ivr.Audio, recorded func(ivr.Audio) ([]int16, error)) ([]int16, error) {
	var out []int16
	var errs []error
	for _, it := range items {
		p, err := s.itemAudio(it, recorded)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, p...)
	}
	return out, errors.Join(errs...)
}

func (s *Server) itemAudio(it ivr.Audio, recorded func(ivr.Audio) ([]int16, error)) ([]int16, error) {
	switch it.Kind {
	case ivr.AudioPrompt:
		p, ok := s.deps.Prompts.Get(it.Name)
		if !ok {
			return nil, fmt.Errorf("no prompt %q", it.Name)
		}
		return p, nil
	case ivr.AudioBeep:
		return media.Beep(), nil
	}
	return recorded(it)
}

func (d *dialog) greeting(kind string) ([]int16, error) {
	f, err := d.s.deps.Blobs.Open(store.GreetingKey(d.tenant, d.mailbox.Number, kind))
	if err != nil {
		return nil, fmt.Errorf("greeting %s: %w", kind, err)
	}
	defer f.Close()
	pcm, err := media.ReadWAV(f)
	if err != nil {
		return nil, fmt.Errorf("greeting %s: %w", kind, err)
	}
	return pcm, nil
}

func (c *depositCall) startRecording(a ivr.StartRecording) error {
	d := c.d
	if c.rec != nil {
		_ = c.rec.discard()
		c.rec = nil
	}
	number, name := callerOf(d.invite)
	meta := partMeta{
		Tenant: d.tenant, Mailbox: d.mailbox.Number, ID: store.NewMessageID(),
		CallerID: number, CallerName: name, ReceivedAt: time.Now().UTC(),
		Format: d.s.cfg.Recording.Format.String(),
	}
	rec, err := newRecorder(d.s.deps.Blobs, meta, d.s.cfg.Recording.Format, a.MaxSeconds, a.SilenceSeconds)
	if err != nil {
		return err
	}
	c.rec = rec
	c.recording = true
	if a.MaxSeconds > 0 {
		c.recMax.Reset(time.Duration(a.MaxSeconds)*time.Second + 2*time.Second)
	}
	c.sess.Record(rec)
	d.log.Info("recording", "message_id", meta.ID)
	return nil
}

// endRecording stops the media feed, closes the WAV and tells the machine.
func (c *depositCall) endRecording(reason ivr.RecordReason) {
	if c.rec == nil || !c.recording {
		return
	}
	c.recording = false
	c.recMax.Stop()
	c.sess.StopRecord()
	dur, err := c.rec.finish()
	if err != nil {
		c.d.log.Error("finish recording", "err", err)
	}
	c.queue = append(c.queue, ivr.RecordDone{Reason: reason, DurationMS: dur})
	c.rec.durationMS = dur
}

func (c *depositCall) save(urgent bool) {
	if c.rec == nil {
		return
	}
	// The caller may be gone: the save must not die with the call.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := c.rec.commit(ctx, c.d.s.deps.Store, c.rec.durationMS, urgent)
	if err != nil {
		c.d.log.Error("saving message", "err", err)
	} else {
		c.d.log.Info("message saved", "message_id", m.ID, "duration_ms", m.DurationMS, "caller", m.CallerID)
		c.d.s.metrics.recording.Add(float64(m.DurationMS) / 1000)
	}
	c.rec = nil
}

// cleanup removes a recording the machine neither saved nor discarded.
func (c *depositCall) cleanup() {
	if c.rec != nil {
		if c.recording {
			c.sess.StopRecord()
		}
		_ = c.rec.discard()
		c.rec = nil
	}
}

// playThenEnd plays prompts and returns when they finished or the caller
// hung up.
func (d *dialog) playThenEnd(ctx context.Context, names ...string) {
	pcm, err := d.s.deps.Prompts.Concat(names...)
	if err != nil {
		d.log.Error("prompts", "err", err)
		return
	}
	sess := d.session()
	sess.Play(pcm)
	guard := time.NewTimer(time.Duration(len(pcm)/media.SampleRate+5) * time.Second)
	defer guard.Stop()
	for {
		select {
		case ev := <-sess.Events():
			if ev.Kind == media.EventPlayDone {
				return
			}
		case <-guard.C:
			return
		case <-ctx.Done():
			return
		case <-d.hangCh:
			return
		}
	}
}
