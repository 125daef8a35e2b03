package sip

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// Malformed input is logged, but never so much that a sender can flood
// the log with it (docs/sip.md): at most malformedPerSecond lines per
// source each second, each with at most malformedBytes of the input. The
// counter voicemail_sip_malformed_total counts every one.
const (
	malformedPerSecond = 5
	malformedBytes     = 200
	malformedSources   = 4096 // sources remembered per second; beyond, the window restarts
)

// malformedLog rewrites sipgo's "failed to parse" lines. sipgo v1.7.2
// does not put the source on that line; over UDP the read filter notes the
// source of each datagram just before sipgo parses it on the same
// goroutine, so the source is known. Over TCP and TLS it is not (one
// goroutine per connection); those lines share one budget per transport,
// and the connection cap per source bounds what one source can send.
type malformedLog struct {
	count   prometheus.Counter
	lastUDP atomic.Pointer[net.UDPAddr]

	mu      sync.Mutex
	second  time.Time
	lines   map[string]int // per source in this second
	dropped int            // lines not written since the last one written
}

func newMalformedLog() *malformedLog {
	return &malformedLog{lines: map[string]int{},
		count: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "voicemail_sip_malformed_total",
			Help: "SIP messages that could not be parsed (logged at most 5 times per second per source).",
		})}
}

// readFilter is sipgo's hook before every parse: it notes a datagram's
// source.
func (m *malformedLog) readFilter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	if a, ok := p.RemoteAddr.(*net.UDPAddr); ok {
		m.lastUDP.Store(a)
	}
	return data, nil
}

// handle writes r, one of sipgo's parse failures, as a short warning, or
// nothing when its source has used up this second's lines.
func (m *malformedLog) handle(ctx context.Context, h slog.Handler, r slog.Record, transport string) error {
	m.count.Inc()
	source, key := "", strings.ToLower(transport)
	if transport == "UDP" {
		if a := m.lastUDP.Load(); a != nil {
			source, key = a.String(), a.IP.String()
		}
	}
	now := time.Now()
	m.mu.Lock()
	dropped := 0
	if now.Sub(m.second) >= time.Second || len(m.lines) >= malformedSources {
		m.second = now
		clear(m.lines)
		dropped, m.dropped = m.dropped, 0
	}
	m.lines[key]++
	write := m.lines[key] <= malformedPerSecond
	if !write {
		m.dropped++
	}
	m.mu.Unlock()
	if !write {
		return nil
	}
	var data, errText string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "data":
			data = a.Value.String()
		case "error":
			errText = a.Value.String()
		}
		return true
	})
	out := slog.NewRecord(r.Time, slog.LevelWarn, "malformed SIP message", r.PC)
	out.AddAttrs(slog.String("component", "sipgo"), slog.String("transport", transport))
	if source != "" {
		out.AddAttrs(slog.String("source", source))
	}
	out.AddAttrs(slog.Int("bytes", len(data)), slog.String("data", clip(data)), slog.String("err", clip(errText)))
	if dropped > 0 {
		out.AddAttrs(slog.Int("not_logged", dropped))
	}
	return h.Handle(ctx, out)
}

// clip cuts s to malformedBytes of valid UTF-8.
func clip(s string) string {
	s = redactKeys(s) // sdes.go: SDES keys never reach a log
	if len(s) > malformedBytes {
		s = s[:malformedBytes] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
