package call

import (
	"strings"
	"sync"

	"github.com/vmserver/voicemail/ivr"
)

// promptCacheSamples bounds the cache: 16 Mi samples (32 MiB), about 30
// minutes of audio, hundreds of mailboxes' system greetings.
const promptCacheSamples = 16 << 20

// promptCache keeps the PCM of sequences made only of prompts and tones
// (system greetings, menus): every call to a mailbox plays one shared slice
// instead of its own copy (media.Session.Play does not copy or change it).
type promptCache struct {
	mu      sync.Mutex
	m       map[string][]int16
	samples int
}

func newPromptCache() *promptCache { return &promptCache{m: map[string][]int16{}} }

// key is the cache key of items, or "" when they hold something recorded
// (a greeting or the caller's recording), which is not cached.
func (pc *promptCache) key(items []ivr.Audio) string {
	var b strings.Builder
	for _, it := range items {
		switch it.Kind {
		case ivr.AudioPrompt:
			b.WriteString(it.Name)
		case ivr.AudioBeep:
			b.WriteString("\x00beep")
		default:
			return ""
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// get returns the cached PCM of key, building and keeping it on a miss.
// A build that failed (a missing prompt) is not kept.
func (pc *promptCache) get(key string, build func() ([]int16, error)) ([]int16, error) {
	pc.mu.Lock()
	pcm, ok := pc.m[key]
	pc.mu.Unlock()
	if ok {
		return pcm, nil
	}
	pcm, err := build()
	if err != nil {
		return pcm, err
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.samples+len(pcm) > promptCacheSamples {
		// Simple and bounded: start over rather than track recency.
		pc.m, pc.samples = map[string][]int16{}, 0
	}
	pc.m[key] = pcm
	pc.samples += len(pcm)
	return pcm, nil
}
