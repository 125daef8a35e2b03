// Package mail sends the email notification of docs/email.md: one mail per new
// message to the mailbox's email list, with the WAV attached when the
// mailbox asks for it, through a durable outbox.
//
// The flow: the store's change bus reports message_created (after the
// audio is durable); the bus callback only queues the message in memory and
// wakes the intake goroutine, which writes an outbox row (one per message,
// with the mailbox's recipient list) and wakes the sender. The sender sends
// every due row with github.com/wneessen/go-mail; a failure is recorded on
// the row and retried with exponential back-off; a row stays until the SMTP
// server accepted the mail, so a restart resumes the outbox. Only then, for
// delete_after_email, is the message deleted (through the notifying store,
// so MWI and events follow) and its WAV removed.
//
// A crash between a message's commit and its outbox row (or a message that
// the start-up recovery finalized before the notifier subscribed) is caught
// by the reconciliation at start: messages of the last day in mailboxes
// with email that have no outbox row are queued. Sent rows are therefore
// kept for two days before they are purged.
//
// Delivery is at least once: a crash after the server accepted a mail but
// before the row was marked sent sends it again after the restart, with the
// same Message-ID.
package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	netmail "net/mail"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/vmserver/voicemail/store"
)

const (
	// reconcileWindow is how far back the start-up reconciliation looks.
	reconcileWindow = 24 * time.Hour
	// keepSent is how long sent rows stay (longer than reconcileWindow).
	keepSent = 48 * time.Hour
	// batch is how many due rows the sender claims at a time: one, so
	// that a stop leaves at most the mail in flight leased (and delayed by
	// up to claimLease), as a failed attempt would be.
	batch = 1
	// claimLease is how long a claimed row stays invisible to the other
	// instances' senders: longer than one delivery (dial and each SMTP
	// command are bounded by sendTimeout). A sender that dies leaves it
	// due again after the lease (the mail keeps its Message-ID).
	claimLease = 5 * time.Minute
	// idleCheck bounds how long the sender sleeps (purge, and a safety net
	// for a missed wake-up).
	idleCheck = time.Minute
	// sendTimeout bounds one SMTP conversation step (dial, each command).
	sendTimeout = 30 * time.Second
	// stopWait bounds how long Stop waits for a send in progress.
	stopWait = 5 * time.Second
)

// Config configures a Notifier.
type Config struct {
	Host     string
	Port     int
	TLS      string // "none", "starttls" (required) or "tls" (implicit)
	Username string // empty = no SMTP AUTH
	Password string
	From     string

	// SubjectTemplate and BodyTemplate are Go text/templates over Data:
	// inline text, or "@path" to read a file; "" = DefaultSubject/DefaultBody.
	SubjectTemplate, BodyTemplate string
	// PublicURL is the base of the audio link (e.g. http://127.0.0.1:8080).
	PublicURL string
	// RetryBase is the delay after the first failure; it doubles with every
	// further failure up to RetryMax. Defaults 1 min and 1 h.
	RetryBase, RetryMax time.Duration
}

// Store is what the notifier reads and writes: its outbox, the messages
// and mailboxes it mails about.
type Store interface {
	store.MailStore
	GetMailbox(ctx context.Context, tenant, number string) (*store.Mailbox, error)
	GetMessage(ctx context.Context, tenant, mailbox, id string) (*store.Message, error)
	DeleteMessage(ctx context.Context, tenant, mailbox, id string) (*store.Message, error)
}

// Deps are the collaborators of the notifier.
type Deps struct {
	Store   Store          // the notifying store (deletes publish their change)
	Changes *store.Changes // the bus the store publishes on
	Blobs   store.Blobs
	Logger  *slog.Logger
}

// Notifier turns new messages into mails.
type Notifier struct {
	cfg    Config
	deps   Deps
	st     Store
	blobs  store.Blobs
	log    *slog.Logger
	tpl    templates
	client *gomail.Client
	m      *metrics

	mu       sync.Mutex
	incoming []store.Message // messages from the bus, not yet in the outbox
	intake   chan struct{}   // wakes the intake goroutine
	wake     chan struct{}   // wakes the sender

	cancelSub func()
	cancel    context.CancelFunc
	done      sync.WaitGroup
	stopOnce  sync.Once
}

// New checks the configuration and parses the templates; Start runs it.
func New(cfg Config, deps Deps) (*Notifier, error) {
	if deps.Store == nil || deps.Changes == nil || deps.Blobs == nil {
		return nil, errors.New("mail: Store, Changes and Blobs are required")
	}
	if cfg.Host == "" {
		return nil, errors.New("config key smtp.host: empty")
	}
	if cfg.From == "" {
		return nil, errors.New("config key smtp.from: required when smtp.host is set")
	}
	if _, err := netmail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("config key smtp.from: %w", err)
	}
	if cfg.Port == 0 {
		cfg.Port = 587
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Minute
	}
	if cfg.RetryMax < cfg.RetryBase {
		cfg.RetryMax = max(time.Hour, cfg.RetryBase)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	opts := []gomail.Option{gomail.WithPort(cfg.Port), gomail.WithTimeout(sendTimeout)}
	switch cfg.TLS {
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case "", "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "tls":
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		return nil, fmt.Errorf("config key smtp.tls: want none, starttls or tls, got %q", cfg.TLS)
	}
	if cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	client, err := gomail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("config key smtp.host: %w", err)
	}
	n := &Notifier{
		cfg: cfg, deps: deps, st: deps.Store, blobs: deps.Blobs, log: deps.Logger.With("component", "mail"),
		client: client, m: newMetrics(),
		intake: make(chan struct{}, 1), wake: make(chan struct{}, 1),
	}
	if n.tpl.subject, err = loadTemplate("smtp.subject_template", cfg.SubjectTemplate, DefaultSubject); err != nil {
		return nil, err
	}
	if n.tpl.body, err = loadTemplate("smtp.body_template", cfg.BodyTemplate, DefaultBody); err != nil {
		return nil, err
	}
	return n, nil
}

// Start subscribes to the bus and starts the intake and sender goroutines.
// Pending mails of a previous run are sent at once.
func (n *Notifier) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.cancelSub = n.deps.Changes.Subscribe(n.onChange)
	n.done.Add(2)
	go func() { defer n.done.Done(); n.runIntake(ctx) }()
	go func() { defer n.done.Done(); n.runSender(ctx) }()
	n.log.Info("email notification on", "smtp", fmt.Sprintf("%s:%d", n.cfg.Host, n.cfg.Port), "tls", n.cfg.TLS)
}

// Stop unsubscribes and stops the goroutines, waiting a little for a send
// in progress. What is not sent stays in the outbox for the next start.
func (n *Notifier) Stop() {
	n.stopOnce.Do(func() {
		if n.cancelSub == nil {
			return
		}
		n.cancelSub()
		n.cancel()
		done := make(chan struct{})
		go func() { n.done.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopWait):
			n.log.Warn("stopping while a mail is being sent; it stays queued")
		}
	})
}

// onChange runs on the publisher's goroutine: it only queues and signals.
func (n *Notifier) onChange(ch store.Change) {
	if ch.Kind != store.MessageCreated || ch.Message == nil {
		return
	}
	n.mu.Lock()
	n.incoming = append(n.incoming, *ch.Message)
	n.mu.Unlock()
	signal(n.intake)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// runIntake writes outbox rows for new messages. At start it first
// reconciles: recent messages in mailboxes with email but without a row.
func (n *Notifier) runIntake(ctx context.Context) {
	if msgs, err := n.st.UnmailedMessages(ctx, time.Now().Add(-reconcileWindow)); err != nil {
		n.log.Error("mail: cannot look for unmailed messages", "err", err)
	} else {
		if len(msgs) > 0 {
			n.log.Info("mail: queueing messages that have no mail yet", "count", len(msgs))
		}
		for i := range msgs {
			n.enqueue(ctx, &msgs[i])
		}
		signal(n.wake)
	}
	for {
		n.mu.Lock()
		batch := n.incoming
		n.incoming = nil
		n.mu.Unlock()
		for i := range batch {
			if ctx.Err() != nil {
				return
			}
			n.enqueue(ctx, &batch[i])
		}
		if len(batch) > 0 {
			signal(n.wake)
		}
		select {
		case <-ctx.Done():
			return
		case <-n.intake:
		}
	}
}

// enqueue writes the outbox row of one message, when its mailbox has email.
func (n *Notifier) enqueue(ctx context.Context, m *store.Message) {
	log := n.log.With("tenant", m.Tenant, "mailbox", m.Mailbox, "message_id", m.ID)
	var mb *store.Mailbox
	var err error
	for try := 0; ; try++ {
		if mb, err = n.st.GetMailbox(ctx, m.Tenant, m.Mailbox); err == nil || errors.Is(err, store.ErrNotFound) || try == 4 || ctx.Err() != nil {
			break
		}
		sleep(ctx, time.Duration(try+1)*200*time.Millisecond)
	}
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			// The reconciliation at the next start queues it.
			log.Error("mail: cannot read the mailbox; the mail is queued at the next start", "err", err)
		}
		return
	}
	rcpts := Recipients(mb.Email)
	if len(rcpts) == 0 {
		if strings.TrimSpace(mb.Email) != "" {
			log.Error("mail: the mailbox's email holds no valid address; no mail", "email", mb.Email)
		}
		return
	}
	row := &store.OutboxMail{MessageID: m.ID, Tenant: m.Tenant, Mailbox: m.Mailbox, Recipients: rcpts,
		AttachAudio: mb.AttachAudio, DeleteAfterEmail: mb.DeleteAfterEmail}
	for try := 0; ; try++ {
		err = n.st.EnqueueMail(ctx, row)
		if err == nil || errors.Is(err, store.ErrExists) || try == 4 || ctx.Err() != nil {
			break
		}
		sleep(ctx, time.Duration(try+1)*200*time.Millisecond)
	}
	switch {
	case err == nil:
		log.Info("mail queued", "recipients", len(rcpts), "attach_audio", row.AttachAudio, "delete_after_email", row.DeleteAfterEmail)
		n.updateQueued(ctx)
	case errors.Is(err, store.ErrExists):
	default:
		log.Error("mail: cannot queue; the mail is queued at the next start", "err", err)
	}
}

// Recipients splits a mailbox's email field (addresses separated by commas
// or semicolons) and keeps the valid addresses.
func Recipients(email string) []string {
	var out []string
	for _, part := range strings.FieldsFunc(email, func(r rune) bool { return r == ',' || r == ';' }) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if _, err := netmail.ParseAddress(part); err != nil {
			continue
		}
		out = append(out, part)
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// runSender sends due rows, then sleeps until the next one is due or a new
// row arrives.
func (n *Notifier) runSender(ctx context.Context) {
	var lastPurge time.Time
	n.updateQueued(ctx)
	for ctx.Err() == nil {
		if time.Since(lastPurge) > time.Hour {
			lastPurge = time.Now()
			if k, err := n.st.PurgeSentMail(ctx, time.Now().Add(-keepSent)); err != nil {
				n.log.Warn("mail: purge of sent rows failed", "err", err)
			} else if k > 0 {
				n.log.Debug("mail: purged sent rows", "count", k)
			}
		}
		// Claimed, not just read: with several instances on one
		// PostgreSQL database each mail goes out once (store/claims.go).
		rows, err := n.st.ClaimMail(ctx, time.Now(), claimLease, batch)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Error("mail: cannot read the outbox", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		for i := range rows {
			if ctx.Err() != nil {
				return
			}
			n.deliver(ctx, &rows[i])
		}
		if len(rows) > 0 {
			n.updateQueued(ctx)
		}
		if len(rows) == batch {
			continue
		}
		wait := idleCheck
		if next, err := n.st.NextMailAttempt(ctx); err == nil {
			wait = min(wait, time.Until(next))
		}
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-n.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (n *Notifier) updateQueued(ctx context.Context) {
	if k, err := n.st.PendingMail(ctx); err == nil {
		n.m.queued.Set(float64(k))
	}
}

// errGone means the message (or its mailbox) no longer exists.
var errGone = errors.New("message deleted")

// deliver makes one attempt at one row.
func (n *Notifier) deliver(ctx context.Context, row *store.OutboxMail) {
	log := n.log.With("tenant", row.Tenant, "mailbox", row.Mailbox, "message_id", row.MessageID, "attempt", row.Attempts+1)
	msg, mbox, mm, err := n.compose(ctx, row)
	if errors.Is(err, errGone) {
		log.Info("mail dropped: the message was deleted before it could be mailed")
		n.m.dropped.Inc()
		if err := n.st.DropMail(ctx, row.ID); err != nil {
			log.Error("mail: cannot drop the outbox row", "err", err)
		}
		return
	}
	if err != nil {
		n.fail(ctx, log, row, err)
		return
	}
	sendErr := n.client.DialAndSendWithContext(ctx, mm)
	// Delivered means the server answered 250 to the end of DATA; an error
	// after that (RSET, QUIT) does not make the mail undelivered.
	if !mm.IsDelivered() {
		if sendErr == nil {
			sendErr = errors.New("the server did not accept the mail")
		}
		n.fail(ctx, log, row, sendErr)
		return
	}
	if sendErr != nil {
		log.Warn("mail accepted; the SMTP session then failed", "err", sendErr)
	}
	n.m.sent.Inc()
	log.Info("mail sent", "recipients", len(row.Recipients), "attached", row.AttachAudio)

	// Deleting before marking the row sent: a crash in between leaves a
	// pending row whose message is gone, which the next start drops.
	if row.DeleteAfterEmail {
		if _, err := n.st.DeleteMessage(ctx, msg.Tenant, msg.Mailbox, msg.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			log.Error("delete_after_email: the message could not be deleted and is kept", "err", err)
		} else if err := n.blobs.Delete(msg.MediaKey); err != nil {
			log.Error("delete_after_email: the message's audio could not be removed", "err", err, "media_key", msg.MediaKey)
		} else {
			log.Info("message deleted after email", "mailbox_type", mbox.Type)
		}
	}
	if err := n.st.MarkMailSent(context.WithoutCancel(ctx), row.ID, time.Now()); err != nil {
		log.Error("mail: sent, but the outbox row could not be updated; it may be sent again", "err", err)
	}
}

// compose builds the mail of a row: templates, headers and attachment.
func (n *Notifier) compose(ctx context.Context, row *store.OutboxMail) (*store.Message, *store.Mailbox, *gomail.Msg, error) {
	msg, err := n.st.GetMessage(ctx, row.Tenant, row.Mailbox, row.MessageID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil, errGone
	}
	if err != nil {
		return nil, nil, nil, err
	}
	mb, err := n.st.GetMailbox(ctx, row.Tenant, row.Mailbox)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil, errGone
	}
	if err != nil {
		return nil, nil, nil, err
	}
	var wav []byte
	if row.AttachAudio {
		wav, err = n.readAudio(msg.MediaKey)
		if errors.Is(err, store.ErrNotFound) {
			// Deleted between the two reads? Then drop; else the audio of
			// a visible message is missing, which must not go unnoticed.
			if _, gerr := n.st.GetMessage(ctx, row.Tenant, row.Mailbox, row.MessageID); errors.Is(gerr, store.ErrNotFound) {
				return nil, nil, nil, errGone
			}
			return nil, nil, nil, fmt.Errorf("the message's audio %s is missing: %w", msg.MediaKey, err)
		}
		if err != nil {
			return nil, nil, nil, err
		}
	}
	subject, body, err := n.tpl.render(newData(n.cfg.PublicURL, mb, msg, row.AttachAudio))
	if err != nil {
		return nil, nil, nil, err
	}
	mm := gomail.NewMsg()
	if err := mm.From(n.cfg.From); err != nil {
		return nil, nil, nil, fmt.Errorf("from address: %w", err)
	}
	if err := mm.To(row.Recipients...); err != nil {
		return nil, nil, nil, fmt.Errorf("recipients: %w", err)
	}
	mm.Subject(subject)
	mm.SetDate()
	// A stable Message-ID: a mail sent twice (crash after acceptance) is
	// recognisable as one.
	mm.SetMessageIDWithValue("voicemail." + msg.ID + "@" + domainOf(n.cfg.From))
	mm.SetGenHeader("X-Voicemail-Message-Id", msg.ID)
	mm.SetGenHeader("X-Voicemail-Mailbox", mb.Number)
	if msg.Urgent {
		mm.SetImportance(gomail.ImportanceHigh)
	}
	mm.SetBodyString(gomail.TypeTextPlain, body)
	if row.AttachAudio {
		mm.AttachReadSeeker(attachmentName(mb, msg), bytes.NewReader(wav), gomail.WithFileContentType("audio/wav"))
	}
	return msg, mb, mm, nil
}

func (n *Notifier) readAudio(key string) ([]byte, error) {
	f, err := n.blobs.Open(key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return b, nil
}

// fail records a failed attempt and schedules the next one.
func (n *Notifier) fail(ctx context.Context, log *slog.Logger, row *store.OutboxMail, cause error) {
	n.m.failed.Inc()
	delay := backoff(n.cfg.RetryBase, n.cfg.RetryMax, row.Attempts)
	next := time.Now().Add(delay)
	log.Warn("mail not sent; will retry", "err", cause, "retry_in", delay.String())
	msg := cause.Error()
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	if err := n.st.RetryMail(context.WithoutCancel(ctx), row.ID, next, msg); err != nil && !errors.Is(err, store.ErrNotFound) {
		log.Error("mail: cannot record the failed attempt", "err", err)
	}
}

// backoff is base·2^failures, at most max.
func backoff(base, maxDelay time.Duration, failures int) time.Duration {
	d := base
	for i := 0; i < failures && d < maxDelay; i++ {
		d *= 2
	}
	return min(d, maxDelay)
}

func domainOf(from string) string {
	if a, err := netmail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok && d != "" {
			return d
		}
	}
	return "voicemail.invalid"
}

// attachmentName is "voicemail-<mailbox>-<YYYYMMDD-HHMMSS>.wav" in the
// mailbox time zone.
func attachmentName(mb *store.Mailbox, m *store.Message) string {
	loc := time.UTC
	if l, err := time.LoadLocation(mb.Timezone); err == nil && mb.Timezone != "" {
		loc = l
	}
	return "voicemail-" + mb.Number + "-" + m.ReceivedAt.In(loc).Format("20060102-150405") + ".wav"
}
