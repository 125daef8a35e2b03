package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestClusterLeases(t *testing.T) { forEachBackend(t, testClusterLeases) }

func testClusterLeases(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t)
	for _, c := range []struct {
		owner string
		ttl   time.Duration
		want  bool
	}{
		{"a", time.Minute, true},  // new
		{"b", time.Minute, false}, // a's runs
		{"a", -time.Second, true}, // renewed, already expired
		{"b", time.Minute, true},  // taken over
		{"a", time.Minute, false},
	} {
		got, err := st.ClaimLease(ctx, "mwi-targets", c.owner, c.ttl)
		if err != nil || got != c.want {
			t.Fatalf("ClaimLease(%s) = %v, %v; want %v", c.owner, got, err, c.want)
		}
	}
	if err := st.ReleaseLease(ctx, "mwi-targets", "a"); err != nil { // not a's: no effect
		t.Fatal(err)
	}
	if ok, _ := st.ClaimLease(ctx, "mwi-targets", "a", time.Minute); ok {
		t.Fatal("a took b's lease after releasing what it did not hold")
	}
	if err := st.ReleaseLease(ctx, "mwi-targets", "b"); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.ClaimLease(ctx, "mwi-targets", "a", time.Minute); !ok || err != nil {
		t.Fatalf("after b released: %v %v", ok, err)
	}
	if ok, _ := st.ClaimLease(ctx, "other", "b", time.Minute); !ok {
		t.Fatal("leases of other names are independent")
	}
	if _, err := st.ClaimLease(ctx, "", "b", time.Minute); err == nil {
		t.Error("empty lease name accepted")
	}
}

func TestMWISubscriptionOwnership(t *testing.T) { forEachBackend(t, testMWISubscriptionOwnership) }

func testMWISubscriptionOwnership(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t)
	exp := time.Now().Add(time.Hour).UTC()
	sub := func(id, owner string) *MWISubscription {
		return &MWISubscription{ID: id, Tenant: "default", Mailbox: "1001", CallID: "c-" + id, LocalTag: "l-" + id,
			RemoteTag: "r-" + id, LocalURI: "<sip:1001@x>", RemoteURI: "<sip:1001@x>", Contact: "sip:1001@192.0.2.1",
			Transport: "UDP", Source: "192.0.2.1:5060", LocalCSeq: 7, RemoteCSeq: 1, ExpiresAt: exp, Owner: owner}
	}
	for _, s := range []*MWISubscription{sub("1", ""), sub("2", "A"), sub("3", "A"), sub("4", "B")} {
		if err := st.SaveMWISubscription(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"A", "B"} {
		if err := st.HeartbeatInstance(ctx, id, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	// C claims the unowned row only: A and B live.
	got, err := st.ClaimMWISubscriptions(ctx, "C", now)
	if err != nil || len(got) != 1 || got[0].ID != "1" || got[0].Owner != "C" || got[0].LocalCSeq != 7 {
		t.Fatalf("claim while A and B live: %+v %v", got, err)
	}
	// A stops cleanly: its rows are claimable at once, once.
	if err := st.ReleaseInstance(ctx, "A"); err != nil {
		t.Fatal(err)
	}
	if err := st.HeartbeatInstance(ctx, "C", time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err = st.ClaimMWISubscriptions(ctx, "C", now)
	if err != nil || len(got) != 2 || got[0].ID != "2" || got[1].ID != "3" || got[1].Owner != "C" || got[0].CallID != "c-2" {
		t.Fatalf("claim after A stopped: %+v %v", got, err)
	}
	if got, _ := st.ClaimMWISubscriptions(ctx, "B", now); len(got) != 0 {
		t.Fatalf("B claimed live C's rows: %+v", got)
	}
	// B's heartbeat runs out: C takes its row.
	if got, _ := st.ClaimMWISubscriptions(ctx, "C", now.Add(2*time.Minute)); len(got) != 1 || got[0].ID != "4" {
		t.Fatalf("claim after B expired: %+v", got)
	}
	ids, err := st.OwnedMWISubscriptionIDs(ctx, "C")
	if err != nil || len(ids) != 4 {
		t.Fatalf("C owns %v (%v), want 4", ids, err)
	}
	// A refresh reaches B: B takes the dialog from C.
	s2, err := st.TakeMWISubscription(ctx, "B", "c-2", "r-2", "l-2", "")
	if err != nil || s2.ID != "2" || s2.Owner != "B" {
		t.Fatalf("take: %+v %v", s2, err)
	}
	if _, err := st.TakeMWISubscription(ctx, "B", "c-2", "r-2", "other", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("take of an unknown dialog: %v", err)
	}
	own, err := st.ListOwnedMWISubscriptions(ctx, "B")
	if err != nil || len(own) != 1 || own[0].ID != "2" {
		t.Fatalf("B's: %+v %v", own, err)
	}
	if ids, _ := st.OwnedMWISubscriptionIDs(ctx, "C"); len(ids) != 3 {
		t.Fatalf("C still owns %v", ids)
	}
	for owner, want := range map[string]int{"B": 1, "C": 3, "nobody": 0} {
		if n, err := st.CountOwnedMWISubscriptions(ctx, owner); err != nil || n != want {
			t.Errorf("CountOwnedMWISubscriptions(%s) = %d %v, want %d", owner, n, err, want)
		}
	}
}

// Instances claiming at once never share a subscription.
func TestMWIClaimsDisjoint(t *testing.T) { forEachBackend(t, testMWIClaimsDisjoint) }

func testMWIClaimsDisjoint(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t)
	const n = 200
	for i := range n {
		id := NewMessageID()
		if err := st.SaveMWISubscription(ctx, &MWISubscription{ID: id, CallID: id, Tenant: "default", Mailbox: "1001",
			ExpiresAt: time.Now().Add(time.Hour), Owner: "dead"}); err != nil {
			t.Fatal(err, i)
		}
	}
	var (
		mu   sync.Mutex
		seen = map[string]string{}
		wg   sync.WaitGroup
	)
	for _, owner := range []string{"A", "B", "C", "D"} {
		if err := st.HeartbeatInstance(ctx, owner, time.Minute); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := st.ClaimMWISubscriptions(ctx, owner, time.Now())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range got {
				if prev, dup := seen[s.ID]; dup {
					t.Errorf("%s claimed by %s and %s", s.ID, prev, owner)
				}
				seen[s.ID] = owner
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("%d of %d subscriptions claimed", len(seen), n)
	}
}

// Subscriptions stored before schema 9 have no owner: the first instance
// claims them.
func TestMWIOwnerMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:8] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (8);
INSERT INTO mwi_subscriptions (id, tenant, mailbox, call_id, local_tag, remote_tag, local_uri, remote_uri, contact,
	transport, source, local_cseq, remote_cseq, expires_at, created_at)
VALUES ('s1', 'default', '1001', 'c1', 'l', 'r', '<sip:1001@x>', '<sip:1001@x>', 'sip:1001@192.0.2.1', 'UDP', '', 42, 1, 1, 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st := openDSN(t, "sqlite://"+path)
	ctx := context.Background()
	if err := st.HeartbeatInstance(ctx, "first", time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := st.ClaimMWISubscriptions(ctx, "first", time.Now())
	if err != nil || len(got) != 1 || got[0].ID != "s1" || got[0].Owner != "first" || got[0].LocalCSeq != 42 {
		t.Fatalf("claim after migration: %+v %v", got, err)
	}
}
