package store

import (
	"context"
	"path/filepath"
	"testing"
)

func TestNotifyingPublishesEveryChange(t *testing.T) {
	ctx := context.Background()
	raw, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "vm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	bus := NewChanges()
	var got []Change
	cancel := bus.Subscribe(func(c Change) { got = append(got, c) })
	st := Notifying(raw, bus)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateTenant(ctx, &Tenant{Name: "default"}))
	must(st.CreateMailbox(ctx, &Mailbox{Tenant: "default", Number: "8000", Type: TypeGroup, Members: []string{"1001", "1002"}}))
	m := &Message{Tenant: "default", Mailbox: "8000", CallerID: "1001"}
	must(st.CreateMessage(ctx, m))
	m.Read, m.Folder = true, FolderOld
	must(st.UpdateMessage(ctx, m))
	_, err = st.DeleteMessage(ctx, "default", "8000", m.ID)
	must(err)
	_, err = st.DeleteMailbox(ctx, "default", "8000")
	must(err)
	// A failed change publishes nothing.
	if _, err := st.DeleteMessage(ctx, "default", "8000", "nope"); err == nil {
		t.Fatal("deleted a missing message")
	}
	want := []ChangeKind{MailboxCreated, MessageCreated, MessageUpdated, MessageDeleted, MailboxDeleted}
	if len(got) != len(want) {
		t.Fatalf("got %d changes, want %d: %+v", len(got), len(want), got)
	}
	for i, k := range want {
		if got[i].Kind != k || got[i].Tenant != "default" || got[i].Mailbox != "8000" {
			t.Errorf("change %d = %+v, want %s", i, got[i], k)
		}
	}
	if got[1].MailboxType != TypeGroup || len(got[1].Members) != 2 || got[1].Message == nil || got[1].Message.ID != m.ID {
		t.Errorf("message change lacks its mailbox: %+v", got[1])
	}
	cancel()
	must(st.CreateMailbox(ctx, &Mailbox{Tenant: "default", Number: "1001"}))
	if len(got) != len(want) {
		t.Error("cancelled subscriber still called")
	}
}
