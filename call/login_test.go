package call

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vmserver/voicemail/store"
)

// countingStore counts the store round trips of a login on a real SQLite
// store.
type countingStore struct {
	store.Store
	calls atomic.Int64
}

func (s *countingStore) GetMailbox(ctx context.Context, tenant, number string) (*store.Mailbox, error) {
	s.calls.Add(1)
	return s.Store.GetMailbox(ctx, tenant, number)
}
func (s *countingStore) LoginLockedUntil(ctx context.Context, tenant, mailbox string) (time.Time, error) {
	s.calls.Add(1)
	return s.Store.LoginLockedUntil(ctx, tenant, mailbox)
}
func (s *countingStore) RecordLoginFailure(ctx context.Context, tenant, mailbox string, at time.Time) (int, error) {
	s.calls.Add(1)
	return s.Store.RecordLoginFailure(ctx, tenant, mailbox, at)
}
func (s *countingStore) LockLogin(ctx context.Context, tenant, mailbox string, until time.Time) error {
	s.calls.Add(1)
	return s.Store.LockLogin(ctx, tenant, mailbox, until)
}
func (s *countingStore) ClearLoginFailures(ctx context.Context, tenant, mailbox string) error {
	s.calls.Add(1)
	return s.Store.ClearLoginFailures(ctx, tenant, mailbox)
}

func loginTestStore(t testing.TB) *countingStore {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "vm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.GetTenant(ctx, "default"); err != nil {
		if err := st.CreateTenant(ctx, &store.Tenant{Name: "default"}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := store.HashPIN("1234")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []store.Mailbox{
		{Tenant: "default", Number: "1001", PINHash: h},
		{Tenant: "default", Number: "1002"}, // no PIN set
	} {
		if err := st.CreateMailbox(ctx, &m); err != nil {
			t.Fatal(err)
		}
	}
	return &countingStore{Store: st}
}

// TestCheckLoginEqualWork: a wrong PIN for an existing mailbox, a login
// for an unknown one and one for a mailbox without a PIN run the hash
// check once each, on a hash of the same cost, with the same number of
// store round trips: nothing but the answer differs.
func TestCheckLoginEqualWork(t *testing.T) {
	st := loginTestStore(t)
	cost := func(h string) int {
		c, err := bcryptCost(h)
		if err != nil {
			t.Fatalf("hash %q: %v", h, err)
		}
		return c
	}
	realHash := func() string {
		mb, err := st.Store.GetMailbox(t.Context(), "default", "1001")
		if err != nil {
			t.Fatal(err)
		}
		return mb.PINHash
	}()
	if cost(dummyPINHash) != cost(realHash) {
		t.Fatalf("dummy hash cost %d, store.HashPIN cost %d", cost(dummyPINHash), cost(realHash))
	}
	tests := []struct {
		name, mailbox, pin string
		want               loginStatus
		reason             string
	}{
		{"wrong PIN", "1001", "9999", loginWrong, "wrong PIN"},
		{"unknown mailbox", "4711", "9999", loginWrong, "unknown mailbox"},
		{"mailbox without PIN", "1002", "9999", loginWrong, "no PIN"},
		{"right PIN", "1001", "1234", loginOK, ""},
	}
	type work struct{ hashes, trips int64 }
	got := map[string]work{}
	for _, tt := range tests {
		var hashes atomic.Int64
		var hashed []string
		// The real check is slow under -race; what counts here is which
		// hash is checked and how often.
		check := func(hash, pin string) bool {
			hashes.Add(1)
			hashed = append(hashed, hash)
			return hash == realHash && pin == "1234"
		}
		before := st.calls.Load()
		res := checkLogin(t.Context(), st, check, "default", tt.mailbox, tt.pin, time.Now(), 15*time.Minute)
		if res.status != tt.want || res.reason != tt.reason {
			t.Errorf("%s: status %d reason %q, want %d %q", tt.name, res.status, res.reason, tt.want, tt.reason)
		}
		if len(hashed) == 1 && cost(hashed[0]) != cost(realHash) {
			t.Errorf("%s: checked against a hash of cost %d, want %d", tt.name, cost(hashed[0]), cost(realHash))
		}
		got[tt.name] = work{hashes.Load(), st.calls.Load() - before}
	}
	ref := got["wrong PIN"]
	if ref.hashes != 1 {
		t.Fatalf("wrong PIN: %d hash checks, want 1", ref.hashes)
	}
	for _, name := range []string{"unknown mailbox", "mailbox without PIN", "right PIN"} {
		if got[name] != ref {
			t.Errorf("%s: %d hash checks and %d store round trips; a wrong PIN for a real mailbox: %d and %d",
				name, got[name].hashes, got[name].trips, ref.hashes, ref.trips)
		}
	}
}

// TestCheckLoginLockout: the fifth failure locks the mailbox; then even
// the right PIN is refused without a hash check.
func TestCheckLoginLockout(t *testing.T) {
	st := loginTestStore(t)
	now := time.Now()
	var res loginCheck
	never := func(hash, pin string) bool { return false } // bcrypt is slow under -race
	for i := range store.LoginMaxFailures {
		res = checkLogin(t.Context(), st, never, "default", "1001", "0000", now.Add(time.Duration(i)*time.Second), time.Hour)
	}
	if res.status != loginWrong || res.lockedUntil.IsZero() {
		t.Fatalf("fifth failure: %+v, want a lock", res)
	}
	checks := 0
	res = checkLogin(t.Context(), st, func(h, p string) bool { checks++; return store.CheckPIN(h, p) },
		"default", "1001", "1234", now.Add(time.Minute), time.Hour)
	if res.status != loginLocked || checks != 0 {
		t.Fatalf("right PIN while locked: status %d after %d hash checks, want locked and none", res.status, checks)
	}
}

// BenchmarkCheckLogin compares a wrong PIN for a real mailbox with a login
// for an unknown one: the ns/op of the two should be alike.
func BenchmarkCheckLogin(b *testing.B) {
	st := loginTestStore(b)
	for _, bc := range []struct{ name, mailbox string }{{"existing", "1001"}, {"unknown", "4711"}, {"no_pin", "1002"}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				// A far past clock keeps the mailbox from locking.
				checkLogin(b.Context(), st, store.CheckPIN, "default", bc.mailbox, "9999", time.Unix(0, 0), 0)
			}
		})
	}
}

func bcryptCost(h string) (int, error) { return bcrypt.Cost([]byte(h)) }
