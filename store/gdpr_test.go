package store

import (
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// gdprFixture: tenants default and acme; mailboxes 1001, 1002 (default),
// 2001 (acme); messages from +17815551212 in three forms, one from another
// caller.
func gdprFixture(t *testing.T, b backend) (Store, map[string]*Message) {
	t.Helper()
	s := b.open(t)
	mustTenant(t, s, DefaultTenant)
	mustTenant(t, s, "acme", "acme.example")
	mustMailbox(t, s, Mailbox{Tenant: DefaultTenant, Number: "1001"})
	mustMailbox(t, s, Mailbox{Tenant: DefaultTenant, Number: "1002"})
	mustMailbox(t, s, Mailbox{Tenant: "acme", Number: "2001"})
	msgs := map[string]*Message{
		"e164":   mustMessage(t, s, Message{Tenant: DefaultTenant, Mailbox: "1001", CallerID: "+17815551212", CallerE164: "+17815551212"}),
		"digits": mustMessage(t, s, Message{Tenant: DefaultTenant, Mailbox: "1002", CallerID: "17815551212"}),
		"acme":   mustMessage(t, s, Message{Tenant: "acme", Mailbox: "2001", CallerID: "+1 781 555 1212", CallerE164: "+17815551212"}),
		"other":  mustMessage(t, s, Message{Tenant: DefaultTenant, Mailbox: "1001", CallerID: "+16175551414", CallerE164: "+16175551414"}),
	}
	return s, msgs
}

func TestGDPRMessagesByCaller(t *testing.T) { forEachBackend(t, testGDPRMessagesByCaller) }

func testGDPRMessagesByCaller(t *testing.T, b backend) {
	s, m := gdprFixture(t, b)
	ctx := t.Context()
	all, err := s.MessagesByCaller(ctx, "", "+17815551212")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{m["e164"].ID, m["digits"].ID, m["acme"].ID}
	slices.Sort(want)
	if got := ids(all); !slices.Equal(got, want) {
		t.Errorf("every tenant: %v, want %v", got, want)
	}
	acme, err := s.MessagesByCaller(ctx, "acme", "+17815551212")
	if err != nil || len(acme) != 1 || acme[0].ID != m["acme"].ID {
		t.Errorf("tenant acme: %v %v", ids(acme), err)
	}
	if _, err := s.MessagesByCaller(ctx, "", "617 555 1313"); err == nil {
		t.Error("a number that is not E.164 was accepted")
	}
	none, err := s.MessagesByCaller(ctx, "", "+4930123456")
	if err != nil || len(none) != 0 {
		t.Errorf("unknown caller: %v %v", ids(none), err)
	}
}

// The lookup goes through the caller indexes, not a scan of messages.
func TestGDPRLookupUsesIndexes(t *testing.T) {
	dir := t.TempDir()
	_ = openTestSQLite(t, filepath.Join(dir, "voicemail.db"))
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "voicemail.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tenant := range []string{"", "acme"} {
		where, args, err := callerWhere(dialectSQLite, "m", tenant, "+17815551212")
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.Query(`EXPLAIN QUERY PLAN SELECT id FROM messages m WHERE `+where, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if !strings.Contains(p, "messages_by_e164") || !strings.Contains(p, "messages_by_caller_id") || strings.Contains(p, "SCAN") {
			t.Errorf("tenant %q: the caller lookup scans messages: %s", tenant, p)
		}
	}
}

func TestGDPRForgetUndoPurge(t *testing.T) { forEachBackend(t, testGDPRForgetUndoPurge) }

func testGDPRForgetUndoPurge(t *testing.T, b backend) {
	s, m := gdprFixture(t, b)
	ctx := t.Context()
	bus := NewChanges()
	var mu sync.Mutex
	var changes []Change
	bus.Subscribe(func(c Change) { mu.Lock(); changes = append(changes, c); mu.Unlock() })
	n := Notifying(s, bus)

	at := time.Now().Add(-time.Minute)
	hidden, err := n.ForgetCaller(ctx, Forget{ID: "f1", E164: "+17815551212", PhoneHash: "h1", At: at})
	if err != nil || len(hidden) != 3 {
		t.Fatalf("forget: %d messages, %v", len(hidden), err)
	}
	// Gone at once from every read path.
	if _, err := s.GetMessage(ctx, DefaultTenant, "1001", m["e164"].ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetMessage of a forgotten message: %v", err)
	}
	list, _, err := s.ListMessages(ctx, MessageFilter{Tenant: DefaultTenant, Mailbox: "1001"})
	if err != nil || len(list) != 1 || list[0].ID != m["other"].ID {
		t.Errorf("ListMessages after forget: %v %v", ids(list), err)
	}
	if c, _ := s.CountMessages(ctx, DefaultTenant, "1002"); c != (Counts{}) {
		t.Errorf("counts of 1002 after forget: %+v", c)
	}
	if n, _ := s.CountForgotten(ctx); n != 3 {
		t.Errorf("CountForgotten = %d", n)
	}
	eventually(t, "3 changes after forget", func() bool { mu.Lock(); defer mu.Unlock(); return len(changes) >= 3 })
	mu.Lock()
	if len(changes) != 3 || changes[0].Kind != MessageDeleted || changes[0].MailboxType != TypePersonal {
		t.Errorf("forget published %+v", changes)
	}
	changes = nil
	mu.Unlock()

	// A second forget finds nothing and leaves no tombstone.
	if again, err := n.ForgetCaller(ctx, Forget{ID: "f2", E164: "+17815551212", PhoneHash: "h1"}); err != nil || len(again) != 0 {
		t.Errorf("second forget: %d %v", len(again), err)
	}

	// Undo in tenant acme only, then everywhere.
	back, err := n.UndoForget(ctx, "acme", "+17815551212", "h1")
	if err != nil || len(back) != 1 || back[0].ID != m["acme"].ID {
		t.Fatalf("undo in acme: %v %v", ids(back), err)
	}
	back, err = n.UndoForget(ctx, "", "+17815551212", "h1")
	if err != nil || len(back) != 2 {
		t.Fatalf("undo everywhere: %v %v", ids(back), err)
	}
	got, err := s.GetMessage(ctx, DefaultTenant, "1001", m["e164"].ID)
	if err != nil || got.CallerE164 != "+17815551212" || !got.ReceivedAt.Equal(m["e164"].ReceivedAt) {
		t.Errorf("restored message: %+v %v", got, err)
	}
	eventually(t, "3 changes after undo", func() bool { mu.Lock(); defer mu.Unlock(); return len(changes) >= 3 })
	mu.Lock()
	if len(changes) != 3 || changes[0].Kind != MessageCreated {
		t.Errorf("undo published %+v", changes)
	}
	mu.Unlock()
	// Nothing hidden, nothing purged: not found.
	if back, err := n.UndoForget(ctx, "", "+17815551212", "h1"); err != nil || len(back) != 0 {
		t.Errorf("undo with nothing hidden: %v %v", ids(back), err)
	}

	// Forget again, purge after the grace: rows gone, undo says purged.
	if _, err := n.ForgetCaller(ctx, Forget{ID: "f3", E164: "+17815551212", PhoneHash: "h1", At: at}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.ForgottenBefore(ctx, at, 0); len(due) != 0 {
		t.Errorf("ForgottenBefore(at) = %d, want 0", len(due))
	}
	due, err := s.ForgottenBefore(ctx, time.Now(), 2)
	if err != nil || len(due) != 2 {
		t.Fatalf("ForgottenBefore limit 2: %d %v", len(due), err)
	}
	if err := s.PurgeForgotten(ctx, []string{due[0].ID, due[1].ID, "absent"}); err != nil {
		t.Fatal(err)
	}
	due, _ = s.ForgottenBefore(ctx, time.Now(), 0)
	if len(due) != 1 {
		t.Fatalf("left after the first purge: %d", len(due))
	}
	// One message still hidden: undo restores it rather than failing.
	if err := s.PurgeForgotten(ctx, []string{due[0].ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.UndoForget(ctx, "", "+17815551212", "h1"); !errors.Is(err, ErrPurged) {
		t.Errorf("undo after purge: %v, want ErrPurged", err)
	}
	if _, err := n.UndoForget(ctx, "acme", "+17815551212", "h1"); !errors.Is(err, ErrPurged) {
		t.Errorf("undo after purge in acme: %v, want ErrPurged", err)
	}
	if _, err := n.UndoForget(ctx, "", "+4930123456", "h2"); err != nil {
		t.Errorf("undo of a number never forgotten: %v", err)
	}
	if c, _ := s.CountForgotten(ctx); c != 0 {
		t.Errorf("CountForgotten after purge = %d", c)
	}
	// The tombstones keep only the hash.
	sq := s.(*sqliteStore)
	var leaked int
	if err := sq.r.QueryRow(`SELECT count(*) FROM gdpr_forgets WHERE phone_hash LIKE '%555%'`).Scan(&leaked); err != nil || leaked != 0 {
		t.Errorf("tombstones: %d %v", leaked, err)
	}
}

// A hidden message whose mailbox was deleted does not come back.
func TestGDPRUndoSkipsDeletedMailbox(t *testing.T) {
	forEachBackend(t, testGDPRUndoSkipsDeletedMailbox)
}

func testGDPRUndoSkipsDeletedMailbox(t *testing.T, b backend) {
	s, m := gdprFixture(t, b)
	ctx := t.Context()
	if _, err := s.ForgetCaller(ctx, Forget{ID: "f1", Tenant: DefaultTenant, E164: "+17815551212", PhoneHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteMailbox(ctx, DefaultTenant, "1002"); err != nil {
		t.Fatal(err)
	}
	back, err := s.UndoForget(ctx, DefaultTenant, "+17815551212", "h")
	if err != nil || len(back) != 1 || back[0].ID != m["e164"].ID {
		t.Errorf("undo: %v %v", ids(back), err)
	}
	if n, _ := s.CountForgotten(ctx); n != 1 {
		t.Errorf("hidden left: %d, want 1 (the deleted mailbox's, for the purge)", n)
	}
}

func TestGDPRAudit(t *testing.T) { forEachBackend(t, testGDPRAudit) }

func testGDPRAudit(t *testing.T, b backend) {
	s := b.open(t)
	ctx := t.Context()
	for i, op := range []string{"export", "forget", "undo"} {
		a := &GDPRAudit{Actor: "operator", Operation: op, RequestCase: "C1", ContactKind: "phone", ContactHash: "abc", Response: "SUCCESS", Messages: i}
		if err := s.AddGDPRAudit(ctx, a); err != nil || a.ID == 0 || a.At.IsZero() {
			t.Fatalf("AddGDPRAudit: %+v %v", a, err)
		}
	}
	all, err := s.ListGDPRAudit(ctx, 0, 0)
	if err != nil || len(all) != 3 || all[1].Operation != "forget" || all[2].Messages != 2 {
		t.Fatalf("ListGDPRAudit: %+v %v", all, err)
	}
	rest, _ := s.ListGDPRAudit(ctx, all[0].ID, 1)
	if len(rest) != 1 || rest[0].ID != all[1].ID {
		t.Errorf("page after %d: %+v", all[0].ID, rest)
	}
}

func TestGDPRRetention(t *testing.T) { forEachBackend(t, testGDPRRetention) }

func testGDPRRetention(t *testing.T, be backend) {
	s := be.open(t)
	ctx := t.Context()
	mustTenant(t, s, DefaultTenant)
	mustTenant(t, s, "acme")
	mustMailbox(t, s, Mailbox{Tenant: DefaultTenant, Number: "1001"})                   // global default
	mustMailbox(t, s, Mailbox{Tenant: DefaultTenant, Number: "1002", RetentionDays: 2}) // its own
	mustMailbox(t, s, Mailbox{Tenant: "acme", Number: "2001"})                          // tenant default
	now := time.Now()
	day := 24 * time.Hour
	old := func(mb, tenant string, age time.Duration) *Message {
		return mustMessage(t, s, Message{Tenant: tenant, Mailbox: mb, ReceivedAt: now.Add(-age)})
	}
	a := old("1001", DefaultTenant, 10*day)
	old("1001", DefaultTenant, 3*day)
	b := old("1002", DefaultTenant, 3*day)
	old("1002", DefaultTenant, day)
	c := old("2001", "acme", 6*day)
	old("2001", "acme", 4*day)

	got, err := s.ExpiredMessages(ctx, now, 0, 0)
	if err != nil || len(got) != 1 || got[0].ID != b.ID {
		t.Errorf("no defaults: %v %v, want only 1002's 3-day-old", ids(got), err)
	}
	got, _ = s.ExpiredMessages(ctx, now, 5, 0)
	if want := []string{a.ID, b.ID, c.ID}; !slices.Equal(ids(got), want) {
		t.Errorf("global 5 days: %v, want %v", ids(got), want)
	}
	if err := s.SetTenantRetention(ctx, "acme", 0); err != nil { // acme keeps for ever
		t.Fatal(err)
	}
	got, _ = s.ExpiredMessages(ctx, now, 5, 0)
	if want := []string{a.ID, b.ID}; !slices.Equal(ids(got), want) {
		t.Errorf("acme keeps: %v, want %v", ids(got), want)
	}
	if err := s.SetTenantRetention(ctx, "acme", 3); err != nil {
		t.Fatal(err)
	}
	if d, ok, err := s.TenantRetention(ctx, "acme"); d != 3 || !ok || err != nil {
		t.Errorf("TenantRetention = %d %v %v", d, ok, err)
	}
	got, _ = s.ExpiredMessages(ctx, now, 0, 0)
	if len(got) != 3 {
		t.Errorf("acme 3 days: %v", ids(got))
	}
	got, _ = s.ExpiredMessages(ctx, now, 0, 1)
	if len(got) != 1 {
		t.Errorf("limit 1: %v", ids(got))
	}
	if err := s.SetTenantRetention(ctx, "acme", -1); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.TenantRetention(ctx, "acme"); ok {
		t.Error("tenant retention still set after -1")
	}
	if err := s.SetTenantRetention(ctx, "nope", 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown tenant: %v", err)
	}
}

// DeleteMessages deletes a batch in one transaction with one change event
// per row, skips rows already gone, and touches nothing else.
func TestDeleteMessagesBatch(t *testing.T) { forEachBackend(t, testDeleteMessagesBatch) }

func testDeleteMessagesBatch(t *testing.T, be backend) {
	s := be.open(t)
	ctx := t.Context()
	mustTenant(t, s, DefaultTenant)
	mustMailbox(t, s, Mailbox{Tenant: DefaultTenant, Number: "1001"})
	mustMailbox(t, s, Mailbox{Tenant: DefaultTenant, Number: "1002"})
	a := mustMessage(t, s, Message{Tenant: DefaultTenant, Mailbox: "1001"})
	b := mustMessage(t, s, Message{Tenant: DefaultTenant, Mailbox: "1002"})
	keep := mustMessage(t, s, Message{Tenant: DefaultTenant, Mailbox: "1001"})
	if _, err := s.DeleteMessage(ctx, DefaultTenant, "1002", b.ID); err != nil {
		t.Fatal(err)
	}
	before := len(allChanges(t, s))
	// b is gone already; a third names a's id in the wrong mailbox.
	wrong := *a
	wrong.Mailbox = "1002"
	gone, err := s.DeleteMessages(ctx, []Message{*a, *b, wrong})
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 1 || gone[0].ID != a.ID || gone[0].MediaKey != a.MediaKey {
		t.Fatalf("deleted %v, want only %s with its media key", ids(gone), a.ID)
	}
	if _, err := s.GetMessage(ctx, DefaultTenant, "1001", a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("a still there: %v", err)
	}
	if _, err := s.GetMessage(ctx, DefaultTenant, "1001", keep.ID); err != nil {
		t.Errorf("the message not named was touched: %v", err)
	}
	chs := allChanges(t, s)[before:]
	if len(chs) != 1 || chs[0].Kind != MessageDeleted || chs[0].Message == nil || chs[0].Message.ID != a.ID {
		t.Errorf("change events %v, want one message deletion of a", kinds(chs))
	}
	if gone, err := s.DeleteMessages(ctx, nil); gone != nil || err != nil {
		t.Errorf("empty batch: %v %v", gone, err)
	}
	if err := s.TidyMessages(ctx); err != nil {
		t.Errorf("TidyMessages: %v", err)
	}
}
