package testcalls

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/siptest"
	"github.com/vmserver/voicemail/mail/smtptest"
)

// Email notification (issue 7, docs/email.md) against a real SMTP server
// (go-smtp) started by the test on loopback.

// startMailServer starts the voicemail server with email on, against an
// SMTP server at smtpAddr, retrying fast.
func startMailServer(t *testing.T, dataDir, smtpAddr string) *server {
	t.Helper()
	_, port, _ := net.SplitHostPort(smtpAddr)
	return startServer(t, dataDir,
		"--smtp-host", "127.0.0.1", "--smtp-port", port, "--smtp-tls", "none", "--smtp-from", "vm@example.com",
		"--smtp-retry", "200ms", "--smtp-retry-max", "1s")
}

// mailMailbox creates a mailbox through the API (unless it exists: a
// restarted server keeps it) and gives it a short greeting.
func mailMailbox(t *testing.T, s *server, body map[string]any) {
	t.Helper()
	code, resp, err := s.api("POST", "/api/v1/mailboxes", body, nil)
	if err != nil || (code != 201 && code != 409) {
		t.Fatalf("POST /api/v1/mailboxes %v: %d %v %s", body, code, err, resp)
	}
	s.putGreeting(t, body["number"].(string), "unavailable", siptest.Tone(unavailableHz, 4000, 6000))
}

func mailDeposit(t *testing.T, s *server, mailbox string) {
	t.Helper()
	runSipp(t, s, "uac_deposit.xml", mailbox, "codec_pt", "0", "codec_name", "PCMU",
		"pcap", pcapPath("audio_pcmu.pcap"), "pause_ms", pauseFor("audio_pcmu.pcap"))
}

// outboxRow reads the mail_outbox row of a message ("" status when none).
func (s *server) outboxRow(t *testing.T, messageID string) (status string, attempts int) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(s.dataDir, "voicemail.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.QueryRow(`SELECT status, attempts FROM mail_outbox WHERE message_id = ?`, messageID).Scan(&status, &attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0
	}
	if err != nil {
		t.Fatalf("read mail_outbox: %v", err)
	}
	return status, attempts
}

func (s *server) waitOutbox(t *testing.T, messageID, what string, cond func(status string, attempts int) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, n := s.outboxRow(t, messageID)
		if cond(st, n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox row of %s: %q after %d attempts; waited 30 s for %s", messageID, st, n, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A deposit to a group mailbox sends one mail to the group's own list with
// the mailbox, caller, duration, time (mailbox zone) and link, and the WAV
// attached byte for byte.
func TestMailDeposit(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	d := smtptest.Start(t, "127.0.0.1:0")
	s := startMailServer(t, "", d.Addr)
	mailMailbox(t, s, map[string]any{"number": "2001", "name": "Member", "pin": "1234", "email": "member@example.com", "attach_audio": true})
	group := map[string]any{"number": "8100", "name": "Team", "type": "group", "members": []string{"2001"},
		"email": "team@example.com, lead@example.com", "attach_audio": true, "timezone": "Europe/Paris"}
	mailMailbox(t, s, group)

	mailDeposit(t, s, "8100")
	rec := newestRecording(t, s, "8100", 1)
	s.waitOutbox(t, rec.api.ID, "sent", func(st string, _ int) bool { return st == "sent" })
	mails := d.Wait(t, 1, 10*time.Second)
	if len(mails) != 1 {
		t.Fatalf("%d mails for one deposit, want 1", len(mails))
	}
	m := mails[0]
	if m.From != "vm@example.com" || strings.Join(m.To, ",") != "team@example.com,lead@example.com" {
		t.Errorf("envelope: from %q to %v; want vm@example.com to the group's list (not its members)", m.From, m.To)
	}
	p := smtptest.Parse(t, m.Raw)
	t.Logf("Subject: %s\n%s", p.Subject, p.Body)
	if from := p.Header.Get("From"); !strings.Contains(from, "vm@example.com") {
		t.Errorf("From: %q", from)
	}
	if to := p.Header.Get("To"); !strings.Contains(to, "team@example.com") || !strings.Contains(to, "lead@example.com") {
		t.Errorf("To: %q", to)
	}
	if p.Header.Get("Date") == "" || p.Header.Get("Message-Id") == "" {
		t.Errorf("Date %q, Message-ID %q", p.Header.Get("Date"), p.Header.Get("Message-Id"))
	}
	for _, want := range []string{"8100", "Team", sippCallerName, callerNumber} {
		if !strings.Contains(p.Subject, want) {
			t.Errorf("Subject %q lacks %q", p.Subject, want)
		}
	}

	received, err := time.Parse(time.RFC3339Nano, rec.api.ReceivedAt)
	if err != nil {
		t.Fatal(err)
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	secs := (rec.api.DurationMS + 500) / 1000
	link := fmt.Sprintf("http://127.0.0.1:%d/api/v1/mailboxes/8100/messages/%s/audio", s.httpPort, rec.api.ID)
	for _, want := range []string{
		"mailbox 8100", "Team", sippCallerName, callerNumber,
		fmt.Sprintf("Duration: %d:%02d", secs/60, secs%60),
		received.In(paris).Format("Monday, 2 January 2006 at 15:04:05 MST"),
		link,
	} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, p.Body)
		}
	}
	if p.Attachments != 1 || p.AttachType != "audio/wav" || !strings.HasSuffix(p.AttachName, ".wav") {
		t.Errorf("%d attachments, last %q (%s); want one audio/wav", p.Attachments, p.AttachName, p.AttachType)
	}
	if !bytes.Equal(p.Attachment, rec.wav) {
		t.Errorf("attachment (%d bytes) differs from the stored WAV %s (%d bytes)", len(p.Attachment), rec.path, len(rec.wav))
	}
	if got := s.audio(t, "8100", rec.api.ID); !bytes.Equal(got, p.Attachment) {
		t.Errorf("the link's audio differs from the attachment")
	}
	if n := len(s.messages(t, "8100")); n != 1 {
		t.Errorf("8100 holds %d messages after the mail, want 1 (no delete_after_email)", n)
	}
}

// delete_after_email with the SMTP server down at first: the message stays
// while the mail is retried; once the server is back the mail is delivered,
// and the message goes only after the server answered the end of DATA.
func TestMailDeleteAfterEmail(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	smtpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // nobody listens yet
	s := startMailServer(t, "", smtpAddr)
	mailMailbox(t, s, map[string]any{"number": "2002", "name": "Dora", "pin": "1234", "email": "dora@example.com",
		"attach_audio": true, "delete_after_email": true})

	mailDeposit(t, s, "2002")
	msgs := s.waitMessages(t, "2002", 1, 20*time.Second)
	id := msgs[0].ID
	s.waitOutbox(t, id, "failed attempts", func(st string, n int) bool { return st == "pending" && n >= 2 })
	wavPath := filepath.Join(s.dataDir, "media", "default", "2002", id+".wav")
	wav, err := os.ReadFile(wavPath)
	if err != nil {
		t.Fatalf("the message's WAV is gone while the SMTP server is down: %v", err)
	}
	if n := len(s.messages(t, "2002")); n != 1 {
		t.Fatalf("2002 holds %d messages while the SMTP server is down, want 1", n)
	}
	if !strings.Contains(s.log.String(), "will retry") {
		t.Error("the server logged no retry")
	}

	d := smtptest.StartHeld(t, smtpAddr)
	select {
	case <-d.DataStarted():
	case <-time.After(30 * time.Second):
		t.Fatal("the mail was not retried once the SMTP server was back")
	}
	// The server holds its answer: the mail is not accepted yet.
	if n := len(s.messages(t, "2002")); n != 1 {
		t.Fatalf("2002 holds %d messages before the server accepted the mail, want 1", n)
	}
	if _, err := os.Stat(wavPath); err != nil {
		t.Fatalf("WAV removed before the server accepted the mail: %v", err)
	}
	d.Release()
	mails := d.Wait(t, 1, 10*time.Second)
	p := smtptest.Parse(t, mails[0].Raw)
	if !bytes.Equal(p.Attachment, wav) {
		t.Errorf("attachment (%d bytes) differs from the stored WAV (%d bytes)", len(p.Attachment), len(wav))
	}
	s.waitOutbox(t, id, "sent", func(st string, _ int) bool { return st == "sent" })
	deadline := time.Now().Add(10 * time.Second)
	for len(s.messages(t, "2002")) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the message is still there after the mail was delivered")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(wavPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the WAV is still there after delete_after_email: %v", err)
	}
	if len(d.Mails()) != 1 {
		t.Errorf("%d mails, want 1", len(d.Mails()))
	}
}

// The SMTP server is down and the voicemail server restarts: the queued
// mail survives and is delivered once the SMTP server is back.
func TestMailSurvivesRestart(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	smtpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dataDir := t.TempDir()
	s1 := startMailServer(t, dataDir, smtpAddr)
	mailMailbox(t, s1, map[string]any{"number": "2003", "name": "Emil", "pin": "1234", "email": "emil@example.com", "attach_audio": true})
	mailDeposit(t, s1, "2003")
	id := s1.waitMessages(t, "2003", 1, 20*time.Second)[0].ID
	s1.waitOutbox(t, id, "a failed attempt", func(st string, n int) bool { return st == "pending" && n >= 1 })
	s1.stop()
	_, before := s1.outboxRow(t, id)

	s2 := startMailServer(t, dataDir, smtpAddr)
	// The pending mail is tried again after the restart.
	s2.waitOutbox(t, id, "a retry after the restart", func(st string, n int) bool { return st == "pending" && n > before })
	if n := len(s2.messages(t, "2003")); n != 1 {
		t.Fatalf("2003 holds %d messages after the restart, want 1", n)
	}
	d := smtptest.Start(t, smtpAddr)
	mails := d.Wait(t, 1, 30*time.Second)
	s2.waitOutbox(t, id, "sent", func(st string, _ int) bool { return st == "sent" })
	wav, err := os.ReadFile(filepath.Join(dataDir, "media", "default", "2003", id+".wav"))
	if err != nil {
		t.Fatal(err)
	}
	p := smtptest.Parse(t, mails[0].Raw)
	if !bytes.Equal(p.Attachment, wav) {
		t.Errorf("attachment (%d bytes) differs from the stored WAV (%d bytes)", len(p.Attachment), len(wav))
	}
	if got := p.Header.Get("X-Voicemail-Message-Id"); got != id {
		t.Errorf("the mail is about message %q, want %s", got, id)
	}
	if len(d.Mails()) != 1 || len(s2.messages(t, "2003")) != 1 {
		t.Errorf("%d mails and %d messages, want 1 and 1", len(d.Mails()), len(s2.messages(t, "2003")))
	}
}
