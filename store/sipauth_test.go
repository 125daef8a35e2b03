package store

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestSIPCredentials(t *testing.T) { forEachBackend(t, testSIPCredentials) }

func testSIPCredentials(t *testing.T, b backend) {
	s := b.open(t)
	ctx := t.Context()
	mustTenant(t, s, "acme", "acme.example")
	mustMailbox(t, s, Mailbox{Tenant: "acme", Number: "1001"})
	if _, err := s.GetSIPCredentials(ctx, "acme", "1001"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before Set: %v", err)
	}
	c := &SIPCredentials{Tenant: "acme", Mailbox: "1001", Realm: "acme.example", HA1MD5: "m1", HA1SHA256: "s1"}
	if err := s.SetSIPCredentials(ctx, c); err != nil {
		t.Fatal(err)
	}
	c2 := &SIPCredentials{Tenant: "acme", Mailbox: "1001", Realm: "acme.example", HA1MD5: "m2", HA1SHA256: "s2"}
	if err := s.SetSIPCredentials(ctx, c2); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSIPCredentials(ctx, "acme", "1001")
	if err != nil || got.HA1MD5 != "m2" || got.HA1SHA256 != "s2" || got.Realm != "acme.example" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if err := s.SetSIPCredentials(ctx, &SIPCredentials{Tenant: "acme", Mailbox: "9999", Realm: "r", HA1MD5: "m", HA1SHA256: "s"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Set on a missing mailbox: %v", err)
	}
	// Credentials go with their mailbox.
	if _, err := s.DeleteMailbox(ctx, "acme", "1001"); err != nil {
		t.Fatal(err)
	}
	mustMailbox(t, s, Mailbox{Tenant: "acme", Number: "1001"})
	if _, err := s.GetSIPCredentials(ctx, "acme", "1001"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("credentials survived their mailbox: %v", err)
	}
	if err := s.SetSIPCredentials(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSIPCredentials(ctx, "acme", "1001"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSIPCredentials(ctx, "acme", "1001"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after Delete: %v", err)
	}

	k1, err := s.SIPAuthKey(ctx)
	if err != nil || len(k1) != 32 {
		t.Fatalf("SIPAuthKey = %x, %v", k1, err)
	}
	k2, err := s.SIPAuthKey(ctx)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second SIPAuthKey differs: %x vs %x (%v)", k1, k2, err)
	}
}

func TestSIPRegistrations(t *testing.T) { forEachBackend(t, testSIPRegistrations) }

func testSIPRegistrations(t *testing.T, b backend) {
	s := b.open(t)
	ctx := t.Context()
	mustTenant(t, s, "acme")
	mustMailbox(t, s, Mailbox{Tenant: "acme", Number: "1001"})
	now := time.Now().UTC().Truncate(time.Microsecond)
	a := &SIPRegistration{Tenant: "acme", Mailbox: "1001", Contact: "sip:1001@192.0.2.1:5060", Source: "192.0.2.1:5060",
		Transport: "udp", Path: []string{"<sip:p1.example;lr>"}, CallID: "c1", CSeq: 7, ExpiresAt: now.Add(time.Hour)}
	bb := &SIPRegistration{Tenant: "acme", Mailbox: "1001", Contact: "sip:1001@192.0.2.2:5060", Source: "192.0.2.2:5060",
		Transport: "tcp", CallID: "c2", CSeq: 1, ExpiresAt: now.Add(time.Minute)}
	for _, r := range []*SIPRegistration{a, bb} {
		if err := s.SaveSIPRegistration(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	a.CSeq, a.ExpiresAt = 8, now.Add(2*time.Hour) // a refresh
	if err := s.SaveSIPRegistration(ctx, a); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListSIPRegistrations(ctx, "acme", "1001", now)
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if got := list[0]; got.Contact != a.Contact || got.CSeq != 8 || !got.ExpiresAt.Equal(a.ExpiresAt) ||
		len(got.Path) != 1 || got.Path[0] != a.Path[0] || got.Transport != "udp" || got.Source != a.Source {
		t.Fatalf("first binding = %+v", got)
	}
	// An expired binding is not listed.
	list, _ = s.ListSIPRegistrations(ctx, "acme", "1001", now.Add(30*time.Minute))
	if len(list) != 1 || list[0].Contact != a.Contact {
		t.Fatalf("after expiry: %+v", list)
	}
	// One claim per change and binding, whoever asks.
	for i, want := range []bool{true, false} {
		if ok, err := s.ClaimSIPRegistrationNotify(ctx, "acme", "1001", a.Contact, "ev1"); err != nil || ok != want {
			t.Fatalf("claim %d of ev1 = %v, %v; want %v", i, ok, err, want)
		}
	}
	if ok, _ := s.ClaimSIPRegistrationNotify(ctx, "acme", "1001", a.Contact, "ev2"); !ok {
		t.Fatal("the next change could not be claimed")
	}
	if ok, _ := s.ClaimSIPRegistrationNotify(ctx, "acme", "1001", "sip:gone@x", "ev2"); ok {
		t.Fatal("claimed a binding that does not exist")
	}
	if err := s.DeleteSIPRegistration(ctx, "acme", "1001", a.Contact); err != nil {
		t.Fatal(err)
	}
	list, _ = s.ListSIPRegistrations(ctx, "acme", "1001", now)
	if len(list) != 1 || list[0].Contact != bb.Contact {
		t.Fatalf("after delete one: %+v", list)
	}
	if err := s.DeleteSIPRegistration(ctx, "acme", "1001", ""); err != nil {
		t.Fatal(err)
	}
	if list, _ = s.ListSIPRegistrations(ctx, "acme", "1001", now); len(list) != 0 {
		t.Fatalf("after delete all: %+v", list)
	}
	if err := s.SaveSIPRegistration(ctx, &SIPRegistration{Tenant: "acme", Mailbox: "404", Contact: "sip:x@y", ExpiresAt: now}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Save on a missing mailbox: %v", err)
	}
	if err := s.SaveSIPRegistration(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteMailbox(ctx, "acme", "1001"); err != nil {
		t.Fatalf("DeleteMailbox with a binding: %v", err)
	}
}
