package call

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vmserver/voicemail/ivr"
	"github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/store"
)

// greetingKinds are the recorded greetings a mailbox may have (docs/storage.md).
var greetingKinds = []string{"temporary", "busy", "unavailable", "name"}

// depositCall connects one ivr.Deposit to a media session and the store.
// It runs on the call's goroutine only.
type depositCall struct {
	driverBase
	m   *ivr.Deposit
	ctx context.Context
	rec *recorder
}

func (c *depositCall) recEnded() <-chan recordEnd {
	if c.rec == nil {
		return nil
	}
	return c.rec.ended
}

// deposit runs the deposit IVR of the called mailbox.
func (r *Runtime) deposit(ctx context.Context, d *sip.Dialog) {
	cfg, err := r.depositConfig(ctx, d)
	if err != nil {
		d.Log().Error("deposit setup", "err", err)
		return
	}
	c := &depositCall{driverBase: newDriverBase(r, d), m: ivr.NewDeposit(cfg), ctx: ctx}
	defer c.cleanup()
	runMachine(ctx, c.m, c)
}

func (r *Runtime) depositConfig(ctx context.Context, d *sip.Dialog) (ivr.DepositConfig, error) {
	mb, tenant := d.Mailbox(), d.Tenant()
	rc := r.cfg.Recording
	cfg := ivr.DepositConfig{
		Mailbox: mb.Number, Busy: d.Target().Busy, Greetings: map[string]bool{},
		Review: mb.Review, Operator: mb.Operator,
		MaxSeconds: rc.MaxSeconds, MinSeconds: rc.MinSeconds, SilenceSeconds: rc.SilenceSeconds,
	}
	if mb.MaxSeconds > 0 {
		cfg.MaxSeconds = mb.MaxSeconds
	}
	// One listing of the mailbox's greetings, not a lookup per kind: one
	// folder read on a volume, one request to an object store.
	prefix := store.GreetingPrefix(tenant, mb.Number)
	have, err := r.deps.Blobs.List(prefix)
	if err != nil {
		// The caller can still leave a message after the default greeting.
		d.Log().Warn("greetings unreadable; playing the default", "err", err)
	}
	for _, b := range have {
		if k, ok := strings.CutSuffix(strings.TrimPrefix(b.Key, prefix), ".wav"); ok && slices.Contains(greetingKinds, k) {
			cfg.Greetings[k] = true
		}
	}
	if mb.MaxMessages > 0 {
		n, err := r.deps.Store.CountMessages(ctx, tenant, mb.Number)
		if err != nil {
			return cfg, fmt.Errorf("count messages: %w", err)
		}
		cfg.Full = n.New+n.Old >= mb.MaxMessages
	}
	return cfg, nil
}

func (c *depositCall) exec(actions []ivr.Action) {
	d, ctx, log := c.d, c.ctx, c.log
	for _, a := range actions {
		if c.execCommon(a, c.audio) {
			continue
		}
		switch a := a.(type) {
		case ivr.StartRecording:
			if err := c.startRecording(a); err != nil {
				log.Error("start recording", "err", err)
				c.queue = append(c.queue, ivr.RecordDone{Reason: ivr.RecordDigit})
			}
		case ivr.StopRecording:
			c.endRecording(ivr.RecordDigit)
		case ivr.SaveRecording:
			c.save(a.Urgent)
		case ivr.DiscardRecording:
			if c.rec != nil {
				if err := c.rec.discard(); err != nil {
					log.Warn("discard recording", "err", err)
				}
				log.Info("recording discarded")
				c.rec = nil
			}
		case ivr.Transfer:
			rctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			err := d.Refer(rctx, a.Target)
			cancel()
			if err != nil {
				log.Warn("transfer to operator failed", "target", a.Target, "err", err)
			} else {
				log.Info("call transferred to operator", "target", a.Target)
			}
		case ivr.Login:
			c.r.access(ctx, d, a.Mailbox) // '*' during the greeting: this mailbox's login
		case ivr.EndCall:
		}
	}
}

// audio turns Play items into one PCM buffer.
func (c *depositCall) audio(items []ivr.Audio) ([]int16, error) {
	return c.r.playAudio(items, true, func(it ivr.Audio) ([]int16, error) {
		switch it.Kind {
		case ivr.AudioGreeting:
			return c.r.greeting(c.d, it.Name)
		case ivr.AudioRecording:
			if c.rec != nil {
				return c.rec.audio()
			}
		}
		return nil, nil
	})
}

func (c *depositCall) startRecording(a ivr.StartRecording) error {
	d, rc := c.d, c.r.cfg.Recording
	if c.rec != nil {
		_ = c.rec.discard()
		c.rec = nil
	}
	number, name := d.Caller()
	meta := partMeta{
		Tenant: d.Tenant(), Mailbox: d.Mailbox().Number, ID: store.NewMessageID(),
		CallerID: number, CallerName: name, ReceivedAt: time.Now().UTC(),
		Format: rc.Format.String(),
	}
	// The caller speaks from the end of the beep: take the audio at once,
	// in memory, while the file is created (under load, creating it takes
	// longer than a word).
	early := &handoffSink{}
	c.record(early, a.MaxSeconds)
	rec, err := newRecorder(c.r.deps.Blobs, c.r.writers, meta, rc.Format, a.MaxSeconds, a.SilenceSeconds, rc.TailMS)
	if err != nil {
		c.stopRecord()
		return err
	}
	early.handOver(rec)
	c.sess.Record(rec) // from now on without the hand-off's lock and indirection
	c.rec = rec
	c.log.Info("recording", "message_id", meta.ID)
	return nil
}

// endRecording stops the media feed, closes the WAV and tells the machine.
func (c *depositCall) endRecording(reason ivr.RecordReason) {
	if c.rec == nil || !c.recording {
		return
	}
	c.stopRecord()
	dur, err := c.rec.finish()
	if err != nil {
		c.log.Error("finish recording", "err", err)
	}
	c.queue = append(c.queue, ivr.RecordDone{Reason: reason, DurationMS: dur})
	c.rec.durationMS = dur
}

func (c *depositCall) save(urgent bool) {
	if c.rec == nil {
		return
	}
	// The caller may be gone: the save must not die with the call.
	ctx, cancel := storeCtx()
	defer cancel()
	m, err := c.rec.commit(ctx, c.r.deps.Store, c.rec.durationMS, urgent)
	if err != nil {
		c.log.Error("saving message", "err", err)
	} else {
		c.log.Info("message saved", "message_id", m.ID, "duration_ms", m.DurationMS, "caller", m.CallerID)
		c.r.recording.Add(float64(m.DurationMS) / 1000)
	}
	c.rec = nil
}

// cleanup removes a recording the machine neither saved nor discarded.
func (c *depositCall) cleanup() {
	if c.rec != nil {
		if c.recording {
			c.stopRecord()
		}
		_ = c.rec.discard()
		c.rec = nil
	}
}
