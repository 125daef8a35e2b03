package store

// This file is over 600 lines on purpose: the store contract is one suite
// that every backend runs; its cases share fixtures and must stay together.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// RunContract checks the behaviour every Store implementation must share.
// open must return an empty store and register its Close with t.Cleanup.
func RunContract(t *testing.T, open func(t *testing.T) Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"Tenants", contractTenants},
		{"TenantForDomain", contractTenantForDomain},
		{"DeleteTenant", contractDeleteTenant},
		{"Mailboxes", contractMailboxes},
		{"ListMailboxes", contractListMailboxes},
		{"GroupsOf", contractGroupsOf},
		{"DeleteMailbox", contractDeleteMailbox},
		{"Messages", contractMessages},
		{"ListMessages", contractListMessages},
		{"CountMessages", contractCountMessages},
		{"ConcurrentWriters", contractConcurrentWriters},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// ---- fixtures ----

func mustTenant(t *testing.T, s Store, name string, domains ...string) {
	t.Helper()
	if err := s.CreateTenant(t.Context(), &Tenant{Name: name, Domains: domains}); err != nil {
		t.Fatalf("CreateTenant(%q): %v", name, err)
	}
}

func mustMailbox(t *testing.T, s Store, m Mailbox) *Mailbox {
	t.Helper()
	if err := s.CreateMailbox(t.Context(), &m); err != nil {
		t.Fatalf("CreateMailbox(%s/%s): %v", m.Tenant, m.Number, err)
	}
	return &m
}

func mustMessage(t *testing.T, s Store, m Message) *Message {
	t.Helper()
	if err := s.CreateMessage(t.Context(), &m); err != nil {
		t.Fatalf("CreateMessage(%s/%s): %v", m.Tenant, m.Mailbox, err)
	}
	return &m
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

func ids(ms []Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func numbers(ms []Mailbox) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Number
	}
	return out
}

// ---- tenants ----

func contractTenants(t *testing.T, s Store) {
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	before := time.Now()
	tn := &Tenant{Name: "acme", Domains: []string{"acme.example.com", "sip.acme.test"}}
	if err := s.CreateTenant(ctx, tn); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	if tn.CreatedAt.Before(before.Add(-time.Second)) || tn.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want now in UTC", tn.CreatedAt)
	}
	wantErr(t, "duplicate tenant", s.CreateTenant(ctx, &Tenant{Name: "acme"}), ErrExists)
	wantErr(t, "domain owned by another tenant",
		s.CreateTenant(ctx, &Tenant{Name: "other", Domains: []string{"ACME.example.com"}}), ErrExists)
	if err := s.CreateTenant(ctx, &Tenant{Name: "bad/name"}); err == nil {
		t.Error("CreateTenant accepted a name with a slash")
	}
	mustTenant(t, s, "default")

	got, err := s.GetTenant(ctx, "acme")
	if err != nil {
		t.Fatalf("GetTenant: %v", err)
	}
	if got.Name != "acme" || !slices.Equal(got.Domains, tn.Domains) || !got.CreatedAt.Equal(tn.CreatedAt) {
		t.Errorf("GetTenant = %+v, want %+v", got, tn)
	}
	_, err = s.GetTenant(ctx, "nope")
	wantErr(t, "GetTenant(missing)", err, ErrNotFound)

	list, err := s.ListTenants(ctx)
	if err != nil {
		t.Fatalf("ListTenants: %v", err)
	}
	var names []string
	for _, x := range list {
		names = append(names, x.Name)
	}
	if !slices.Equal(names, []string{"acme", "default"}) {
		t.Errorf("ListTenants = %v, want [acme default]", names)
	}
	if d := list[1].Domains; d == nil || len(d) != 0 {
		t.Errorf("tenant without domains: Domains = %#v, want empty non-nil", d)
	}
}

func contractTenantForDomain(t *testing.T, s Store) {
	ctx := t.Context()
	mustTenant(t, s, "acme", "VM.Acme.Example")
	mustTenant(t, s, "beta", "beta.test")
	for host, want := range map[string]string{
		"vm.acme.example":  "acme",
		"VM.ACME.EXAMPLE":  "acme",
		"vm.acme.example.": "acme",
		"beta.test":        "beta",
		"unknown.test":     DefaultTenant,
		"":                 DefaultTenant,
		"acme":             DefaultTenant, // a tenant name is not a domain
	} {
		got, err := s.TenantForDomain(ctx, host)
		if err != nil || got != want {
			t.Errorf("TenantForDomain(%q) = %q, %v; want %q", host, got, err, want)
		}
	}
}

func contractDeleteTenant(t *testing.T, s Store) {
	ctx := t.Context()
	mustTenant(t, s, "acme", "acme.test")
	mustMailbox(t, s, Mailbox{Tenant: "acme", Number: "1001"})
	wantErr(t, "DeleteTenant with mailboxes", s.DeleteTenant(ctx, "acme"), ErrExists)
	if _, err := s.DeleteMailbox(ctx, "acme", "1001"); err != nil {
		t.Fatalf("DeleteMailbox: %v", err)
	}
	if err := s.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatalf("DeleteTenant: %v", err)
	}
	_, err := s.GetTenant(ctx, "acme")
	wantErr(t, "GetTenant after delete", err, ErrNotFound)
	wantErr(t, "DeleteTenant twice", s.DeleteTenant(ctx, "acme"), ErrNotFound)
	if got, _ := s.TenantForDomain(ctx, "acme.test"); got != DefaultTenant {
		t.Errorf("TenantForDomain after delete = %q, want default", got)
	}
	// The domain is free again.
	mustTenant(t, s, "acme2", "acme.test")
}

// ---- mailboxes ----

func contractMailboxes(t *testing.T, s Store) {
	ctx := t.Context()
	mustTenant(t, s, "default")
	mustTenant(t, s, "other")

	wantErr(t, "CreateMailbox(unknown tenant)",
		s.CreateMailbox(ctx, &Mailbox{Tenant: "nope", Number: "1001"}), ErrNotFound)

	full := Mailbox{
		Tenant: "default", Number: "1001", Name: "Alice", Type: TypePersonal,
		Members: []string{}, PINHash: "$2a$10$hash", Email: "alice@example.com",
		AttachAudio: true, DeleteAfterEmail: true, MaxMessages: 50, MaxSeconds: 120,
		Review: true, AskPassword: true, Operator: "0", Timezone: "Europe/Paris",
		Language: "fr", MWITargets: []string{"sip:1001@10.0.0.5:5060"}, RetentionDays: 30,
	}
	m := full
	before := time.Now().Add(-time.Second)
	if err := s.CreateMailbox(ctx, &m); err != nil {
		t.Fatalf("CreateMailbox: %v", err)
	}
	if m.CreatedAt.Before(before) || !m.CreatedAt.Equal(m.UpdatedAt) {
		t.Errorf("CreatedAt/UpdatedAt = %v/%v, want now and equal", m.CreatedAt, m.UpdatedAt)
	}
	got, err := s.GetMailbox(ctx, "default", "1001")
	if err != nil {
		t.Fatalf("GetMailbox: %v", err)
	}
	if !mailboxEqual(*got, m) {
		t.Errorf("GetMailbox = %+v\nwant %+v", *got, m)
	}

	wantErr(t, "duplicate mailbox", s.CreateMailbox(ctx, &Mailbox{Tenant: "default", Number: "1001"}), ErrExists)
	// Numbers are unique per tenant only.
	mustMailbox(t, s, Mailbox{Tenant: "other", Number: "1001"})
	if err := s.CreateMailbox(ctx, &Mailbox{Tenant: "default", Number: "1002", Type: "robot"}); err == nil {
		t.Error("CreateMailbox accepted type robot")
	}
	if err := s.CreateMailbox(ctx, &Mailbox{Tenant: "default", Number: "../1002"}); err == nil {
		t.Error("CreateMailbox accepted number ../1002")
	}
	bare := mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1003"})
	if bare.Type != TypePersonal {
		t.Errorf("default Type = %q, want personal", bare.Type)
	}
	got, err = s.GetMailbox(ctx, "default", "1003")
	if err != nil {
		t.Fatal(err)
	}
	if got.Members == nil || got.MWITargets == nil {
		t.Errorf("empty lists read back as nil: %+v", got)
	}

	_, err = s.GetMailbox(ctx, "default", "9999")
	wantErr(t, "GetMailbox(missing)", err, ErrNotFound)
	_, err = s.GetMailbox(ctx, "nope", "1001")
	wantErr(t, "GetMailbox(missing tenant)", err, ErrNotFound)

	// Update replaces everything but CreatedAt.
	time.Sleep(2 * time.Millisecond)
	upd := Mailbox{
		Tenant: "default", Number: "1001", Name: "Alice B", Type: TypeGroup,
		Members: []string{"1002", "1003"}, PINHash: "$2a$10$other",
		MaxMessages: 10, Timezone: "UTC", MWITargets: []string{},
	}
	if err := s.UpdateMailbox(ctx, &upd); err != nil {
		t.Fatalf("UpdateMailbox: %v", err)
	}
	if !upd.CreatedAt.Equal(m.CreatedAt) || !upd.UpdatedAt.After(m.UpdatedAt) {
		t.Errorf("after update CreatedAt/UpdatedAt = %v/%v, was %v/%v", upd.CreatedAt, upd.UpdatedAt, m.CreatedAt, m.UpdatedAt)
	}
	got, err = s.GetMailbox(ctx, "default", "1001")
	if err != nil {
		t.Fatal(err)
	}
	if !mailboxEqual(*got, upd) {
		t.Errorf("after update GetMailbox = %+v\nwant %+v", *got, upd)
	}
	// The other tenant's 1001 is untouched.
	if o, _ := s.GetMailbox(ctx, "other", "1001"); o == nil || o.Name != "" {
		t.Errorf("other/1001 = %+v, want untouched", o)
	}
	wantErr(t, "UpdateMailbox(missing)", s.UpdateMailbox(ctx, &Mailbox{Tenant: "default", Number: "9999"}), ErrNotFound)
	if err := s.UpdateMailbox(ctx, &Mailbox{Tenant: "default", Number: "1001", Type: "robot"}); err == nil {
		t.Error("UpdateMailbox accepted type robot")
	}
}

func mailboxEqual(a, b Mailbox) bool {
	ta, tb := a, b
	ta.CreatedAt, tb.CreatedAt, ta.UpdatedAt, tb.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	norm := func(l []string) []string {
		if l == nil {
			return []string{}
		}
		return l
	}
	ta.Members, tb.Members = norm(ta.Members), norm(tb.Members)
	ta.MWITargets, tb.MWITargets = norm(ta.MWITargets), norm(tb.MWITargets)
	return fmt.Sprintf("%#v", ta) == fmt.Sprintf("%#v", tb) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func contractListMailboxes(t *testing.T, s Store) {
	ctx := t.Context()
	mustTenant(t, s, "default")
	mustTenant(t, s, "other")
	var want []string
	for i := 25; i > 0; i-- { // created out of order on purpose
		n := fmt.Sprintf("%d", 1000+i)
		mustMailbox(t, s, Mailbox{Tenant: "default", Number: n})
		want = append(want, n)
	}
	slices.Sort(want)
	mustMailbox(t, s, Mailbox{Tenant: "other", Number: "1005"})

	var got []string
	after, pages := "", 0
	for {
		items, next, err := s.ListMailboxes(ctx, "default", after, 10)
		if err != nil {
			t.Fatalf("ListMailboxes(after %q): %v", after, err)
		}
		pages++
		if len(items) > 10 {
			t.Fatalf("page of %d items, limit 10", len(items))
		}
		got = append(got, numbers(items)...)
		if next == "" {
			break
		}
		if next != items[len(items)-1].Number {
			t.Fatalf("next = %q, want last number %q", next, items[len(items)-1].Number)
		}
		after = next
	}
	if pages != 3 || !slices.Equal(got, want) {
		t.Errorf("paged %d pages: %v\nwant 3 pages: %v", pages, got, want)
	}

	items, next, err := s.ListMailboxes(ctx, "default", "", 0)
	if err != nil || next != "" || len(items) != 25 {
		t.Errorf("ListMailboxes(limit 0) = %d items, next %q, %v; want 25, \"\"", len(items), next, err)
	}
	// An exact multiple of the page size ends with next = "" on the page
	// after, or on the last full page; both are fine, but never an empty
	// page followed by a cursor.
	items, next, err = s.ListMailboxes(ctx, "default", "", 25)
	if err != nil || next != "" || len(items) != 25 {
		t.Errorf("ListMailboxes(limit 25) = %d items, next %q, %v; want 25, \"\"", len(items), next, err)
	}
	items, _, err = s.ListMailboxes(ctx, "other", "", 0)
	if err != nil || !slices.Equal(numbers(items), []string{"1005"}) {
		t.Errorf("other tenant = %v, %v; want [1005]", numbers(items), err)
	}
	items, next, err = s.ListMailboxes(ctx, "nope", "", 0)
	if err != nil || len(items) != 0 || next != "" {
		t.Errorf("unknown tenant = %v, %q, %v; want empty", items, next, err)
	}
}

func contractGroupsOf(t *testing.T, s Store) {
	ctx := t.Context()
	mustTenant(t, s, "default")
	mustTenant(t, s, "other")
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1001"})
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1002"})
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "8001", Type: TypeGroup, Members: []string{"1002"}})
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "8000", Type: TypeGroup, Members: []string{"1001", "1002"}})
	// Members of a personal mailbox mean nothing; "10011" must not match "1001".
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1003", Members: []string{"1001"}})
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "8002", Type: TypeGroup, Members: []string{"10011"}})
	mustMailbox(t, s, Mailbox{Tenant: "other", Number: "8000", Type: TypeGroup, Members: []string{"1001"}})

	for member, want := range map[string][]string{
		"1001": {"8000"},
		"1002": {"8000", "8001"},
		"1003": {},
	} {
		got, err := s.GroupsOf(ctx, "default", member)
		if err != nil {
			t.Fatalf("GroupsOf(%s): %v", member, err)
		}
		if !slices.Equal(numbers(got), want) {
			t.Errorf("GroupsOf(%s) = %v, want %v", member, numbers(got), want)
		}
		for _, g := range got {
			if g.Type != TypeGroup || !slices.Contains(g.Members, member) {
				t.Errorf("GroupsOf(%s) returned %+v", member, g)
			}
		}
	}
}

func contractDeleteMailbox(t *testing.T, s Store) {
	ctx := t.Context()
	mustTenant(t, s, "default")
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1001"})
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1002"})
	var want []string
	for i := range 3 {
		m := mustMessage(t, s, Message{Tenant: "default", Mailbox: "1001", CallerID: fmt.Sprint(i)})
		want = append(want, m.ID)
	}
	keep := mustMessage(t, s, Message{Tenant: "default", Mailbox: "1002"})

	msgs, err := s.DeleteMailbox(ctx, "default", "1001")
	if err != nil {
		t.Fatalf("DeleteMailbox: %v", err)
	}
	if !slices.Equal(ids(msgs), want) {
		t.Errorf("DeleteMailbox returned %v, want %v", ids(msgs), want)
	}
	for _, m := range msgs {
		if m.MediaKey != MediaKey("default", "1001", m.ID) {
			t.Errorf("returned message without its media key: %+v", m)
		}
	}
	_, err = s.GetMailbox(ctx, "default", "1001")
	wantErr(t, "GetMailbox after delete", err, ErrNotFound)
	_, err = s.GetMessage(ctx, "default", "1001", want[0])
	wantErr(t, "GetMessage after mailbox delete", err, ErrNotFound)
	if c, err := s.CountMessages(ctx, "default", "1001"); err != nil || c != (Counts{}) {
		t.Errorf("CountMessages after delete = %+v, %v", c, err)
	}
	if _, err := s.GetMessage(ctx, "default", "1002", keep.ID); err != nil {
		t.Errorf("other mailbox's message gone: %v", err)
	}
	_, err = s.DeleteMailbox(ctx, "default", "1001")
	wantErr(t, "DeleteMailbox twice", err, ErrNotFound)

	// A mailbox without messages returns an empty list.
	msgs, err = s.DeleteMailbox(ctx, "default", "1002")
	if err != nil || len(msgs) != 1 {
		t.Errorf("DeleteMailbox(1002) = %v, %v", msgs, err)
	}
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1003"})
	msgs, err = s.DeleteMailbox(ctx, "default", "1003")
	if err != nil || len(msgs) != 0 {
		t.Errorf("DeleteMailbox(empty) = %v, %v", msgs, err)
	}
}

// ---- messages ----

func contractMessages(t *testing.T, s Store) {
	ctx := t.Context()
	mustTenant(t, s, "default")
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1001"})
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1002"})

	// Defaults are filled in.
	before := time.Now().Add(-time.Second)
	m := mustMessage(t, s, Message{Tenant: "default", Mailbox: "1001", CallerID: "0612345678"})
	if m.ID == "" || m.Folder != FolderNew || m.ReceivedAt.Before(before) ||
		m.MediaKey != MediaKey("default", "1001", m.ID) {
		t.Errorf("defaults not filled: %+v", m)
	}

	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	received := time.Date(2025, 3, 4, 5, 6, 7, 123456789, paris)
	in := Message{
		ID: NewMessageID(), Tenant: "default", Mailbox: "1001", Folder: FolderWork,
		CallerID: "sip:0612345678@carrier.example", CallerE164: "+33612345678", CallerName: "Bob",
		ReceivedAt: received, DurationMS: 12345, Urgent: true, Read: true, Size: 197_000,
		MediaKey: "default/1001/custom.wav",
	}
	m2 := in
	if err := s.CreateMessage(ctx, &m2); err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	got, err := s.GetMessage(ctx, "default", "1001", in.ID)
	if err != nil {
		t.Fatalf("GetMessage: %v", err)
	}
	if !got.ReceivedAt.Equal(received) || got.ReceivedAt.Location() != time.UTC {
		t.Errorf("ReceivedAt = %v, want %v in UTC", got.ReceivedAt, received)
	}
	want := in
	want.ReceivedAt = received.UTC()
	if *got != want {
		t.Errorf("GetMessage = %+v\nwant %+v", *got, want)
	}

	wantErr(t, "duplicate id", s.CreateMessage(ctx, &Message{ID: in.ID, Tenant: "default", Mailbox: "1002"}), ErrExists)
	wantErr(t, "unknown mailbox", s.CreateMessage(ctx, &Message{Tenant: "default", Mailbox: "9999"}), ErrNotFound)
	wantErr(t, "unknown tenant", s.CreateMessage(ctx, &Message{Tenant: "nope", Mailbox: "1001"}), ErrNotFound)
	if err := s.CreateMessage(ctx, &Message{Tenant: "default", Mailbox: "1001", Folder: "trash"}); err == nil {
		t.Error("CreateMessage accepted folder trash")
	}

	// A message is addressed by tenant, mailbox and id together.
	_, err = s.GetMessage(ctx, "default", "1002", in.ID)
	wantErr(t, "GetMessage(wrong mailbox)", err, ErrNotFound)
	_, err = s.GetMessage(ctx, "default", "1001", NewMessageID())
	wantErr(t, "GetMessage(missing)", err, ErrNotFound)

	// Update changes folder, read and urgent only.
	upd := Message{ID: in.ID, Tenant: "default", Mailbox: "1001", Folder: FolderFamily,
		Read: false, Urgent: false, CallerID: "ignored", Size: 1}
	if err := s.UpdateMessage(ctx, &upd); err != nil {
		t.Fatalf("UpdateMessage: %v", err)
	}
	want.Folder, want.Read, want.Urgent = FolderFamily, false, false
	if upd != want {
		t.Errorf("UpdateMessage result = %+v\nwant %+v", upd, want)
	}
	got, _ = s.GetMessage(ctx, "default", "1001", in.ID)
	if got == nil || *got != want {
		t.Errorf("after update GetMessage = %+v\nwant %+v", got, want)
	}
	bad := want
	bad.Folder = "trash"
	if err := s.UpdateMessage(ctx, &bad); err == nil {
		t.Error("UpdateMessage accepted folder trash")
	}
	wrong := want
	wrong.Mailbox = "1002"
	wantErr(t, "UpdateMessage(wrong mailbox)", s.UpdateMessage(ctx, &wrong), ErrNotFound)

	// Delete returns the row.
	del, err := s.DeleteMessage(ctx, "default", "1001", in.ID)
	if err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	if *del != want {
		t.Errorf("DeleteMessage = %+v\nwant %+v", *del, want)
	}
	_, err = s.DeleteMessage(ctx, "default", "1001", in.ID)
	wantErr(t, "DeleteMessage twice", err, ErrNotFound)
	_, err = s.DeleteMessage(ctx, "default", "1002", m.ID)
	wantErr(t, "DeleteMessage(wrong mailbox)", err, ErrNotFound)
	_, err = s.GetMessage(ctx, "default", "1001", in.ID)
	wantErr(t, "GetMessage after delete", err, ErrNotFound)
}

func contractListMessages(t *testing.T, s Store) {
	ctx := t.Context()
	mustTenant(t, s, "default")
	mustTenant(t, s, "other")
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1001"})
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1002"})
	mustMailbox(t, s, Mailbox{Tenant: "other", Number: "1001"})

	var all, bob, work []string
	for i := range 23 {
		m := Message{Tenant: "default", Mailbox: "1001", CallerID: "0612345678"}
		switch {
		case i%3 == 0:
			m.CallerID, m.CallerE164 = "sip:bob@pbx", "+33612345678" // matched by E.164
		case i%3 == 1:
			m.CallerID = "+33612345678" // matched by caller id as received
		}
		if i%4 == 0 {
			m.Folder = FolderWork
		}
		mm := mustMessage(t, s, m)
		all = append(all, mm.ID)
		if i%3 != 2 {
			bob = append(bob, mm.ID)
		}
		if i%4 == 0 {
			work = append(work, mm.ID)
		}
	}
	slices.Sort(all)
	other := mustMessage(t, s, Message{Tenant: "default", Mailbox: "1002", CallerE164: "+33612345678"})
	mustMessage(t, s, Message{Tenant: "other", Mailbox: "1001", CallerE164: "+33612345678"})

	page := func(f MessageFilter) []string {
		t.Helper()
		var got []string
		for range 100 {
			items, next, err := s.ListMessages(ctx, f)
			if err != nil {
				t.Fatalf("ListMessages(%+v): %v", f, err)
			}
			if f.Limit > 0 && len(items) > f.Limit {
				t.Fatalf("ListMessages(%+v): %d items over the limit", f, len(items))
			}
			got = append(got, ids(items)...)
			if next == "" {
				return got
			}
			f.After = next
		}
		t.Fatalf("ListMessages(%+v) never ended", f)
		return nil
	}

	if got := page(MessageFilter{Tenant: "default", Mailbox: "1001", Limit: 5}); !slices.Equal(got, all) {
		t.Errorf("paged = %v\nwant %v", got, all)
	}
	if got := page(MessageFilter{Tenant: "default", Mailbox: "1001"}); !slices.Equal(got, all) {
		t.Errorf("limit 0 = %d items, want %d", len(got), len(all))
	}
	if got := page(MessageFilter{Tenant: "default", Mailbox: "1001", Folder: FolderWork, Limit: 2}); !slices.Equal(got, work) {
		t.Errorf("folder work = %v\nwant %v", got, work)
	}
	if got := page(MessageFilter{Tenant: "default", Mailbox: "1001", CallerID: "+33612345678", Limit: 4}); !slices.Equal(got, bob) {
		t.Errorf("caller = %v\nwant %v", got, bob)
	}
	// Without a mailbox the caller filter spans the tenant (GDPR), never other tenants.
	wantTenant := append(slices.Clone(bob), other.ID)
	slices.Sort(wantTenant)
	if got := page(MessageFilter{Tenant: "default", CallerID: "+33612345678"}); !slices.Equal(got, wantTenant) {
		t.Errorf("tenant-wide caller = %v\nwant %v", got, wantTenant)
	}
	// The cursor is an id: starting after the 10th message gives the rest.
	if got := page(MessageFilter{Tenant: "default", Mailbox: "1001", After: all[9]}); !slices.Equal(got, all[10:]) {
		t.Errorf("after %s = %v\nwant %v", all[9], got, all[10:])
	}
	items, next, err := s.ListMessages(ctx, MessageFilter{Tenant: "default", Mailbox: "1001", After: all[len(all)-1]})
	if err != nil || len(items) != 0 || next != "" {
		t.Errorf("after the last = %v, %q, %v; want empty", items, next, err)
	}
	items, _, err = s.ListMessages(ctx, MessageFilter{Tenant: "default", Mailbox: "9999"})
	if err != nil || len(items) != 0 {
		t.Errorf("unknown mailbox = %v, %v; want empty", items, err)
	}
	if _, _, err := s.ListMessages(ctx, MessageFilter{Mailbox: "1001"}); err == nil {
		t.Error("ListMessages without a tenant succeeded")
	}
}

func contractCountMessages(t *testing.T, s Store) {
	ctx := t.Context()
	mustTenant(t, s, "default")
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1001"})
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1002"})

	if c, err := s.CountMessages(ctx, "default", "1001"); err != nil || c != (Counts{}) {
		t.Fatalf("empty mailbox counts = %+v, %v", c, err)
	}
	for _, m := range []Message{
		{Folder: FolderNew},
		{Folder: FolderNew, Urgent: true},
		{Folder: FolderNew, Urgent: true},
		{Folder: FolderNew, Read: true},               // played but not yet moved: old
		{Folder: FolderNew, Read: true, Urgent: true}, // urgent old
		{Folder: FolderOld, Read: true},
		{Folder: FolderOld, Urgent: true},
		{Folder: FolderWork},
		{Folder: FolderFamily},
		{Folder: FolderFriends, Urgent: true},
	} {
		m.Tenant, m.Mailbox = "default", "1001"
		mustMessage(t, s, m)
	}
	mustMessage(t, s, Message{Tenant: "default", Mailbox: "1002", Urgent: true})

	want := Counts{New: 3, UrgentNew: 2, Old: 7, UrgentOld: 3}
	c, err := s.CountMessages(ctx, "default", "1001")
	if err != nil || c != want {
		t.Errorf("CountMessages = %+v, %v; want %+v", c, err, want)
	}
	if c, _ := s.CountMessages(ctx, "default", "1002"); c != (Counts{New: 1, UrgentNew: 1}) {
		t.Errorf("CountMessages(1002) = %+v", c)
	}
	// Many at once: the same numbers, zero for a mailbox without messages
	// (or unknown), more mailboxes than one statement takes.
	many := []string{"1001", "1002", "9999"}
	for i := range 1200 {
		many = append(many, fmt.Sprintf("x%d", i))
	}
	all, err := s.CountMailboxes(ctx, "default", many)
	if err != nil || len(all) != len(many) || all["1001"] != want || all["1002"] != (Counts{New: 1, UrgentNew: 1}) ||
		all["9999"] != (Counts{}) || all["x1100"] != (Counts{}) {
		t.Errorf("CountMailboxes = %d entries, 1001 %+v, 1002 %+v, 9999 %+v, %v", len(all), all["1001"], all["1002"], all["9999"], err)
	}
	if other, _ := s.CountMailboxes(ctx, "acme", []string{"1001"}); other["1001"] != (Counts{}) {
		t.Errorf("CountMailboxes of another tenant = %+v", other["1001"])
	}

	// Playing a new message makes it old.
	items, _, err := s.ListMessages(ctx, MessageFilter{Tenant: "default", Mailbox: "1001", Folder: FolderNew, Limit: 1})
	if err != nil || len(items) != 1 {
		t.Fatalf("ListMessages: %v, %v", items, err)
	}
	m := items[0]
	m.Read, m.Folder = true, FolderOld
	if err := s.UpdateMessage(ctx, &m); err != nil {
		t.Fatal(err)
	}
	want = Counts{New: 2, UrgentNew: 2, Old: 8, UrgentOld: 3}
	if c, _ := s.CountMessages(ctx, "default", "1001"); c != want {
		t.Errorf("after play CountMessages = %+v, want %+v", c, want)
	}
}

// contractConcurrentWriters hammers the store from goroutines: writes must
// queue, never fail with "database is locked".
func contractConcurrentWriters(t *testing.T, s Store) {
	ctx := t.Context()
	mustTenant(t, s, "default")
	const workers, each = 8, 25
	for w := range workers {
		mustMailbox(t, s, Mailbox{Tenant: "default", Number: fmt.Sprint(2000 + w)})
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, workers*each*4)
	for w := range workers {
		wg.Go(func() {
			box := fmt.Sprint(2000 + w)
			for i := range each {
				m := Message{Tenant: "default", Mailbox: box, Urgent: i%2 == 0}
				if err := s.CreateMessage(ctx, &m); err != nil {
					errs <- err
					return
				}
				m.Read = true
				if err := s.UpdateMessage(ctx, &m); err != nil {
					errs <- err
				}
				if _, err := s.CountMessages(ctx, "default", box); err != nil {
					errs <- err
				}
				if _, _, err := s.ListMessages(ctx, MessageFilter{Tenant: "default", Mailbox: box}); err != nil {
					errs <- err
				}
				if i%5 == 0 {
					// Mailbox writes interleave with message writes.
					mb := Mailbox{Tenant: "default", Number: box, Name: fmt.Sprint(i)}
					if err := s.UpdateMailbox(ctx, &mb); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range workers {
		c, err := s.CountMessages(ctx, "default", fmt.Sprint(2000+w))
		if err != nil || c.Old != each || c.UrgentOld != (each+1)/2 || c.New != 0 {
			t.Errorf("mailbox %d counts = %+v, %v", 2000+w, c, err)
		}
	}
}
