package sip

import (
	"context"
	"log/slog"
	"slices"
)

// sipgoLogger is the logger sipgo's layers get: our handler, with one value
// per key. sipgo adds "caller" at every layer (TransportLayer, then
// Transport<UDP>); a log line must carry each key once, the innermost wins.
func sipgoLogger(l *slog.Logger) *slog.Logger {
	return slog.New(uniqueKeys{h: l.Handler(), attrs: []slog.Attr{slog.String("component", "sipgo")}})
}

// uniqueKeys holds the attributes added with With until a record is
// written, replacing an earlier value of the same key.
type uniqueKeys struct {
	h     slog.Handler
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
	return uniqueKeys{h: u.h, attrs: out}
}

func (u uniqueKeys) WithGroup(name string) slog.Handler {
	return u.h.WithAttrs(u.attrs).WithGroup(name)
}

func (u uniqueKeys) Handle(ctx context.Context, r slog.Record) error {
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
