package call

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/vmserver/voicemail/ivr"
	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/sip"
)

// Space is the free-space monitor (package diskspace) as calls see it:
// Low says whether new recordings must be refused, Check measures again
// at once (after a write failed for lack of space).
type Space interface {
	Low() (bool, string)
	Check() (bool, string)
}

// spaceGate refuses deposits while the disk is low and logs once per
// change of state, not once per refused call.
type spaceGate struct {
	low atomic.Bool
}

// Admit implements sip.Admitter: a deposit is refused (503, Retry-After)
// while free space is below media.min_free, so that no caller records a
// message that cannot be kept. Access calls stay allowed: deleting
// messages frees space.
func (r *Runtime) Admit(d *sip.Dialog) error {
	if r.deps.Space == nil || d.Access() {
		return nil
	}
	low, reason := r.deps.Space.Low()
	if r.gate.low.Swap(low) != low {
		log := r.deps.Logger
		if log == nil {
			log = slog.Default()
		}
		if low {
			log.Warn("deposits refused (503): storage full", "reason", reason)
		} else {
			log.Info("deposits accepted again: storage no longer full")
		}
	}
	if low {
		return sip.Refuse(sip.ErrStorageFull, sip.Warning(399, "message storage full"))
	}
	return nil
}

// outOfSpace ends a deposit whose recording failed for lack of space
// (docs/api-limits.md): what was written is kept and saved as a message
// when it is long enough (the machine's own rule, as on a hang-up), the
// monitor measures again so that the next deposits are refused, the
// caller hears whether the message was saved, and the call ends.
func (c *depositCall) outOfSpace() {
	if c.rec == nil || !c.recording {
		return
	}
	c.stopRecord()
	dur, err := c.rec.finish()
	if err != nil {
		c.log.Error("finish recording after disk full", "err", err)
	}
	c.rec.durationMS = dur
	c.log.Warn("disk full while recording: recording stopped", "duration_ms", dur)
	if sp := c.r.deps.Space; sp != nil {
		sp.Check()
	}
	// As if the caller hung up: the machine saves a long enough recording
	// and asks for nothing to be played.
	c.exec(c.m.Handle(ivr.Hangup{}))
	c.exec(c.m.Handle(ivr.RecordDone{Reason: ivr.RecordHangup, DurationMS: dur}))
	saved := c.rec == nil && dur >= int64(c.r.cfg.Recording.MinSeconds)*1000
	items := []ivr.Audio{ivr.Prompt(ivr.PromptGoodbye)}
	if saved {
		items = append([]ivr.Audio{ivr.Prompt(ivr.PromptMsgSaved)}, items...)
	}
	c.playAndWait(items)
}

// playAndWait plays items and returns when they end, the caller hangs up
// or the audio's length (plus slack) has passed.
func (c *depositCall) playAndWait(items []ivr.Audio) {
	pcm, err := c.audio(items)
	if err != nil || len(pcm) == 0 {
		return
	}
	c.sess.Play(pcm)
	limit := time.NewTimer(time.Duration(len(pcm))*time.Second/media.SampleRate + 2*time.Second)
	defer limit.Stop()
	for {
		select {
		case ev := <-c.sess.Events():
			if ev.Kind == media.EventPlayDone {
				return
			}
		case <-limit.C:
			return
		case <-c.d.Ending():
			return
		case <-c.ctx.Done():
			return
		}
	}
}
