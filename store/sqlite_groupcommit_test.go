package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

func groupFixture(t testing.TB) *sqlStore {
	t.Helper()
	st, err := Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "vm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := st.(*sqlStore)
	if err := s.CreateTenant(t.Context(), &Tenant{Name: DefaultTenant}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"1001", "1002"} {
		if err := s.CreateMailbox(t.Context(), &Mailbox{Tenant: DefaultTenant, Number: n}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// Many deposits ending together share transactions; a duplicate id and a
// missing mailbox among them fail alone, every other row is stored with
// its change-log event.
func TestGroupCommitConcurrent(t *testing.T) {
	s := groupFixture(t)
	ctx := t.Context()
	dup := &Message{Tenant: DefaultTenant, Mailbox: "1001", CallerID: "first"}
	if err := s.CreateMessage(ctx, dup); err != nil {
		t.Fatal(err)
	}

	const n = 200
	msgs := make([]*Message, n)
	for i := range msgs {
		msgs[i] = &Message{Tenant: DefaultTenant, Mailbox: []string{"1001", "1002"}[i%2], CallerID: fmt.Sprint(i)}
	}
	const dupAt, goneAt = 57, 123
	msgs[dupAt] = &Message{ID: dup.ID, Tenant: DefaultTenant, Mailbox: "1001", CallerID: "again"}
	msgs[goneAt].Mailbox = "9999"

	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range msgs {
		wg.Go(func() {
			<-start
			errs[i] = s.CreateMessage(ctx, msgs[i])
		})
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		switch i {
		case dupAt:
			if !errors.Is(err, ErrExists) {
				t.Errorf("duplicate id: %v, want ErrExists", err)
			}
		case goneAt:
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("missing mailbox: %v, want ErrNotFound", err)
			}
		default:
			if err != nil {
				t.Errorf("message %d: %v", i, err)
			}
		}
	}
	if got := s.group.largest.Load(); got < 2 {
		t.Errorf("largest transaction held %d rows: the inserts were not grouped", got)
	}

	events := map[string]int{}
	for _, ch := range allChanges(t, s) {
		if ch.Kind == MessageCreated {
			events[ch.Message.ID]++
		}
	}
	for i, m := range msgs {
		if i == dupAt || i == goneAt {
			continue
		}
		got, err := s.GetMessage(ctx, m.Tenant, m.Mailbox, m.ID)
		if err != nil {
			t.Errorf("message %d not stored: %v", i, err)
			continue
		}
		if got.CallerID != fmt.Sprint(i) || got.MediaKey != MediaKey(m.Tenant, m.Mailbox, m.ID) {
			t.Errorf("message %d stored as %+v", i, got)
		}
		if events[m.ID] != 1 {
			t.Errorf("message %d has %d change events, want 1", i, events[m.ID])
		}
	}
	if got, err := s.GetMessage(ctx, DefaultTenant, "1001", dup.ID); err != nil || got.CallerID != "first" {
		t.Errorf("the duplicate replaced the first row: %+v, %v", got, err)
	}
	if events[dup.ID] != 1 {
		t.Errorf("duplicate id has %d change events, want 1 (the first row's)", events[dup.ID])
	}
	if len(events) != n-1 { // the first row, plus n rows but the duplicate and the missing mailbox
		t.Errorf("%d messages have events, want %d", len(events), n-1)
	}
	c, err := s.CountMessages(ctx, DefaultTenant, "1001")
	// 1001 has the even indexes and the first row; the duplicate (an odd
	// index, moved to 1001) is not counted.
	if err != nil || c.New != n/2+1 {
		t.Errorf("1001 counts = %+v, %v; want %d new", c, err, n/2+1)
	}
}

// A caller whose context has ended gets its error and no row; the store
// goes on serving the others.
func TestGroupCommitCancelled(t *testing.T) {
	s := groupFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	m := &Message{Tenant: DefaultTenant, Mailbox: "1001"}
	if err := s.CreateMessage(ctx, m); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled CreateMessage = %v, want context.Canceled", err)
	}
	if m.ID != "" {
		t.Errorf("the caller's message was changed on failure: %+v", m)
	}
	if l, _, err := s.ListMessages(t.Context(), MessageFilter{Tenant: DefaultTenant}); err != nil || len(l) != 0 {
		t.Errorf("rows after a cancelled insert = %v, %v", l, err)
	}
	if err := s.CreateMessage(t.Context(), &Message{Tenant: DefaultTenant, Mailbox: "1001"}); err != nil {
		t.Errorf("next insert: %v", err)
	}
}

// After Close, an insert fails with ErrClosed instead of waiting forever.
func TestGroupCommitClosed(t *testing.T) {
	s := groupFixture(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMessage(t.Context(), &Message{Tenant: DefaultTenant, Mailbox: "1001"}); !errors.Is(err, ErrClosed) {
		t.Errorf("CreateMessage after Close = %v, want ErrClosed", err)
	}
}
