package call

import (
	"testing"

	"github.com/vmserver/voicemail/ivr"
)

// TestLoggedKey: the digit log names the key, but "*" for PIN digits.
func TestLoggedKey(t *testing.T) {
	dep := ivr.NewDeposit(ivr.DepositConfig{Mailbox: "1001", Greetings: map[string]bool{}})
	if got := loggedKey(dep, '5'); got != "5" {
		t.Errorf("deposit digit logged as %q", got)
	}
	acc := ivr.NewAccess(ivr.AccessConfig{Mailbox: "1001", MaxAttempts: 3})
	acc.Handle(ivr.Start{})
	acc.Handle(ivr.PlayDone{})
	if acc.State() != "ask-pin" {
		t.Fatalf("state %s, want ask-pin", acc.State())
	}
	if got := loggedKey(acc, '7'); got != "*" {
		t.Errorf("PIN digit logged as %q", got)
	}
}
