package store

import (
	"errors"
	"testing"
	"time"
)

func TestLoginLockoutRule(t *testing.T) {
	for n, want := range map[int]bool{0: false, 1: false, 4: false, 5: true, 6: true} {
		if got := LoginLockout(n); got != want {
			t.Errorf("LoginLockout(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestLoginFailures(t *testing.T) { forEachBackend(t, testLoginFailures) }

func testLoginFailures(t *testing.T, b backend) {
	ctx := t.Context()
	s := b.open(t)
	mustTenant(t, s, "default")
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1001"})
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1002"})

	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	// Failures more than 15 minutes apart never add up.
	for i := range 6 {
		n, err := s.RecordLoginFailure(ctx, "default", "1001", t0.Add(time.Duration(i)*16*time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("spread failure %d: n=%d err=%v, want 1", i, n, err)
		}
	}
	if err := s.ClearLoginFailures(ctx, "default", "1001"); err != nil {
		t.Fatal(err)
	}
	// Five within the window lock; the window slides.
	var lockedUntil time.Time
	for i := range 5 {
		at := t0.Add(time.Duration(i) * 3 * time.Minute)
		until, err := FailLogin(ctx, s, "default", "1001", at, 15*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if i < 4 && !until.IsZero() {
			t.Fatalf("failure %d locked until %v", i+1, until)
		}
		lockedUntil = until
	}
	if want := t0.Add(12*time.Minute + 15*time.Minute); !lockedUntil.Equal(want) {
		t.Fatalf("locked until %v, want %v", lockedUntil, want)
	}
	got, err := s.LoginLockedUntil(ctx, "default", "1001")
	if err != nil || !got.Equal(lockedUntil) {
		t.Fatalf("LoginLockedUntil = %v, %v; want %v", got, err, lockedUntil)
	}
	// The other mailbox is untouched.
	if got, err := s.LoginLockedUntil(ctx, "default", "1002"); err != nil || !got.IsZero() {
		t.Fatalf("1002 LoginLockedUntil = %v, %v", got, err)
	}
	// A shorter lock never shortens a longer one.
	if err := s.LockLogin(ctx, "default", "1001", t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoginLockedUntil(ctx, "default", "1001"); !got.Equal(lockedUntil) {
		t.Fatalf("lock shortened to %v", got)
	}
	// 19 minutes after the first failure, the ones at 0 and 3 minutes left the window.
	n, err := s.RecordLoginFailure(ctx, "default", "1001", t0.Add(19*time.Minute))
	if err != nil || n != 4 {
		t.Fatalf("sliding window: n=%d err=%v, want 4 (6, 9, 12 and this one)", n, err)
	}
	// Success clears failures and lock.
	if err := s.ClearLoginFailures(ctx, "default", "1001"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoginLockedUntil(ctx, "default", "1001"); !got.IsZero() {
		t.Fatalf("lock survived clear: %v", got)
	}
	if n, _ := s.RecordLoginFailure(ctx, "default", "1001", t0.Add(20*time.Minute)); n != 1 {
		t.Fatalf("after clear n=%d, want 1", n)
	}

	// Unknown mailboxes.
	if _, err := s.RecordLoginFailure(ctx, "default", "9999", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("RecordLoginFailure(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.LockLogin(ctx, "default", "9999", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("LockLogin(unknown) = %v, want ErrNotFound", err)
	}

	// Deleting the mailbox drops its history.
	if err := s.LockLogin(ctx, "default", "1002", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteMailbox(ctx, "default", "1002"); err != nil {
		t.Fatal(err)
	}
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1002"})
	if got, _ := s.LoginLockedUntil(ctx, "default", "1002"); !got.IsZero() {
		t.Fatalf("lock survived mailbox deletion: %v", got)
	}
}

func TestLoginLockPersists(t *testing.T) { forEachBackend(t, testLoginLockPersists) }

func testLoginLockPersists(t *testing.T, b backend) {
	ctx := t.Context()
	dsn := b.newDSN(t)
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	mustTenant(t, s, "default")
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1001"})
	at := time.Now()
	for range 4 {
		if _, err := s.RecordLoginFailure(ctx, "default", "1001", at); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = openDSN(t, dsn)
	until, err := FailLogin(ctx, s, "default", "1001", at, time.Minute)
	if err != nil || until.IsZero() {
		t.Fatalf("fifth failure after reopen: until=%v err=%v", until, err)
	}
}
