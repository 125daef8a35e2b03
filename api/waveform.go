package api

import (
	"bytes"
	lru "container/list"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/store"
)

// waveformBars is the number of min/max columns of a waveform picture.
const waveformBars = 160

// waveformCacheSize bounds the rendered pictures kept in memory (~6 KB each).
const waveformCacheSize = 1024

// waveformSVG draws pcm as waveformBars vertical bars (peak per column),
// 640×64 user units. Presentation attributes only (no style attribute), so
// the page's strict CSP has nothing to refuse.
func waveformSVG(pcm []int16) []byte {
	const w, h = 640, 64
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" preserveAspectRatio="none" role="img" aria-label="waveform">`, w, h, w, h)
	b.WriteString(`<rect width="100%" height="100%" fill="#f3f5f8"/>`)
	fmt.Fprintf(&b, `<line x1="0" y1="%d" x2="%d" y2="%d" stroke="#c9d1dc" stroke-width="1"/>`, h/2, w, h/2)
	if len(pcm) > 0 {
		peaks := make([]int, waveformBars)
		// Scaled to the loudest column (phone audio is quiet), but never
		// so much that near-silence fills the picture.
		top := 2000
		for i := range peaks {
			lo, hi := i*len(pcm)/waveformBars, (i+1)*len(pcm)/waveformBars
			for _, v := range pcm[lo:hi] {
				peaks[i] = max(peaks[i], abs(int(v)))
			}
			top = max(top, peaks[i])
		}
		b.WriteString(`<path fill="#2f6fb3" d="`)
		colW := float64(w) / waveformBars
		for i, peak := range peaks {
			// At least one unit tall, so silence still shows a line.
			bar := max(1, peak*(h-4)/top)
			x := float64(i) * colW
			fmt.Fprintf(&b, "M%.1f %dh%.1fv%dh-%.1fz", x+0.5, (h-bar)/2, colW-1, bar, colW-1)
		}
		b.WriteString(`"/>`)
	}
	b.WriteString(`</svg>`)
	return b.Bytes()
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// waveformCache is a small LRU of rendered pictures by media key (message
// audio never changes once visible, so an entry never goes stale).
type waveformCache struct {
	mu    sync.Mutex
	order *lru.List // front = most recent; values are string keys
	items map[string]*lru.Element
	svg   map[string][]byte
}

func newWaveformCache() *waveformCache {
	return &waveformCache{order: lru.New(), items: map[string]*lru.Element{}, svg: map[string][]byte{}}
}

func (c *waveformCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return c.svg[key], true
}

func (c *waveformCache) put(key string, svg []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
		c.svg[key] = svg
		return
	}
	c.items[key] = c.order.PushFront(key)
	c.svg[key] = svg
	for c.order.Len() > waveformCacheSize {
		old := c.order.Remove(c.order.Back()).(string)
		delete(c.items, old)
		delete(c.svg, old)
	}
}

// getWaveform serves the message's waveform as SVG, with the audio's
// authorization (bearer token or signed link).
func (s *Server) getWaveform(w http.ResponseWriter, r *http.Request, p principal) error {
	m, _, err := s.message(r, p)
	if err != nil {
		return err
	}
	svg, ok := s.waveforms.get(m.MediaKey)
	if !ok {
		f, err := s.cfg.Blobs.Open(m.MediaKey)
		if errors.Is(err, store.ErrNotFound) {
			return notFound("audio of message " + m.ID)
		}
		if err != nil {
			return err
		}
		pcm, err := media.ReadWAV(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("waveform of %s: %w", m.ID, err)
		}
		svg = waveformSVG(pcm)
		s.waveforms.put(m.MediaKey, svg)
	}
	etag := `"wf-` + m.ID + `-` + strconv.FormatInt(m.Size, 10) + `"`
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "private, max-age=86400")
	w.Header().Set("ETag", etag)
	// The picture is data, never a document: no script, no embedding.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	_, _ = w.Write(svg)
	return nil
}
