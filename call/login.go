package call

import (
	"context"
	"errors"
	"time"

	"github.com/vmserver/voicemail/store"
)

// dummyPINHash: see store.DummyPINHash.
const dummyPINHash = store.DummyPINHash

// loginStore is what a PIN check reads and writes.
type loginStore interface {
	GetMailbox(ctx context.Context, tenant, number string) (*store.Mailbox, error)
	store.AccessStore
}

type loginStatus int

const (
	loginOK loginStatus = iota
	loginWrong
	loginLocked
	loginError // the store failed: refused, and not the caller's fault
)

// loginCheck is the outcome of a PIN check; mb is the mailbox when OK.
type loginCheck struct {
	status      loginStatus
	mb          *store.Mailbox
	reason      string    // for the log: unknown mailbox, no PIN, wrong PIN, locked
	lockedUntil time.Time // the mailbox lock in force, or the one this failure set
	err         error     // a store error worth logging
}

// checkLogin verifies a mailbox number and PIN with the same store round
// trips and one call to check (store.CheckPIN, injectable for tests)
// whether or not the mailbox exists or has a PIN: lock lookup, hash
// check, then failure recorded or failures cleared.
func checkLogin(ctx context.Context, st loginStore, check func(hash, pin string) bool,
	tenant, number, pin string, now time.Time, lockout time.Duration) loginCheck {
	mb, err := st.GetMailbox(ctx, tenant, number)
	var lookupErr error
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		lookupErr = err
	}
	if err == nil {
		number = mb.Number
	}
	until, lerr := st.LoginLockedUntil(ctx, tenant, number)
	if mb != nil && lerr == nil && now.Before(until) {
		return loginCheck{status: loginLocked, reason: "locked", lockedUntil: until}
	}
	hash := dummyPINHash
	if mb != nil && mb.PINHash != "" {
		hash = mb.PINHash
	}
	match := check(hash, pin) && mb != nil && mb.PINHash != ""
	if match && lerr == nil {
		if err := st.ClearLoginFailures(ctx, tenant, number); err != nil {
			return loginCheck{status: loginOK, mb: mb, err: err}
		}
		return loginCheck{status: loginOK, mb: mb}
	}
	// Recorded for an unknown mailbox too (the store answers ErrNotFound
	// after the same lookup), so a failure costs the same either way.
	locked, ferr := store.FailLogin(ctx, st, tenant, number, now, lockout)
	res := loginCheck{status: loginWrong, reason: "wrong PIN", lockedUntil: locked}
	switch {
	case lookupErr != nil:
		res.status, res.reason, res.err = loginError, "mailbox lookup", lookupErr
	case lerr != nil:
		res.status, res.reason, res.err = loginError, "lock lookup", lerr
	case mb == nil:
		res.reason = "unknown mailbox"
	case mb.PINHash == "":
		res.reason = "no PIN"
	case ferr != nil:
		res.err = ferr
	}
	return res
}
