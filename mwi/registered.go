package mwi

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	vsip "github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/store"
)

// RegisteredStore is what the NOTIFYs to registered phones read.
type RegisteredStore interface {
	ListSIPRegistrations(ctx context.Context, tenant, mailbox string, now time.Time) ([]store.SIPRegistration, error)
	CountMessages(ctx context.Context, tenant, mailbox string) (store.Counts, error)
	GetTenant(ctx context.Context, name string) (*store.Tenant, error)
	ClaimSIPRegistrationNotify(ctx context.Context, tenant, mailbox, contact, eventID string) (bool, error)
}

// registeredTimeout bounds one NOTIFY: a UDP transaction times out after
// 64*T1 = 32 s (RFC 3261 §17.1.2.2).
const registeredTimeout = 40 * time.Second

// Registered sends unsolicited NOTIFYs (Subscription-State: active, a new
// Call-ID each) to the contacts a phone REGISTERed for its mailbox
// (sip/register.go), as Asterisk does for a peer with mailbox=: once when
// it registers, then whenever the mailbox's messages change, until the
// binding expires. Bindings live in the store, so any instance sends them.
type Registered struct {
	srv     *vsip.Server
	st      RegisteredStore
	changes *store.Changes
	log     *slog.Logger

	mu     sync.Mutex
	cancel func()
	wg     sync.WaitGroup
	ctx    context.Context
	stop   context.CancelFunc
}

// NewRegistered builds the sender; Start runs it.
func NewRegistered(srv *vsip.Server, st RegisteredStore, changes *store.Changes, log *slog.Logger) *Registered {
	ctx, stop := context.WithCancel(context.Background())
	return &Registered{srv: srv, st: st, changes: changes, log: log, ctx: ctx, stop: stop}
}

// Start follows the change bus and the server's new registrations.
func (r *Registered) Start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cancel = r.changes.Subscribe(r.onChange)
	r.srv.HandleRegistered(func(reg store.SIPRegistration) {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.notifyOne(reg)
		}()
	})
}

// Stop ends the NOTIFYs in flight and waits for them.
func (r *Registered) Stop() {
	r.mu.Lock()
	if r.cancel != nil {
		r.cancel()
	}
	r.mu.Unlock()
	r.stop()
	r.wg.Wait()
}

func (r *Registered) onChange(ch store.Change) {
	switch ch.Kind {
	case store.MessageCreated, store.MessageUpdated, store.MessageDeleted:
	default:
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	regs, err := r.st.ListSIPRegistrations(ctx, ch.Tenant, ch.Mailbox, time.Now())
	if err != nil {
		r.log.Error("mwi: listing registrations", "tenant", ch.Tenant, "mailbox", ch.Mailbox, "err", err)
		return
	}
	for _, reg := range regs {
		// Every instance hears the change; the first to claim it sends.
		if ch.EventID != "" {
			ok, err := r.st.ClaimSIPRegistrationNotify(ctx, reg.Tenant, reg.Mailbox, reg.Contact, ch.EventID)
			if err != nil {
				r.log.Error("mwi: claiming a registered NOTIFY", "tenant", reg.Tenant, "mailbox", reg.Mailbox, "err", err)
				continue
			}
			if !ok {
				continue
			}
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.notifyOne(reg)
		}()
	}
}

// notifyOne sends the mailbox's current counts to one registered contact.
func (r *Registered) notifyOne(reg store.SIPRegistration) {
	ctx, cancel := context.WithTimeout(r.ctx, registeredTimeout)
	defer cancel()
	log := r.log.With("tenant", reg.Tenant, "mailbox", reg.Mailbox, "contact", reg.Contact)
	c, err := r.st.CountMessages(ctx, reg.Tenant, reg.Mailbox)
	if err != nil {
		log.Error("mwi registered: counting messages", "err", err)
		return
	}
	req, err := r.request(ctx, reg, c)
	if err != nil {
		log.Warn("mwi registered: unusable contact", "err", err)
		return
	}
	res, err := r.srv.Do(ctx, req)
	voice := voiceCounts(c)
	switch {
	case err != nil:
		log.Info("mwi registered NOTIFY not answered", "voice", voice, "err", err)
	case res.StatusCode >= 300:
		log.Info("mwi registered NOTIFY refused", "voice", voice, "status", res.StatusCode)
	default:
		log.Info("mwi registered NOTIFY sent", "voice", voice, "status", res.StatusCode)
	}
}

// request builds the out-of-dialog NOTIFY: to the Contact, through the
// registration's Path (RFC 3327 §5.3), back to the address the REGISTER
// came from (the phone may be behind NAT).
func (r *Registered) request(ctx context.Context, reg store.SIPRegistration, c store.Counts) (*sip.Request, error) {
	var target sip.Uri
	if err := sip.ParseUri(reg.Contact, &target); err != nil {
		return nil, fmt.Errorf("contact %q: %w", reg.Contact, err)
	}
	host := r.srv.PublicIP().String()
	if t, err := r.st.GetTenant(ctx, reg.Tenant); err == nil && len(t.Domains) > 0 {
		host = t.Domains[0]
	}
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: reg.Mailbox, Host: host}, Params: sip.NewParams()}
	from.Params.Add("tag", vsip.NewTag())
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: reg.Mailbox, Host: host}, Params: sip.NewParams()}
	transport := reg.Transport
	if transport == "" {
		transport = "udp"
	}
	dl := vsip.InDialog{Target: target, From: from, To: to, CallID: vsip.NewTag() + vsip.NewTag() + "@" + r.srv.PublicIP().String(),
		CSeq: 1, Routes: reg.Path, Transport: transport}
	if reg.Source != "" && (!sip.IsReliable(transport) || r.srv.Connected(transport, reg.Source)) {
		dl.Source = reg.Source
	}
	user := reg.Mailbox
	if an := r.srv.AccessNumbers(); len(an) > 0 {
		user = an[0]
	}
	return r.srv.Request(sip.NOTIFY, dl, MWIBody("sip:"+user+"@"+host, c),
		sip.NewHeader("Event", mwiEvent),
		sip.NewHeader("Subscription-State", "active"),
		sip.NewHeader("Content-Type", mwiContentType)), nil
}
