// Package prompts holds the voice prompts the IVR plays: an English set
// embedded in the binary (8 kHz mono PCM16 WAVs generated from manifest.tsv by
// generate.sh), optionally overridden file by file from a folder
// (config key prompts.dir), and pure functions that turn numbers, digit
// strings and dates into sequences of prompt names.
//
// A prompt name is its path under en/ without ".wav": "vm-goodbye",
// "digits/1", "month/january".
package prompts

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/vmserver/voicemail/media"
)

//go:embed en
var embedded embed.FS

// ErrNotFound is wrapped by Concat when a prompt is missing.
var ErrNotFound = errors.New("prompt not found")

// Set is an immutable collection of decoded prompts, safe for concurrent use.
// Slices returned by Get are shared: callers must not modify them.
type Set struct {
	pcm map[string][]int16
}

// The embedded set is decoded once per process, however many times Load runs.
var embeddedPCM = sync.OnceValues(func() (map[string][]int16, error) {
	m := make(map[string][]int16)
	err := fs.WalkDir(embedded, "en", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !isWAV(p) {
			return nil
		}
		b, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		pcm, err := media.ReadWAV(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("prompts: embedded %s: %w", p, err)
		}
		m[nameOf(strings.TrimPrefix(p, "en/"))] = pcm
		return nil
	})
	return m, err
})

// Load returns the embedded set overridden by every WAV file found under dir
// (recursively; "<dir>/digits/1.wav" replaces "digits/1"). A file whose name
// is not in the embedded set adds a prompt. dir "" means the embedded set
// only. A dir that does not exist, or a file there that is not a supported
// WAV for media.ReadWAV (PCM8/PCM16/u-law/A-law, mono or stereo, 8-48 kHz),
// is an error.
func Load(dir string) (*Set, error) {
	base, err := embeddedPCM()
	if err != nil {
		return nil, err
	}
	m := make(map[string][]int16, len(base))
	for k, v := range base {
		m[k] = v
	}
	if dir != "" {
		st, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("prompts: prompts.dir: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("prompts: prompts.dir %s: not a directory", dir)
		}
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !isWAV(p) {
				return nil
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			pcm, err := media.ReadWAV(f)
			if err != nil {
				return fmt.Errorf("prompts: %s: %w", p, err)
			}
			m[nameOf(filepath.ToSlash(rel))] = pcm
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return &Set{pcm: m}, nil
}

func isWAV(p string) bool { return strings.EqualFold(path.Ext(p), ".wav") }

func nameOf(rel string) string { return strings.TrimSuffix(rel, path.Ext(rel)) }

// Get returns the samples of one prompt (8 kHz mono). The slice is shared.
func (s *Set) Get(name string) ([]int16, bool) {
	pcm, ok := s.pcm[name]
	return pcm, ok
}

// Names returns every prompt name, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.pcm))
	for k := range s.pcm {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// Concat returns a new slice holding the named prompts one after the other.
// A missing name is an error (wrapping ErrNotFound) that names it.
func (s *Set) Concat(names ...string) ([]int16, error) {
	n := 0
	for _, name := range names {
		pcm, ok := s.pcm[name]
		if !ok {
			return nil, fmt.Errorf("prompts: %q: %w", name, ErrNotFound)
		}
		n += len(pcm)
	}
	out := make([]int16, 0, n)
	for _, name := range names {
		out = append(out, s.pcm[name]...)
	}
	return out, nil
}
