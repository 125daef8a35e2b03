package sip

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
)

// sipgoLogger is the logger sipgo's layers get: our handler, with one value
// per key. sipgo adds "caller" at every layer (TransportLayer, then
// Transport<UDP>); a log line must carry each key once, the innermost wins.
// Its parse failures go through mal (malformed.go).
func sipgoLogger(l *slog.Logger, mal *malformedLog) *slog.Logger {
	return slog.New(uniqueKeys{h: l.Handler(), mal: mal, attrs: []slog.Attr{slog.String("component", "sipgo")}})
}

// uniqueKeys holds the attributes added with With until a record is
// written, replacing an earlier value of the same key.
type uniqueKeys struct {
	h     slog.Handler
	mal   *malformedLog
	attrs []slog.Attr
}

func (u uniqueKeys) Enabled(ctx context.Context, l slog.Level) bool { return u.h.Enabled(ctx, l) }

func (u uniqueKeys) WithAttrs(as []slog.Attr) slog.Handler {
	out := slices.Clone(u.attrs)
	for _, a := range as {
		if i := slices.IndexFunc(out, func(b slog.Attr) bool { return b.Key == a.Key }); i >= 0 {
			out[i] = a
		} else {
			out = append(out, a)
		}
	}
	return uniqueKeys{h: u.h, mal: u.mal, attrs: out}
}

func (u uniqueKeys) WithGroup(name string) slog.Handler {
	return u.h.WithAttrs(u.attrs).WithGroup(name)
}

func (u uniqueKeys) Handle(ctx context.Context, r slog.Record) error {
	if u.mal != nil && r.Message == "failed to parse" {
		return u.mal.handle(ctx, u.h, r, u.transport())
	}
	if r.Message == "Read error" && idleTimeout(r) {
		// sip.tcp_idle_timeout at work (listener.go): routine, not an error.
		if !u.h.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r = slog.NewRecord(r.Time, slog.LevelDebug, "sip: idle connection closed", r.PC)
	}
	own := map[string]bool{}
	r.Attrs(func(a slog.Attr) bool { own[a.Key] = true; return true })
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	for _, a := range u.attrs {
		if !own[a.Key] {
			out.AddAttrs(a)
		}
	}
	r.Attrs(func(a slog.Attr) bool { out.AddAttrs(a); return true })
	return u.h.Handle(ctx, out)
}

// transport is the X of sipgo's "caller" attribute "Transport<X>".
func (u uniqueKeys) transport() string {
	for _, a := range u.attrs {
		if a.Key == "caller" {
			v := a.Value.String()
			if i, j := strings.Index(v, "<"), strings.LastIndex(v, ">"); i >= 0 && j > i {
				return v[i+1 : j]
			}
		}
	}
	return ""
}

// idleTimeout reports whether r's "error" is a read deadline that passed.
func idleTimeout(r slog.Record) bool {
	idle := false
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && a.Key == "error" {
			idle = errors.Is(err, os.ErrDeadlineExceeded)
		}
		return true
	})
	return idle
}
