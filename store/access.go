package store

import (
	"context"
	"fmt"
	"time"
)

// AccessStore is what the access IVR (docs/ivr.md) keeps: login failures per
// mailbox across calls and the lockout they cause. The REST login
// (POST /api/v1/login) shares it, so a PIN guessed over HTTP and over the
// phone counts against the same budget.
//
// The usual sequence for a login attempt:
//
//	until, err := st.LoginLockedUntil(ctx, tenant, mb)   // locked? refuse without checking the PIN
//	if time.Now().Before(until) { … locked … }
//	if CheckPIN(m.PINHash, pin) {
//		st.ClearLoginFailures(ctx, tenant, mb)
//	} else {
//		until, err = FailLogin(ctx, st, tenant, mb, time.Now(), lockout)
//	}
type AccessStore interface {
	// RecordLoginFailure records one failed login of the mailbox at at and
	// returns how many failures fall in the window (at-LoginFailureWindow, at],
	// this one included. Older failures are forgotten. ErrNotFound if the
	// mailbox does not exist.
	RecordLoginFailure(ctx context.Context, tenant, mailbox string, at time.Time) (failuresInWindow int, err error)
	// LockLogin locks the mailbox's logins until until (a later lock already
	// in place is kept). ErrNotFound if the mailbox does not exist.
	LockLogin(ctx context.Context, tenant, mailbox string, until time.Time) error
	// LoginLockedUntil returns the end of the mailbox's lock, or the zero
	// time when it was never locked. The lock is in force while now is before it.
	LoginLockedUntil(ctx context.Context, tenant, mailbox string) (time.Time, error)
	// ClearLoginFailures forgets the mailbox's failures and lifts any lock
	// (after a successful login, or an operator's unlock).
	ClearLoginFailures(ctx context.Context, tenant, mailbox string) error
}

// The lockout rule of docs/ivr.md: LoginMaxFailures failed logins within
// LoginFailureWindow lock the mailbox for the configured login.lockout.
const (
	LoginMaxFailures   = 5
	LoginFailureWindow = 15 * time.Minute
)

// LoginLockout reports whether failuresInWindow (as RecordLoginFailure
// returns it) locks the mailbox.
func LoginLockout(failuresInWindow int) bool { return failuresInWindow >= LoginMaxFailures }

// FailLogin records a failed login at at and, when that makes
// LoginMaxFailures in the window, locks the mailbox for lockout. It returns
// the end of the lock it set, or the zero time when the mailbox is not locked.
func FailLogin(ctx context.Context, st AccessStore, tenant, mailbox string, at time.Time, lockout time.Duration) (lockedUntil time.Time, err error) {
	n, err := st.RecordLoginFailure(ctx, tenant, mailbox, at)
	if err != nil {
		return time.Time{}, err
	}
	if !LoginLockout(n) || lockout <= 0 {
		return time.Time{}, nil
	}
	until := at.Add(lockout).UTC()
	if err := st.LockLogin(ctx, tenant, mailbox, until); err != nil {
		return time.Time{}, fmt.Errorf("store: lock login %s/%s: %w", tenant, mailbox, err)
	}
	return until, nil
}
