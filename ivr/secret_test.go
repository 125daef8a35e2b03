package ivr

import "testing"

// TestAccessSecret: the digits of the login PIN (and those typed while it
// is checked) are secret, menu keys are not.
func TestAccessSecret(t *testing.T) {
	m := NewAccess(withAccess(func(c *AccessConfig) { c.Mailbox = "1001" }))
	if m.Secret() {
		t.Fatal("secret before the call starts")
	}
	m.Handle(Start{})
	m.Handle(pd)
	if !m.Secret() {
		t.Fatalf("state %s: PIN digits not secret", m.State())
	}
	for _, k := range "1234" {
		m.Handle(D(k))
		if !m.Secret() {
			t.Fatalf("state %s after a PIN digit: not secret", m.State())
		}
	}
	m.Handle(D('#'))
	if !m.Secret() {
		t.Fatalf("state %s while the login is checked: not secret", m.State())
	}
	m.Handle(LoginResult{Status: LoginOK})
	m.Handle(MailboxOpened{Messages: fixture()})
	if m.Secret() {
		t.Fatalf("state %s: menu keys secret", m.State())
	}
}
