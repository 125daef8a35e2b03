package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmserver/voicemail/store"
)

// TestMediaCheck runs "voicemail media check" on an installation with a
// message, an old orphan and a young one: the dry run lists the old
// orphan only and exits 1, --fix removes it, then all is clean.
func TestMediaCheck(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "voicemail.db"))
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := store.NewFSBlobs(filepath.Join(dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTenant(ctx, &store.Tenant{Name: store.DefaultTenant}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateMailbox(ctx, &store.Mailbox{Tenant: store.DefaultTenant, Number: "1001"}); err != nil {
		t.Fatal(err)
	}
	put := func(key string, age time.Duration) {
		t.Helper()
		if err := blobs.Put(key, strings.NewReader("audio")); err != nil {
			t.Fatal(err)
		}
		then := time.Now().Add(-age)
		if err := os.Chtimes(blobs.Path(key), then, then); err != nil {
			t.Fatal(err)
		}
	}
	m := &store.Message{Tenant: store.DefaultTenant, Mailbox: "1001", ID: store.NewMessageID()}
	put(store.MediaKey(m.Tenant, m.Mailbox, m.ID), 2*time.Hour)
	if err := st.CreateMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	st.Close()
	orphan := store.MediaKey(store.DefaultTenant, "1001", store.NewMessageID())
	put(orphan, 2*time.Hour)
	young := store.MediaKey(store.DefaultTenant, "1001", store.NewMessageID())
	put(young, 0)

	check := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := mediaMain(append([]string{"check", "--data-dir", dir}, args...), &out, &errb)
		if errb.Len() > 0 {
			t.Logf("stderr: %s", errb.String())
		}
		return code, out.String()
	}
	code, out := check()
	if code != 1 || !strings.HasPrefix(out, orphan+"\n") || !strings.Contains(out, "orphans 1, removed 0") || strings.Contains(out, young) {
		t.Errorf("dry run: exit %d, output:\n%s", code, out)
	}
	if !blobs.Exists(orphan) {
		t.Fatal("the dry run removed the orphan")
	}
	if code, out := check("--fix"); code != 0 || !strings.Contains(out, "orphans 1, removed 1") {
		t.Errorf("--fix: exit %d, output:\n%s", code, out)
	}
	if blobs.Exists(orphan) || !blobs.Exists(young) || !blobs.Exists(m.MediaKey) {
		t.Errorf("after --fix: orphan %v, young %v, message %v; want false, true, true", blobs.Exists(orphan), blobs.Exists(young), blobs.Exists(m.MediaKey))
	}
	if code, out := check(); code != 0 || !strings.Contains(out, "orphans 0") {
		t.Errorf("after --fix: exit %d, output:\n%s", code, out)
	}
	var out2, errb bytes.Buffer
	if code := mediaMain([]string{"verify"}, &out2, &errb); code != 2 {
		t.Errorf("unknown subcommand: exit %d", code)
	}
	if code := mediaMain([]string{"check", "--nope"}, &out2, &errb); code != 2 {
		t.Errorf("unknown flag: exit %d", code)
	}
}
