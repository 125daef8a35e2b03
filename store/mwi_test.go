package store

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestMWISubscriptionsPersist(t *testing.T) { forEachBackend(t, testMWISubscriptionsPersist) }

func testMWISubscriptionsPersist(t *testing.T, be backend) {
	ctx := context.Background()
	dsn := be.newDSN(t)
	st, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	a := MWISubscription{
		ID: "a", Tenant: "default", Mailbox: "1001", CallID: "c1@x", LocalTag: "lt", RemoteTag: "rt", EventID: "7",
		LocalURI: "<sip:1001@example.com>", RemoteURI: `"Alice" <sip:1001@example.com>`, Contact: "sip:1001@192.0.2.1:5062",
		RouteSet: []string{"<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"}, Transport: "UDP", Source: "192.0.2.1:5062",
		AccountHost: "example.com", LocalCSeq: 10, RemoteCSeq: 1, ExpiresAt: exp,
	}
	b := a
	b.ID, b.CallID, b.Mailbox, b.RouteSet = "b", "c2@x", "8000", nil
	for _, s := range []*MWISubscription{&a, &b} {
		if err := st.SaveMWISubscription(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// A refresh replaces the row; the local CSeq never goes down.
	a2 := a
	a2.RemoteCSeq, a2.LocalCSeq, a2.ExpiresAt = 2, 5, exp.Add(time.Minute)
	if err := st.SaveMWISubscription(ctx, &a2); err != nil {
		t.Fatal(err)
	}
	if err := st.SetMWILocalCSeqs(ctx, map[string]uint32{"a": 12, "b": 3, "absent": 9}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	st, err = Open(ctx, dsn) // survives a restart
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.ListMWISubscriptions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d subscriptions, want 2: %+v", len(got), got)
	}
	wantA := a2
	wantA.LocalCSeq = 12
	wantA.CreatedAt = got[0].CreatedAt
	if !reflect.DeepEqual(got[0], wantA) {
		t.Errorf("subscription a:\n got %+v\nwant %+v", got[0], wantA)
	}
	if got[1].LocalCSeq != 10 || len(got[1].RouteSet) != 0 || got[1].Mailbox != "8000" {
		t.Errorf("subscription b: %+v (its CSeq 10 must not go down to 3)", got[1])
	}
	if err := st.DeleteMWISubscription(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMWISubscription(ctx, "a"); err != nil {
		t.Fatalf("deleting an absent subscription: %v", err)
	}
	if got, _ := st.ListMWISubscriptions(ctx); len(got) != 1 || got[0].ID != "b" {
		t.Errorf("after delete: %+v", got)
	}

	// A start-up raises the CSeqs of what its instance owns, nothing else.
	c := a
	c.ID, c.CallID, c.Owner, c.LocalCSeq = "c", "c3@x", "vm-x", 40
	if err := st.SaveMWISubscription(ctx, &c); err != nil {
		t.Fatal(err)
	}
	if err := st.RaiseMWILocalCSeqs(ctx, "vm-x", 164); err != nil {
		t.Fatal(err)
	}
	got, err = st.ListMWISubscriptions(ctx)
	if err != nil || len(got) != 2 || got[0].LocalCSeq != 10 || got[1].LocalCSeq != 204 {
		t.Errorf("after raising vm-x's CSeqs by 164: %+v %v (want b 10, c 204)", got, err)
	}
}

func TestMWITargetStops(t *testing.T) { forEachBackend(t, testMWITargetStops) }

func testMWITargetStops(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t)
	for _, s := range []MWITargetStop{
		{Tenant: "default", Mailbox: "1001", Target: "sip:a@192.0.2.1", Reason: "481"},
		{Tenant: "default", Mailbox: "1001", Target: "sip:b@192.0.2.2", Reason: "subscribed"},
		{Tenant: "default", Mailbox: "1001", Target: "sip:a@192.0.2.1", Reason: "489"},
	} {
		if err := st.StopMWITarget(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.ListMWITargetStops(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Target != "sip:a@192.0.2.1" || got[0].Reason != "489" || got[1].Reason != "subscribed" || got[0].At.IsZero() {
		t.Fatalf("stops: %+v", got)
	}
	if err := st.ResumeMWITarget(ctx, "default", "1001", "sip:a@192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.ListMWITargetStops(ctx); len(got) != 1 || got[0].Target != "sip:b@192.0.2.2" {
		t.Errorf("after resume: %+v", got)
	}
}

// The wrapped store passes MWI state through without publishing changes:
// subscriptions are not mailbox changes.
func TestMWIStoreThroughNotifying(t *testing.T) { forEachBackend(t, testMWIStoreThroughNotifying) }

func testMWIStoreThroughNotifying(t *testing.T, b backend) {
	ctx := context.Background()
	bus := NewChanges()
	n := 0
	bus.Subscribe(func(Change) { n++ })
	st := Notifying(b.open(t), bus)
	if err := st.SaveMWISubscription(ctx, &MWISubscription{ID: "x", CallID: "c", ExpiresAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.ListMWISubscriptions(ctx); err != nil || len(got) != 1 {
		t.Fatalf("list: %v %v", got, err)
	}
	if n != 0 {
		t.Errorf("%d changes published for MWI state", n)
	}
}

// Many CSeqs at once (a start-up re-NOTIFY) go in chunks: every one lands.
func TestMWILocalCSeqsMany(t *testing.T) { forEachBackend(t, testMWILocalCSeqsMany) }

func testMWILocalCSeqsMany(t *testing.T, be backend) {
	st := be.open(t)
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	cseqs := map[string]uint32{}
	for i := range 2500 {
		id := fmt.Sprintf("s%04d", i)
		if i%100 == 0 {
			s := &MWISubscription{ID: id, Tenant: "default", Mailbox: "1001", CallID: id + "@x", LocalTag: "l", RemoteTag: "r",
				LocalURI: "<sip:1001@x>", RemoteURI: "<sip:1001@x>", Contact: "sip:1001@192.0.2.1", Transport: "UDP",
				Source: "192.0.2.1:5060", LocalCSeq: 50, ExpiresAt: exp}
			if err := st.SaveMWISubscription(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		cseqs[id] = uint32(i) // below 50 for the first one: it stays 50
	}
	if err := st.SetMWILocalCSeqs(ctx, cseqs); err != nil {
		t.Fatal(err)
	}
	got, err := st.ListMWISubscriptions(ctx)
	if err != nil || len(got) != 25 {
		t.Fatalf("%d subscriptions (%v), want 25", len(got), err)
	}
	for i, s := range got {
		want := uint32(i * 100)
		if i == 0 {
			want = 50
		}
		if s.LocalCSeq != want {
			t.Errorf("%s: CSeq %d, want %d", s.ID, s.LocalCSeq, want)
		}
	}
}
