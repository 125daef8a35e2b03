package call

import (
	"errors"
	"fmt"

	"github.com/vmserver/voicemail/ivr"
	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/store"
)

// playAudio returns the samples of a Play. Prompts and the beep come from
// the shared set; a single item is played without a copy; with cache, a
// sequence of prompts only is built once and shared (promptcache.go).
// Everything recorded (greetings, recordings, messages) comes from
// recorded.
func (r *Runtime) playAudio(items []ivr.Audio, cache bool, recorded func(ivr.Audio) ([]int16, error)) ([]int16, error) {
	if len(items) == 1 && items[0].Kind != ivr.AudioBeep {
		return r.itemAudio(items[0], recorded)
	}
	if key := r.prompts.key(items); cache && key != "" {
		return r.prompts.get(key, func() ([]int16, error) { return r.joinAudio(items, recorded) })
	}
	return r.joinAudio(items, recorded)
}

func (r *Runtime) joinAudio(items []ivr.Audio, recorded func(ivr.Audio) ([]int16, error)) ([]int16, error) {
	var out []int16
	var errs []error
	for _, it := range items {
		p, err := r.itemAudio(it, recorded)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, p...)
	}
	return out, errors.Join(errs...)
}

func (r *Runtime) itemAudio(it ivr.Audio, recorded func(ivr.Audio) ([]int16, error)) ([]int16, error) {
	switch it.Kind {
	case ivr.AudioPrompt:
		p, ok := r.deps.Prompts.Get(it.Name)
		if !ok {
			return nil, fmt.Errorf("no prompt %q", it.Name)
		}
		return p, nil
	case ivr.AudioBeep:
		return media.Beep(), nil
	}
	return recorded(it)
}

// greeting is a recorded greeting of the called mailbox.
func (r *Runtime) greeting(d *sip.Dialog, kind string) ([]int16, error) {
	pcm, err := r.blobAudio(store.GreetingKey(d.Tenant(), d.Mailbox().Number, kind))
	if err != nil {
		return nil, fmt.Errorf("greeting %s: %w", kind, err)
	}
	return pcm, nil
}

// blobAudio reads a stored WAV (a greeting, a message) as samples.
func (r *Runtime) blobAudio(key string) ([]int16, error) {
	f, err := r.deps.Blobs.Open(key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return media.ReadWAV(f)
}
