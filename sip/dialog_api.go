package sip

// What package call sees of a dialog: read-only accessors, the call's
// loggers and the drain signal (dialog.go has the rest, request.go Refer).

import (
	"log/slog"

	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/store"
)

// Session is the call's media session.
func (d *Dialog) Session() *media.Session {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sess
}

// Log is the call's logger: call_id, tenant and, for a deposit, the called
// mailbox.
func (d *Dialog) Log() *slog.Logger { return d.log }

// BaseLog is the call's logger without the called mailbox, for lines that
// name a mailbox of their own (the access IVR).
func (d *Dialog) BaseLog() *slog.Logger { return d.baseLog }

// CallID is the dialog's Call-ID.
func (d *Dialog) CallID() string { return d.callID }

// Tenant is the tenant of the called domain.
func (d *Dialog) Tenant() string { return d.tenant }

// Access reports whether the call is to an access number.
func (d *Dialog) Access() bool { return d.access }

// Mailbox is the called mailbox of a deposit (nil for an access call).
func (d *Dialog) Mailbox() *store.Mailbox { return d.mailbox }

// Target is the mailbox the deposit is for and why (route.go).
func (d *Dialog) Target() Target { return d.target }

// Caller is the caller's number and name (caller.go): P-Asserted-Identity
// only from a trusted proxy, else From.
func (d *Dialog) Caller() (number, name string) { return callerOf(d.invite, d.trusted) }

// Identity is who the caller is known to be: the mailbox it
// digest-authenticated as, else the identity a trusted proxy asserted
// (verified true); else the From number anyone may write (verified false).
func (d *Dialog) Identity() (number string, verified bool) {
	if d.authUser != "" {
		return d.authUser, true
	}
	number, _ = d.Caller()
	return number, d.trusted && number != ""
}

// Ending is closed when the server must end the call now (drain timeout):
// the call keeps what it recorded and returns.
func (d *Dialog) Ending() <-chan struct{} { return d.hangCh }
