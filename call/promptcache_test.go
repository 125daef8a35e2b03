package call

import (
	"errors"
	"testing"

	"github.com/vmserver/voicemail/ivr"
)

func TestPromptCache(t *testing.T) {
	pc := newPromptCache()
	if k := pc.key([]ivr.Audio{ivr.Prompt("vm-intro"), ivr.Greeting("busy")}); k != "" {
		t.Errorf("a recorded greeting is cached: %q", k)
	}
	key := pc.key([]ivr.Audio{ivr.Prompt("vm-theperson"), ivr.Prompt("digits/1"), ivr.Beep})
	if key == "" || key == pc.key([]ivr.Audio{ivr.Prompt("vm-theperson"), ivr.Prompt("digits/2"), ivr.Beep}) {
		t.Fatalf("keys do not tell sequences apart: %q", key)
	}
	builds := 0
	build := func() ([]int16, error) { builds++; return make([]int16, 8000), nil }
	a, _ := pc.get(key, build)
	b, _ := pc.get(key, build)
	if builds != 1 || &a[0] != &b[0] {
		t.Errorf("built %d times; shared slice: %v", builds, &a[0] == &b[0])
	}
	// A failed build is not kept.
	fail := func() ([]int16, error) { builds++; return nil, errors.New("no prompt") }
	_, _ = pc.get("x", fail)
	_, _ = pc.get("x", fail)
	if builds != 3 {
		t.Errorf("failed build cached (builds %d)", builds)
	}
	// The bound holds: past it the cache starts over.
	big := func() ([]int16, error) { return make([]int16, promptCacheSamples/2+1), nil }
	_, _ = pc.get("big1", big)
	_, _ = pc.get("big2", big)
	if pc.samples > promptCacheSamples {
		t.Errorf("cache holds %d samples, bound %d", pc.samples, promptCacheSamples)
	}
	if _, ok := pc.m[key]; ok {
		t.Error("cache did not start over past its bound")
	}
}
