package sip

import (
	"testing"

	"github.com/vmserver/voicemail/store"
)

func TestMayWatch(t *testing.T) {
	personal := &store.Mailbox{Number: "1001", Type: store.TypePersonal}
	group := &store.Mailbox{Number: "8000", Type: store.TypeGroup, Members: []string{"1001", "1002"}}
	for _, c := range []struct {
		user string
		mb   *store.Mailbox
		want bool
	}{
		{"1001", personal, true},
		{"1002", personal, false},
		{"", personal, false},
		{"8000", group, true},
		{"1002", group, true},
		{"1003", group, false},
	} {
		if got := mayWatch(c.user, c.mb); got != c.want {
			t.Errorf("mayWatch(%q, %s) = %v, want %v", c.user, c.mb.Number, got, c.want)
		}
	}
}
