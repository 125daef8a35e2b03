package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vmserver/voicemail/internal/testlog"
	"github.com/vmserver/voicemail/mail/smtptest"
	"github.com/vmserver/voicemail/store"
)

// env is a store, media folder and bus as the server wires them.
type env struct {
	t     *testing.T
	raw   store.Store
	st    store.Store
	bus   *store.Changes
	blobs *store.FSBlobs
	log   *logBuf
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	raw, err := store.Open(t.Context(), "sqlite://"+filepath.Join(dir, "voicemail.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	blobs, err := store.NewFSBlobs(filepath.Join(dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	bus := store.NewChanges()
	e := &env{t: t, raw: raw, st: store.Notifying(raw, bus), bus: bus, blobs: blobs, log: &logBuf{}}
	if err := e.st.CreateTenant(t.Context(), &store.Tenant{Name: store.DefaultTenant}); err != nil {
		t.Fatal(err)
	}
	return e
}

// logBuf collects the notifier's log lines.
type logBuf = testlog.Buffer

func (e *env) mailbox(m store.Mailbox) *store.Mailbox {
	e.t.Helper()
	m.Tenant = store.DefaultTenant
	if err := e.st.CreateMailbox(e.t.Context(), &m); err != nil {
		e.t.Fatal(err)
	}
	return &m
}

// deposit stores a WAV and creates its message, as the recorder does.
func (e *env) deposit(mailbox string, wav []byte) *store.Message {
	e.t.Helper()
	id := store.NewMessageID()
	key := store.MediaKey(store.DefaultTenant, mailbox, id)
	f, err := e.blobs.Create(key)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := f.Write(wav); err != nil {
		e.t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		e.t.Fatal(err)
	}
	m := &store.Message{ID: id, Tenant: store.DefaultTenant, Mailbox: mailbox, CallerID: "+14155550100",
		CallerE164: "+14155550100", CallerName: "Test Caller", ReceivedAt: time.Date(2025, 3, 4, 14, 5, 6, 0, time.UTC),
		DurationMS: 8540, Size: int64(len(wav)), MediaKey: key}
	if err := e.st.CreateMessage(e.t.Context(), m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) notifier(port string, mod func(*Config)) *Notifier {
	e.t.Helper()
	p, _ := strconv.Atoi(port)
	cfg := Config{Host: "127.0.0.1", Port: p, TLS: "none", From: "Voicemail <vm@example.com>",
		PublicURL: "http://vm.example.com:8080", RetryBase: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	n, err := New(cfg, Deps{Store: e.st, Changes: e.bus, Blobs: e.blobs,
		Logger: slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		e.t.Fatal(err)
	}
	n.Start()
	e.t.Cleanup(n.Stop)
	return n
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) row(messageID string) *store.OutboxMail {
	r, err := e.st.GetMail(context.Background(), messageID)
	if err != nil {
		return nil
	}
	return r
}

func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func fakeWAV(n int) []byte {
	b := make([]byte, 44+n)
	copy(b, "RIFF")
	copy(b[8:], "WAVEfmt ")
	for i := 44; i < len(b); i++ {
		b[i] = byte(i * 7)
	}
	return b
}

func TestMailWithAttachment(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := smtptest.Start(t, "")
	e.mailbox(store.Mailbox{Number: "1001", Name: "Alice", Email: "alice@example.com, Boss <boss@example.com>",
		AttachAudio: true, Timezone: "Europe/Paris"})
	e.mailbox(store.Mailbox{Number: "1002", Name: "Bob"}) // no email: no mail
	n := e.notifier(d.Port(), nil)

	wav := fakeWAV(20000)
	e.deposit("1002", fakeWAV(100))
	m := e.deposit("1001", wav)
	mails := d.Wait(t, 1, 15*time.Second)
	waitFor(t, "the row marked sent", func() bool { r := e.row(m.ID); return r != nil && r.Status == store.MailSent })
	if len(mails) != 1 {
		t.Fatalf("%d mails, want 1", len(mails))
	}
	got := mails[0]
	if got.From != "vm@example.com" || strings.Join(got.To, ",") != "alice@example.com,boss@example.com" {
		t.Errorf("envelope from %q to %v", got.From, got.To)
	}
	p := smtptest.Parse(t, got.Raw)
	if want := "New voicemail for 1001 (Alice) from Test Caller <+14155550100>"; p.Subject != want {
		t.Errorf("Subject %q, want %q", p.Subject, want)
	}
	if to := p.Header.Get("To"); !strings.Contains(to, "alice@example.com") || !strings.Contains(to, "boss@example.com") {
		t.Errorf("To: %q", to)
	}
	if id := p.Header.Get("Message-Id"); id != "<voicemail."+m.ID+"@example.com>" {
		t.Errorf("Message-ID %q", id)
	}
	for _, want := range []string{
		"Alice,", "mailbox 1001", "From:     Test Caller <+14155550100>",
		"Received: Tuesday, 4 March 2025 at 15:05:06 CET", "Duration: 0:09",
		"Listen:   http://vm.example.com:8080/api/v1/mailboxes/1001/messages/" + m.ID + "/audio",
		"The recording is attached.",
	} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, p.Body)
		}
	}
	if !bytes.Equal(p.Attachment, wav) || p.AttachType != "audio/wav" || p.AttachName != "voicemail-1001-20250304-150506.wav" {
		t.Errorf("attachment %q (%s, %d bytes), want the %d-byte WAV", p.AttachName, p.AttachType, len(p.Attachment), len(wav))
	}
	if _, err := e.st.GetMessage(t.Context(), "default", "1001", m.ID); err != nil {
		t.Errorf("the message is gone without delete_after_email: %v", err)
	}
	if v := value(t, n.m.sent); v != 1 {
		t.Errorf("sent = %v", v)
	}
	waitFor(t, "queued gauge 0", func() bool { return value(t, n.m.queued) == 0 })
	if len(n.Collectors()) != 4 {
		t.Errorf("Collectors() = %d", len(n.Collectors()))
	}
	reg := prometheus.NewRegistry()
	for _, c := range n.Collectors() {
		if err := reg.Register(c); err != nil {
			t.Error(err)
		}
	}
}

// A group mailbox mails its own list, not its members'.
func TestGroupMailsItsOwnList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := smtptest.Start(t, "")
	e.mailbox(store.Mailbox{Number: "1001", Email: "alice@example.com"})
	e.mailbox(store.Mailbox{Number: "8000", Name: "Support", Type: store.TypeGroup, Members: []string{"1001"},
		Email: "support@example.com;oncall@example.com"})
	e.notifier(d.Port(), nil)
	e.deposit("8000", fakeWAV(10))
	mails := d.Wait(t, 1, 15*time.Second)
	if got := strings.Join(mails[0].To, ","); got != "support@example.com,oncall@example.com" {
		t.Errorf("recipients %s", got)
	}
	p := smtptest.Parse(t, mails[0].Raw)
	if !strings.Contains(p.Body, "group mailbox 8000") || p.Attachment != nil {
		t.Errorf("body %q, attachment %d bytes (attach_audio off)", p.Body, len(p.Attachment))
	}
}

// delete_after_email: the message stays while the server has not accepted
// the mail, and goes (row and WAV) once it has.
func TestDeleteAfterEmail(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := smtptest.Start(t, "")
	d.Hold()
	e.mailbox(store.Mailbox{Number: "1001", Email: "alice@example.com", AttachAudio: true, DeleteAfterEmail: true})
	var deleted []string
	var mu sync.Mutex
	e.bus.Subscribe(func(ch store.Change) {
		if ch.Kind == store.MessageDeleted {
			mu.Lock()
			deleted = append(deleted, ch.Message.ID)
			mu.Unlock()
		}
	})
	e.notifier(d.Port(), nil)
	m := e.deposit("1001", fakeWAV(1000))
	select {
	case <-d.DataStarted():
	case <-time.After(15 * time.Second):
		t.Fatal("no DATA")
	}
	// The server holds its answer to DATA: nothing may be deleted yet.
	if _, err := e.st.GetMessage(t.Context(), "default", "1001", m.ID); err != nil {
		t.Fatalf("message deleted before the server accepted the mail: %v", err)
	}
	if !e.blobs.Exists(m.MediaKey) {
		t.Fatal("WAV deleted before the server accepted the mail")
	}
	d.Release()
	d.Wait(t, 1, 15*time.Second)
	waitFor(t, "the message deleted", func() bool {
		_, err := e.st.GetMessage(t.Context(), "default", "1001", m.ID)
		return errors.Is(err, store.ErrNotFound)
	})
	waitFor(t, "the row marked sent", func() bool { r := e.row(m.ID); return r != nil && r.Status == store.MailSent })
	if e.blobs.Exists(m.MediaKey) {
		t.Error("the WAV is still there")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(deleted) != 1 || deleted[0] != m.ID {
		t.Errorf("message_deleted changes %v, want [%s] (MWI and events follow the bus)", deleted, m.ID)
	}
}

// freeAddr is a loopback address nobody listens on (yet).
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// The SMTP server is down: the message stays, the mail is retried with
// back-off, and delivered after a restart of the notifier once the server
// is back.
func TestRetryAcrossRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	e.mailbox(store.Mailbox{Number: "1001", Email: "alice@example.com", AttachAudio: true, DeleteAfterEmail: true})
	n1 := e.notifier(port, nil)
	wav := fakeWAV(5000)
	m := e.deposit("1001", wav)
	waitFor(t, "three failed attempts", func() bool { r := e.row(m.ID); return r != nil && r.Attempts >= 3 })
	r := e.row(m.ID)
	if r.Status != store.MailPending || r.LastError == "" || !r.NextAttemptAt.After(r.CreatedAt) {
		t.Errorf("row after failures: %+v", r)
	}
	if v := value(t, n1.m.failed); v < 3 {
		t.Errorf("failed = %v, want >= 3", v)
	}
	if v := value(t, n1.m.queued); v != 1 {
		t.Errorf("queued = %v, want 1", v)
	}
	if !strings.Contains(e.log.String(), "will retry") {
		t.Errorf("no retry log line:\n%s", e.log.String())
	}
	n1.Stop()
	if _, err := e.st.GetMessage(t.Context(), "default", "1001", m.ID); err != nil {
		t.Fatalf("message lost while the SMTP server is down: %v", err)
	}

	d := smtptest.Start(t, addr)
	n2 := e.notifier(port, nil)
	mails := d.Wait(t, 1, 15*time.Second)
	if p := smtptest.Parse(t, mails[0].Raw); !bytes.Equal(p.Attachment, wav) {
		t.Errorf("attachment differs from the WAV")
	}
	waitFor(t, "the message deleted", func() bool {
		_, err := e.st.GetMessage(t.Context(), "default", "1001", m.ID)
		return errors.Is(err, store.ErrNotFound)
	})
	waitFor(t, "the row sent", func() bool { r := e.row(m.ID); return r != nil && r.Status == store.MailSent })
	if v := value(t, n2.m.sent); v != 1 {
		t.Errorf("sent = %v", v)
	}
	if len(d.Mails()) != 1 {
		t.Errorf("%d mails, want 1", len(d.Mails()))
	}
}

// A message deleted while its mail waits: the mail is dropped with a log line.
func TestDroppedWhenMessageDeleted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, port, _ := net.SplitHostPort(freeAddr(t))
	e.mailbox(store.Mailbox{Number: "1001", Email: "alice@example.com", AttachAudio: true})
	n := e.notifier(port, func(c *Config) { c.RetryBase, c.RetryMax = 20*time.Millisecond, 20*time.Millisecond })
	m := e.deposit("1001", fakeWAV(10))
	waitFor(t, "a failed attempt", func() bool { r := e.row(m.ID); return r != nil && r.Attempts >= 1 })
	if _, err := e.st.DeleteMessage(t.Context(), "default", "1001", m.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the row dropped", func() bool { return e.row(m.ID) == nil })
	if v := value(t, n.m.dropped); v != 1 {
		t.Errorf("dropped = %v", v)
	}
	if !strings.Contains(e.log.String(), "mail dropped") {
		t.Errorf("no log line for the dropped mail:\n%s", e.log.String())
	}
}

// Messages created while no notifier ran (a crash between the message and
// its row, or start-up recovery) are mailed at start.
func TestReconcileAtStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := smtptest.Start(t, "")
	e.mailbox(store.Mailbox{Number: "1001", Email: "alice@example.com"})
	m := e.deposit("1001", fakeWAV(10))
	// ReceivedAt is in 2025: the reconciliation only looks one day back.
	old := e.deposit("1001", fakeWAV(10))
	recent := &store.Message{Tenant: "default", Mailbox: "1001", CallerID: "200", ReceivedAt: time.Now().UTC(),
		MediaKey: m.MediaKey}
	if err := e.st.CreateMessage(t.Context(), recent); err != nil {
		t.Fatal(err)
	}
	e.notifier(d.Port(), nil)
	mails := d.Wait(t, 1, 15*time.Second)
	if got := smtptest.Parse(t, mails[0].Raw).Header.Get("X-Voicemail-Message-Id"); got != recent.ID {
		t.Errorf("the mail is about message %q, want the recent one %s", got, recent.ID)
	}
	if e.row(old.ID) != nil {
		t.Error("a message older than a day was queued")
	}
}

// A visible message whose WAV is missing is not mailed without its
// attachment: the mail is retried (and logged), never sent bare.
func TestMissingAudioIsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := smtptest.Start(t, "")
	e.mailbox(store.Mailbox{Number: "1003", Email: "carol@example.com", AttachAudio: true})
	e.notifier(d.Port(), nil)
	m := &store.Message{Tenant: "default", Mailbox: "1003", CallerID: "200"}
	if err := e.st.CreateMessage(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "failed attempts", func() bool { r := e.row(m.ID); return r != nil && r.Attempts >= 2 })
	if r := e.row(m.ID); !strings.Contains(r.LastError, "missing") {
		t.Errorf("last error %q", r.LastError)
	}
	if len(d.Mails()) != 0 {
		t.Error("a mail without its attachment was sent")
	}
}

func TestTemplates(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	body := filepath.Join(dir, "body.tmpl")
	if err := os.WriteFile(body, []byte("{{.MailboxNumber}}|{{.CallerNumber}}|{{.DurationText}}|{{.Received.Format \"15:04\"}}|{{.TimeZone}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := Config{Host: "127.0.0.1", Port: 25, TLS: "none", From: "vm@example.com"}
	deps := Deps{Store: e.st, Changes: e.bus, Blobs: e.blobs}
	cfg := base
	cfg.SubjectTemplate, cfg.BodyTemplate = "VM {{.MailboxNumber}}\nfrom {{.CallerName}}", "@"+body
	n, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	mb := &store.Mailbox{Tenant: "acme", Number: "42", Timezone: "America/New_York"}
	msg := &store.Message{ID: "x", Tenant: "acme", Mailbox: "42", CallerID: "0612345678", CallerName: "Eve",
		ReceivedAt: time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC), DurationMS: 61_600}
	subj, b, err := n.tpl.render(newData("http://h:1/", mb, msg, false))
	if err != nil {
		t.Fatal(err)
	}
	if subj != "VM 42 from Eve" || b != "42|0612345678|1:02|08:00|America/New_York" {
		t.Errorf("render = %q, %q", subj, b)
	}
	if u := AudioURL("http://h:1/", msg); u != "http://h:1/api/v1/mailboxes/42/messages/x/audio?tenant=acme" {
		t.Errorf("AudioURL = %s", u)
	}
	for name, mod := range map[string]func(*Config){
		"syntax":        func(c *Config) { c.SubjectTemplate = "{{.MailboxNumber" },
		"unknown field": func(c *Config) { c.BodyTemplate = "{{.Nope}}" },
		"missing file":  func(c *Config) { c.BodyTemplate = "@" + filepath.Join(dir, "nope") },
		"from":          func(c *Config) { c.From = "not an address" },
		"tls":           func(c *Config) { c.TLS = "ssl" },
	} {
		c := base
		mod(&c)
		if _, err := New(c, deps); err == nil {
			t.Errorf("%s: New accepted it", name)
		} else if !strings.Contains(err.Error(), "config key smtp.") {
			t.Errorf("%s: error %q names no key", name, err)
		}
	}
}

func TestHelpers(t *testing.T) {
	if got := fmt.Sprint(Recipients(" a@example.com, ,bad address; Bob <b@example.com>")); got != "[a@example.com Bob <b@example.com>]" {
		t.Errorf("Recipients = %s", got)
	}
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{0, time.Second}, {1, 2 * time.Second}, {3, 8 * time.Second}, {10, time.Minute}, {100, time.Minute}} {
		if got := backoff(time.Second, time.Minute, c.n); got != c.want {
			t.Errorf("backoff(%d) = %v, want %v", c.n, got, c.want)
		}
	}
	for d, want := range map[time.Duration]string{0: "0:00", 8540 * time.Millisecond: "0:09", 61 * time.Second: "1:01", 3723 * time.Second: "1:02:03"} {
		if got := durationText(d); got != want {
			t.Errorf("durationText(%v) = %s, want %s", d, got, want)
		}
	}
	var n *Notifier
	if n.Collectors() != nil {
		t.Error("a nil Notifier has collectors")
	}
}
