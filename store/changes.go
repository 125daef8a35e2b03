package store

import (
	"context"
	"sync"
	"time"
)

// ChangeKind names a change; the values are the event types of SPEC §8.
type ChangeKind string

// The changes the store reports.
const (
	MessageCreated ChangeKind = "message_created"
	MessageUpdated ChangeKind = "message_updated"
	MessageDeleted ChangeKind = "message_deleted"
	MailboxCreated ChangeKind = "mailbox_created"
	MailboxUpdated ChangeKind = "mailbox_updated"
	MailboxDeleted ChangeKind = "mailbox_deleted"
)

// Change is one committed change. Every store operation that changes a
// mailbox or its counts produces exactly one, after it committed, so MWI,
// events (SSE, webhooks) and mail all follow from the same path.
type Change struct {
	Kind        ChangeKind
	Tenant      string
	Mailbox     string   // the mailbox number
	MailboxType string   // "personal" or "group"
	Members     []string // a group mailbox's members (whose phones also light)
	Message     *Message // for message changes
	MailboxObj  *Mailbox // for mailbox changes (the deleted one for MailboxDeleted)
	At          time.Time
}

// Changes fans committed changes out to subscribers. Subscribers run on
// the goroutine of the change and must not block: they queue and return.
type Changes struct {
	mu   sync.RWMutex
	next int
	subs map[int]func(Change)
}

// NewChanges returns an empty bus.
func NewChanges() *Changes { return &Changes{subs: map[int]func(Change){}} }

// Subscribe calls f for every change from now on; cancel stops it.
func (c *Changes) Subscribe(f func(Change)) (cancel func()) {
	c.mu.Lock()
	id := c.next
	c.next++
	c.subs[id] = f
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.subs, id)
		c.mu.Unlock()
	}
}

// Publish delivers ch to every subscriber.
func (c *Changes) Publish(ch Change) {
	if ch.At.IsZero() {
		ch.At = time.Now().UTC()
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, f := range c.subs {
		f(ch)
	}
}

// Notifying wraps st so that every successful change is published on bus.
// Use the wrapped store everywhere (IVR, API, GDPR, retention): there is no
// other way to change a count.
func Notifying(st Store, bus *Changes) Store { return &notifying{Store: st, bus: bus} }

type notifying struct {
	Store
	bus *Changes
}

// publish completes ch with the mailbox's type and members.
func (n *notifying) publish(ctx context.Context, ch Change) {
	mb := ch.MailboxObj
	if mb == nil {
		if m, err := n.Store.GetMailbox(ctx, ch.Tenant, ch.Mailbox); err == nil {
			mb = m
		}
	}
	if mb != nil {
		ch.MailboxType, ch.Members = mb.Type, mb.Members
	}
	n.bus.Publish(ch)
}

func (n *notifying) CreateMailbox(ctx context.Context, m *Mailbox) error {
	if err := n.Store.CreateMailbox(ctx, m); err != nil {
		return err
	}
	n.publish(ctx, Change{Kind: MailboxCreated, Tenant: m.Tenant, Mailbox: m.Number, MailboxObj: m})
	return nil
}

func (n *notifying) UpdateMailbox(ctx context.Context, m *Mailbox) error {
	if err := n.Store.UpdateMailbox(ctx, m); err != nil {
		return err
	}
	n.publish(ctx, Change{Kind: MailboxUpdated, Tenant: m.Tenant, Mailbox: m.Number, MailboxObj: m})
	return nil
}

func (n *notifying) DeleteMailbox(ctx context.Context, tenant, number string) ([]Message, error) {
	mb, err := n.Store.GetMailbox(ctx, tenant, number)
	if err != nil {
		return nil, err
	}
	msgs, err := n.Store.DeleteMailbox(ctx, tenant, number)
	if err != nil {
		return nil, err
	}
	n.publish(ctx, Change{Kind: MailboxDeleted, Tenant: tenant, Mailbox: number, MailboxObj: mb})
	return msgs, nil
}

func (n *notifying) CreateMessage(ctx context.Context, m *Message) error {
	if err := n.Store.CreateMessage(ctx, m); err != nil {
		return err
	}
	n.publish(ctx, Change{Kind: MessageCreated, Tenant: m.Tenant, Mailbox: m.Mailbox, Message: m})
	return nil
}

func (n *notifying) UpdateMessage(ctx context.Context, m *Message) error {
	if err := n.Store.UpdateMessage(ctx, m); err != nil {
		return err
	}
	n.publish(ctx, Change{Kind: MessageUpdated, Tenant: m.Tenant, Mailbox: m.Mailbox, Message: m})
	return nil
}

func (n *notifying) DeleteMessage(ctx context.Context, tenant, mailbox, id string) (*Message, error) {
	m, err := n.Store.DeleteMessage(ctx, tenant, mailbox, id)
	if err != nil {
		return nil, err
	}
	n.publish(ctx, Change{Kind: MessageDeleted, Tenant: tenant, Mailbox: mailbox, Message: m})
	return m, nil
}

// ForgetCaller publishes message_deleted for every hidden message (SPEC §9:
// they leave the counts, MWI and events at once).
func (n *notifying) ForgetCaller(ctx context.Context, f Forget) ([]Message, error) {
	msgs, err := n.Store.ForgetCaller(ctx, f)
	if err != nil {
		return nil, err
	}
	n.publishMessages(ctx, MessageDeleted, msgs)
	return msgs, nil
}

// UndoForget publishes message_created for every restored message. The
// purge (PurgeForgotten) publishes nothing: those messages were already gone.
func (n *notifying) UndoForget(ctx context.Context, tenant, e164, phoneHash string) ([]Message, error) {
	msgs, err := n.Store.UndoForget(ctx, tenant, e164, phoneHash)
	if err != nil {
		return nil, err
	}
	n.publishMessages(ctx, MessageCreated, msgs)
	return msgs, nil
}

// publishMessages publishes one change per message, looking each mailbox up once.
func (n *notifying) publishMessages(ctx context.Context, kind ChangeKind, msgs []Message) {
	type key struct{ tenant, number string }
	boxes := map[key]*Mailbox{}
	for i := range msgs {
		k := key{msgs[i].Tenant, msgs[i].Mailbox}
		mb, seen := boxes[k]
		if !seen {
			mb, _ = n.Store.GetMailbox(ctx, k.tenant, k.number) // nil when gone
			boxes[k] = mb
		}
		ch := Change{Kind: kind, Tenant: k.tenant, Mailbox: k.number, Message: &msgs[i]}
		if mb != nil {
			ch.MailboxType, ch.Members = mb.Type, mb.Members
		}
		n.bus.Publish(ch)
	}
}
