package store

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestMailOutbox(t *testing.T) { forEachBackend(t, testMailOutbox) }

func testMailOutbox(t *testing.T, b backend) {
	ctx := t.Context()
	dsn := b.newDSN(t)
	s := openDSN(t, dsn)
	if err := s.CreateTenant(ctx, &Tenant{Name: "default"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMailbox(ctx, &Mailbox{Tenant: "default", Number: "1001", Email: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMailbox(ctx, &Mailbox{Tenant: "default", Number: "1002"}); err != nil {
		t.Fatal(err)
	}
	msg := func(mb string) *Message {
		m := &Message{Tenant: "default", Mailbox: mb, CallerID: "100", Size: 44}
		if err := s.CreateMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m1, m2, _ := msg("1001"), msg("1001"), msg("1002")
	start := time.Now().Add(-time.Minute)

	// Both 1001 messages are unmailed; 1002 has no email.
	un, err := s.UnmailedMessages(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	if ids := mailTestIDs(un); !slices.Equal(ids, []string{m1.ID, m2.ID}) {
		t.Fatalf("UnmailedMessages = %v, want %v", ids, []string{m1.ID, m2.ID})
	}
	if un, _ := s.UnmailedMessages(ctx, time.Now().Add(time.Minute)); len(un) != 0 {
		t.Errorf("UnmailedMessages after the messages = %d, want 0", len(un))
	}

	if _, err := s.NextMailAttempt(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("NextMailAttempt on an empty outbox: %v, want ErrNotFound", err)
	}
	o1 := &OutboxMail{MessageID: m1.ID, Tenant: "default", Mailbox: "1001",
		Recipients: []string{"a@example.com", "b@example.com"}, AttachAudio: true, DeleteAfterEmail: true}
	if err := s.EnqueueMail(ctx, o1); err != nil {
		t.Fatal(err)
	}
	if o1.ID == 0 || o1.Status != MailPending || o1.NextAttemptAt.IsZero() || o1.CreatedAt.IsZero() {
		t.Errorf("EnqueueMail did not fill the row: %+v", o1)
	}
	if err := s.EnqueueMail(ctx, &OutboxMail{MessageID: m1.ID, Tenant: "default", Mailbox: "1001",
		Recipients: []string{"x@example.com"}}); !errors.Is(err, ErrExists) {
		t.Errorf("second EnqueueMail for one message: %v, want ErrExists", err)
	}
	if err := s.EnqueueMail(ctx, &OutboxMail{MessageID: m2.ID, Tenant: "default", Mailbox: "1001"}); err == nil {
		t.Error("EnqueueMail without recipients succeeded")
	}
	later := time.Now().Add(time.Hour)
	o2 := &OutboxMail{MessageID: m2.ID, Tenant: "default", Mailbox: "1001",
		Recipients: []string{"a@example.com"}, NextAttemptAt: later}
	if err := s.EnqueueMail(ctx, o2); err != nil {
		t.Fatal(err)
	}
	if un, _ := s.UnmailedMessages(ctx, start); len(un) != 0 {
		t.Errorf("UnmailedMessages with rows for both = %v", mailTestIDs(un))
	}

	got, err := s.GetMail(ctx, m1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != o1.ID || !slices.Equal(got.Recipients, o1.Recipients) || !got.AttachAudio || !got.DeleteAfterEmail ||
		got.Status != MailPending || got.Attempts != 0 || !got.SentAt.IsZero() {
		t.Errorf("GetMail = %+v, want %+v", got, o1)
	}
	if _, err := s.GetMail(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetMail of an unknown message: %v", err)
	}

	due, err := s.DueMail(ctx, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].ID != o1.ID {
		t.Fatalf("DueMail now = %+v, want only row %d", due, o1.ID)
	}
	if n, _ := s.PendingMail(ctx); n != 2 {
		t.Errorf("PendingMail = %d, want 2", n)
	}
	next, err := s.NextMailAttempt(ctx)
	if err != nil || !next.Equal(o1.NextAttemptAt.UTC()) {
		t.Errorf("NextMailAttempt = %v, %v; want %v", next, err, o1.NextAttemptAt)
	}

	// A failed attempt moves the row into the future.
	retry := time.Now().Add(30 * time.Second)
	if err := s.RetryMail(ctx, o1.ID, retry, "dial: connection refused"); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueMail(ctx, time.Now(), 0); len(due) != 0 {
		t.Errorf("DueMail after a retry = %d rows, want 0", len(due))
	}
	due, _ = s.DueMail(ctx, retry, 0)
	if len(due) != 1 || due[0].Attempts != 1 || due[0].LastError != "dial: connection refused" {
		t.Errorf("DueMail at the retry time = %+v", due)
	}
	if err := s.RetryMail(ctx, 99999, retry, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RetryMail of an unknown row: %v", err)
	}

	// Durable: a reopened store still has the rows.
	s2 := openDSN(t, dsn)
	if n, _ := s2.PendingMail(ctx); n != 2 {
		t.Errorf("PendingMail after reopen = %d, want 2", n)
	}

	sentAt := time.Now()
	if err := s.MarkMailSent(ctx, o1.ID, sentAt); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetMail(ctx, m1.ID)
	if got.Status != MailSent || got.Attempts != 2 || got.SentAt.IsZero() || got.LastError != "" {
		t.Errorf("after MarkMailSent: %+v", got)
	}
	if err := s.RetryMail(ctx, o1.ID, retry, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RetryMail of a sent row: %v, want ErrNotFound", err)
	}
	if n, _ := s.PendingMail(ctx); n != 1 {
		t.Errorf("PendingMail = %d, want 1", n)
	}
	if next, _ := s.NextMailAttempt(ctx); !next.Equal(later) {
		t.Errorf("NextMailAttempt = %v, want %v", next, later)
	}
	// A sent row still counts as mailed, until purged.
	if un, _ := s.UnmailedMessages(ctx, start); len(un) != 0 {
		t.Errorf("UnmailedMessages = %v, want none", mailTestIDs(un))
	}
	if n, err := s.PurgeSentMail(ctx, sentAt.Add(-time.Second)); err != nil || n != 0 {
		t.Errorf("PurgeSentMail before the send = %d, %v", n, err)
	}
	if n, err := s.PurgeSentMail(ctx, sentAt.Add(time.Second)); err != nil || n != 1 {
		t.Errorf("PurgeSentMail after the send = %d, %v; want 1", n, err)
	}
	if un, _ := s.UnmailedMessages(ctx, start); len(un) != 1 || un[0].ID != m1.ID {
		t.Errorf("UnmailedMessages after the purge = %v, want [%s]", mailTestIDs(un), m1.ID)
	}

	if err := s.DropMail(ctx, o2.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DropMail(ctx, o2.ID); err != nil {
		t.Errorf("second DropMail: %v", err)
	}
	if n, _ := s.PendingMail(ctx); n != 0 {
		t.Errorf("PendingMail after drop = %d", n)
	}
}

func mailTestIDs(ms []Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}
