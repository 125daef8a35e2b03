package call

import (
	"context"
	"log/slog"
	"time"

	"github.com/vmserver/voicemail/ivr"
	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/sip"
)

// driverBase is what every IVR driver of a call has: the media session,
// the events its own actions produce, one IVR timer and the wall-clock
// guard of a recording.
type driverBase struct {
	r         *Runtime
	d         *sip.Dialog
	log       *slog.Logger
	sess      *media.Session
	queue     []ivr.Event // events produced by our own actions
	timer     *time.Timer
	recMax    *time.Timer // wall-clock guard when RTP stops flowing
	playing   bool
	recording bool // the media session feeds the driver's recorder
}

// record has the media session feed sink, with a wall-clock guard of
// maxSeconds (plus slack) in case RTP stops flowing.
func (b *driverBase) record(sink media.FrameSink, maxSeconds int) {
	b.recording = true
	if maxSeconds > 0 {
		b.recMax.Reset(time.Duration(maxSeconds)*time.Second + 2*time.Second)
	}
	b.sess.Record(sink)
}

// stopRecord stops the media feed and its guard.
func (b *driverBase) stopRecord() {
	b.recording = false
	b.recMax.Stop()
	b.sess.StopRecord()
}

func newDriverBase(r *Runtime, d *sip.Dialog) driverBase {
	return driverBase{r: r, d: d, log: d.Log(), sess: d.Session(), timer: stoppedTimer(), recMax: stoppedTimer()}
}

func (b *driverBase) base() *driverBase { return b }

// execCommon carries out the actions every machine shares (playback and
// the IVR timer); it reports whether a was one of them.
func (b *driverBase) execCommon(a ivr.Action, audio func([]ivr.Audio) ([]int16, error)) bool {
	switch a := a.(type) {
	case ivr.Play:
		pcm, err := audio(a.Items)
		if err != nil {
			b.log.Error("audio for prompt", "err", err)
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

// loggedKey is a digit as the log shows it: "*" while the machine takes a
// PIN (ivr.Access.Secret), which is never logged.
func loggedKey(m machine, key rune) string {
	if s, ok := m.(interface{ Secret() bool }); ok && s.Secret() {
		return "*"
	}
	return string(key)
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
				b.log.Debug("digit", "key", loggedKey(m, ev.Digit))
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
			if ns, ok := c.(interface{ outOfSpace() }); ok && e == endNoSpace {
				ns.outOfSpace()
				continue
			}
			reason := ivr.RecordSilence
			if e == endMax {
				reason = ivr.RecordMax
			}
			c.endRecording(reason)
		case <-b.recMax.C:
			c.endRecording(ivr.RecordMax)
		case <-b.d.Ending():
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

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// storeCtx bounds a store operation; it does not die with the call, so
// that a save or a deletion on hang-up still happens.
func storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), storeOpTimeout)
}
