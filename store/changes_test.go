package store

import (
	"context"
	"sync"
	"testing"
	"time"
)

// eventually polls cond until it holds, or fails t after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recorder collects the changes a subscriber receives.
type recorder struct {
	mu  sync.Mutex
	got []Change
}

func (r *recorder) add(c Change) { r.mu.Lock(); r.got = append(r.got, c); r.mu.Unlock() }

func (r *recorder) changes() []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Change(nil), r.got...)
}

// wait returns the changes once there are at least n.
func (r *recorder) wait(t *testing.T, n int) []Change {
	t.Helper()
	eventually(t, "changes", func() bool { return len(r.changes()) >= n })
	return r.changes()
}

func TestNotifyingPublishesEveryChange(t *testing.T) {
	forEachBackend(t, testNotifyingPublishesEveryChange)
}

func testNotifyingPublishesEveryChange(t *testing.T, b backend) {
	ctx := context.Background()
	raw := b.open(t)
	bus := NewChanges()
	var rec recorder
	cancel := bus.Subscribe(rec.add)
	st := Notifying(raw, bus)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateTenant(ctx, &Tenant{Name: "default"}))
	must(st.CreateMailbox(ctx, &Mailbox{Tenant: "default", Number: "8000", Type: TypeGroup, Members: []string{"1001", "1002"}, PINHash: "secret"}))
	m := &Message{Tenant: "default", Mailbox: "8000", CallerID: "1001"}
	must(st.CreateMessage(ctx, m))
	m.Read, m.Folder = true, FolderOld
	must(st.UpdateMessage(ctx, m))
	_, err := st.DeleteMessage(ctx, "default", "8000", m.ID)
	must(err)
	_, err = st.DeleteMailbox(ctx, "default", "8000")
	must(err)
	// A failed change publishes nothing.
	if _, err := st.DeleteMessage(ctx, "default", "8000", "nope"); err == nil {
		t.Fatal("deleted a missing message")
	}
	want := []ChangeKind{MailboxCreated, MessageCreated, MessageUpdated, MessageDeleted, MailboxDeleted}
	got := rec.wait(t, len(want))
	// One more change marks the end: nothing else came before it.
	must(st.CreateMailbox(ctx, &Mailbox{Tenant: "default", Number: "9999"}))
	got = rec.wait(t, len(want)+1)
	if len(got) != len(want)+1 || got[len(want)].Mailbox != "9999" {
		t.Fatalf("got %d changes, want %d: %+v", len(got), len(want), got)
	}
	ids := map[string]bool{}
	for i, k := range want {
		if got[i].Kind != k || got[i].Tenant != "default" || got[i].Mailbox != "8000" {
			t.Errorf("change %d = %+v, want %s", i, got[i], k)
		}
		if got[i].EventID == "" || ids[got[i].EventID] {
			t.Errorf("change %d: event id %q missing or repeated", i, got[i].EventID)
		}
		ids[got[i].EventID] = true
	}
	if got[1].MailboxType != TypeGroup || len(got[1].Members) != 2 || got[1].Message == nil || got[1].Message.ID != m.ID {
		t.Errorf("message change lacks its mailbox: %+v", got[1])
	}
	// The API derives has_pin from the hash (a bcrypt hash, never the PIN).
	if got[0].MailboxObj == nil || got[0].MailboxObj.PINHash != "secret" || got[4].MailboxObj == nil || got[4].MailboxObj.Number != "8000" {
		t.Errorf("mailbox changes: %+v / %+v", got[0].MailboxObj, got[4].MailboxObj)
	}
	cancel()
	must(st.CreateMailbox(ctx, &Mailbox{Tenant: "default", Number: "1001"}))
	time.Sleep(50 * time.Millisecond)
	if len(rec.changes()) != len(want)+1 {
		t.Error("cancelled subscriber still called")
	}
}
