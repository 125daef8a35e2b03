// Package migrate copies a voicemail installation from one store and media
// store to another (e.g. SQLite + folder to PostgreSQL + S3) through the
// store.Store and store.Blobs interfaces, so any pair of backends works.
//
// The copy is idempotent and resumable: what the target already has is
// skipped, so an interrupted run is simply run again. A message's audio is
// copied before its row, as on a deposit, so the target never lists a
// message whose audio is missing. See docs/object-storage.md.
package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/vmserver/voicemail/store"
)

// GreetingKinds are the greetings a mailbox may have.
var GreetingKinds = []string{"unavailable", "busy", "temporary", "name"}

// Options name the source and the target.
type Options struct {
	From      store.Store
	FromMedia store.Blobs
	To        store.Store
	ToMedia   store.Blobs
	Workers   int // messages copied in parallel (default 4)
	// Progress, when set, is called after each message, one call at a
	// time, with Done increasing.
	Progress func(Progress)
	Logger   *slog.Logger
}

// Progress is the message copy's advance.
type Progress struct {
	Done, Total int64 // messages handled (copied or already there) of all
	Bytes       int64 // audio bytes copied so far
}

// Count is what one kind of object came to: copied now, or found in the
// target already (an earlier run, or the same data).
type Count struct{ Copied, Present int }

// Report is the outcome of a run.
type Report struct {
	Tenants, Mailboxes, Greetings, Messages, Webhooks Count
	Bytes                                             int64 // audio bytes copied
}

// Copied is the number of objects this run wrote.
func (r Report) Copied() int {
	return r.Tenants.Copied + r.Mailboxes.Copied + r.Greetings.Copied + r.Messages.Copied + r.Webhooks.Copied
}

type run struct {
	o      Options
	rep    Report
	mu     sync.Mutex // rep.Messages and progress
	done   atomic.Int64
	bytes  atomic.Int64
	total  int64
	logger *slog.Logger
}

// Run copies everything and then checks that every source message is in
// the target with audio of the same size.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.From == nil || o.To == nil || o.FromMedia == nil || o.ToMedia == nil {
		return Report{}, errors.New("migrate: source and target store and media are required")
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	r := &run{o: o, logger: o.Logger}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	tenants, err := o.From.ListTenants(ctx)
	if err != nil {
		return r.rep, fmt.Errorf("migrate: list tenants: %w", err)
	}
	var boxes []store.Mailbox
	for _, t := range tenants {
		if err := r.tenant(ctx, t); err != nil {
			return r.rep, err
		}
		mbs, err := listMailboxes(ctx, o.From, t.Name)
		if err != nil {
			return r.rep, err
		}
		// Groups list personal mailboxes as members: those first.
		slices.SortStableFunc(mbs, func(a, b store.Mailbox) int {
			return boolInt(a.Type == store.TypeGroup) - boolInt(b.Type == store.TypeGroup)
		})
		boxes = append(boxes, mbs...)
	}
	for _, mb := range boxes {
		if err := r.mailbox(ctx, mb); err != nil {
			return r.rep, err
		}
		c, err := o.From.CountMessages(ctx, mb.Tenant, mb.Number)
		if err != nil {
			return r.rep, fmt.Errorf("migrate: count messages of %s/%s: %w", mb.Tenant, mb.Number, err)
		}
		r.total += int64(c.New + c.Old)
	}
	for _, mb := range boxes {
		if err := r.greetings(mb); err != nil {
			return r.rep, err
		}
	}
	for _, t := range tenants {
		if err := r.messages(ctx, t.Name); err != nil {
			return r.rep, err
		}
	}
	if err := r.webhooks(ctx); err != nil {
		return r.rep, err
	}
	r.rep.Bytes = r.bytes.Load()
	if err := Verify(ctx, o); err != nil {
		return r.rep, err
	}
	return r.rep, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (r *run) tenant(ctx context.Context, t store.Tenant) error {
	_, err := r.o.To.GetTenant(ctx, t.Name)
	switch {
	case err == nil:
		r.rep.Tenants.Present++
	case errors.Is(err, store.ErrNotFound):
		if err := r.o.To.CreateTenant(ctx, &store.Tenant{Name: t.Name, Domains: t.Domains}); err != nil && !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("migrate: tenant %s: %w", t.Name, err)
		}
		r.rep.Tenants.Copied++
	default:
		return fmt.Errorf("migrate: tenant %s: %w", t.Name, err)
	}
	days, ok, err := r.o.From.TenantRetention(ctx, t.Name)
	if err != nil {
		return fmt.Errorf("migrate: tenant %s retention: %w", t.Name, err)
	}
	if ok {
		if err := r.o.To.SetTenantRetention(ctx, t.Name, days); err != nil {
			return fmt.Errorf("migrate: tenant %s retention: %w", t.Name, err)
		}
	}
	return nil
}

func listMailboxes(ctx context.Context, st store.Store, tenant string) ([]store.Mailbox, error) {
	var all []store.Mailbox
	after := ""
	for {
		items, next, err := st.ListMailboxes(ctx, tenant, after, 500)
		if err != nil {
			return nil, fmt.Errorf("migrate: list mailboxes of %s: %w", tenant, err)
		}
		all = append(all, items...)
		if next == "" {
			return all, nil
		}
		after = next
	}
}

// mailbox creates the mailbox in the target, or brings an existing one up
// to date (a re-run after the source changed).
func (r *run) mailbox(ctx context.Context, mb store.Mailbox) error {
	where := mb.Tenant + "/" + mb.Number
	cur, err := r.o.To.GetMailbox(ctx, mb.Tenant, mb.Number)
	switch {
	case errors.Is(err, store.ErrNotFound):
		m := mb
		if err := r.o.To.CreateMailbox(ctx, &m); err != nil {
			return fmt.Errorf("migrate: mailbox %s: %w", where, err)
		}
		r.rep.Mailboxes.Copied++
		return nil
	case err != nil:
		return fmt.Errorf("migrate: mailbox %s: %w", where, err)
	}
	a, b := mb, *cur
	a.CreatedAt, a.UpdatedAt = b.CreatedAt, b.UpdatedAt // the target's own times
	if sameMailbox(a, b) {
		r.rep.Mailboxes.Present++
		return nil
	}
	m := mb
	if err := r.o.To.UpdateMailbox(ctx, &m); err != nil {
		return fmt.Errorf("migrate: update mailbox %s: %w", where, err)
	}
	r.rep.Mailboxes.Copied++
	return nil
}

func sameMailbox(a, b store.Mailbox) bool {
	// nil and empty lists are the same in a database.
	eq := func(x, y []string) bool { return len(x) == 0 && len(y) == 0 || slices.Equal(x, y) }
	if !eq(a.Members, b.Members) || !eq(a.MWITargets, b.MWITargets) {
		return false
	}
	a.Members, b.Members, a.MWITargets, b.MWITargets = nil, nil, nil, nil
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// greetings copies each greeting whose content differs in the target.
func (r *run) greetings(mb store.Mailbox) error {
	for _, kind := range GreetingKinds {
		key := store.GreetingKey(mb.Tenant, mb.Number, kind)
		src, err := readAll(r.o.FromMedia, key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("migrate: greeting %s: %w", key, err)
		}
		dst, err := readAll(r.o.ToMedia, key)
		if err == nil && bytes.Equal(src, dst) {
			r.rep.Greetings.Present++
			continue
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("migrate: greeting %s in the target: %w", key, err)
		}
		if err := r.o.ToMedia.Put(key, bytes.NewReader(src)); err != nil {
			return fmt.Errorf("migrate: greeting %s: %w", key, err)
		}
		r.bytes.Add(int64(len(src)))
		r.rep.Greetings.Copied++
	}
	return nil
}

func readAll(b store.Blobs, key string) ([]byte, error) {
	f, err := b.Open(key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// messages copies a tenant's messages with o.Workers workers.
func (r *run) messages(ctx context.Context, tenant string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan store.Message)
	var wg sync.WaitGroup
	for range r.o.Workers {
		wg.Go(func() {
			for m := range work {
				if err := r.message(ctx, m); err != nil {
					cancel(err)
				}
			}
		})
	}
	err := func() error {
		defer close(work)
		after := ""
		for {
			items, next, err := r.o.From.ListMessages(ctx, store.MessageFilter{Tenant: tenant, After: after, Limit: 500})
			if err != nil {
				return fmt.Errorf("migrate: list messages of %s: %w", tenant, err)
			}
			for _, m := range items {
				select {
				case work <- m:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			}
			if next == "" {
				return nil
			}
			after = next
		}
	}()
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// message copies the audio (unless the target has it, same size), then
// the row with its ID, folder, flags and times.
func (r *run) message(ctx context.Context, m store.Message) error {
	where := m.Tenant + "/" + m.Mailbox + "/" + m.ID
	_, err := r.o.To.GetMessage(ctx, m.Tenant, m.Mailbox, m.ID)
	present := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("migrate: message %s: %w", where, err)
	}
	srcSize, err := r.o.FromMedia.Stat(m.MediaKey)
	if err != nil {
		return fmt.Errorf("migrate: message %s: source audio: %w", where, err)
	}
	if dstSize, err := r.o.ToMedia.Stat(m.MediaKey); err != nil || dstSize != srcSize {
		if err := r.copyBlob(m.MediaKey); err != nil {
			return fmt.Errorf("migrate: message %s: %w", where, err)
		}
	}
	if !present {
		cp := m
		if err := r.o.To.CreateMessage(ctx, &cp); err != nil && !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("migrate: message %s: %w", where, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if present {
		r.rep.Messages.Present++
	} else {
		r.rep.Messages.Copied++
	}
	if r.o.Progress != nil {
		r.o.Progress(Progress{Done: r.done.Add(1), Total: r.total, Bytes: r.bytes.Load()})
	}
	return nil
}

func (r *run) copyBlob(key string) error {
	src, err := r.o.FromMedia.Open(key)
	if err != nil {
		return fmt.Errorf("open audio: %w", err)
	}
	defer src.Close()
	cr := &countReader{r: src}
	if err := r.o.ToMedia.Put(key, cr); err != nil {
		return fmt.Errorf("copy audio: %w", err)
	}
	r.bytes.Add(cr.n)
	return nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (r *run) webhooks(ctx context.Context) error {
	hooks, err := r.o.From.ListWebhooks(ctx, "")
	if err != nil {
		return fmt.Errorf("migrate: list webhooks: %w", err)
	}
	for _, h := range hooks {
		_, err := r.o.To.GetWebhook(ctx, h.Tenant, h.ID)
		switch {
		case err == nil:
			r.rep.Webhooks.Present++
		case errors.Is(err, store.ErrNotFound):
			cp := h
			if err := r.o.To.CreateWebhook(ctx, &cp); err != nil {
				return fmt.Errorf("migrate: webhook %s: %w", h.ID, err)
			}
			r.rep.Webhooks.Copied++
		default:
			return fmt.Errorf("migrate: webhook %s: %w", h.ID, err)
		}
	}
	return nil
}

// Verify checks that every mailbox and message of the source is in the
// target, each message with audio of the source's size.
func Verify(ctx context.Context, o Options) error {
	tenants, err := o.From.ListTenants(ctx)
	if err != nil {
		return fmt.Errorf("migrate: verify: %w", err)
	}
	var missing []string
	var n int
	for _, t := range tenants {
		mbs, err := listMailboxes(ctx, o.From, t.Name)
		if err != nil {
			return err
		}
		for _, mb := range mbs {
			if _, err := o.To.GetMailbox(ctx, t.Name, mb.Number); err != nil {
				missing = append(missing, "mailbox "+t.Name+"/"+mb.Number)
			}
		}
		after := ""
		for {
			items, next, err := o.From.ListMessages(ctx, store.MessageFilter{Tenant: t.Name, After: after, Limit: 500})
			if err != nil {
				return fmt.Errorf("migrate: verify: %w", err)
			}
			for _, m := range items {
				n++
				if _, err := o.To.GetMessage(ctx, m.Tenant, m.Mailbox, m.ID); err != nil {
					missing = append(missing, "message "+m.Tenant+"/"+m.Mailbox+"/"+m.ID)
					continue
				}
				ss, serr := o.FromMedia.Stat(m.MediaKey)
				ds, derr := o.ToMedia.Stat(m.MediaKey)
				if serr != nil || derr != nil || ss != ds {
					missing = append(missing, "audio "+m.MediaKey)
				}
			}
			if next == "" {
				break
			}
			after = next
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("migrate: verify: %d of %d messages or mailboxes missing in the target, e.g. %s", len(missing), n, missing[0])
	}
	return nil
}
