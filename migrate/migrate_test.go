package migrate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/azuritetest"
	"github.com/vmserver/voicemail/internal/s3test"
	"github.com/vmserver/voicemail/migrate"
	"github.com/vmserver/voicemail/store"
	"github.com/vmserver/voicemail/store/azureblob"
	"github.com/vmserver/voicemail/store/blobtest"
	"github.com/vmserver/voicemail/store/s3blob"
)

func openStore(t *testing.T, name string) store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// source is a single-node installation: two tenants, personal and group
// mailboxes, greetings, messages in several folders, a webhook.
type source struct {
	st    store.Store
	media store.Blobs
	msgs  []store.Message
	audio map[string][]byte // media key → content
}

func seed(t *testing.T, n int) *source {
	t.Helper()
	ctx := t.Context()
	s := &source{st: openStore(t, "src.db"), audio: map[string][]byte{}}
	var err error
	if s.media, err = store.NewFSBlobs(filepath.Join(t.TempDir(), "media")); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.st.CreateTenant(ctx, &store.Tenant{Name: store.DefaultTenant}))
	must(s.st.CreateTenant(ctx, &store.Tenant{Name: "acme", Domains: []string{"acme.example"}}))
	must(s.st.SetTenantRetention(ctx, "acme", 30))
	pin, err := store.HashPIN("4321")
	must(err)
	for _, mb := range []store.Mailbox{
		{Tenant: "acme", Number: "2000", Name: "Sales", Type: store.TypeGroup, Members: []string{"2001", "2002"}},
		{Tenant: "acme", Number: "2001", Name: "Ann", PINHash: pin, Email: "ann@acme.example", AttachAudio: true, Timezone: "Europe/Paris"},
		{Tenant: "acme", Number: "2002", Name: "Bob", PINHash: pin, MaxMessages: 50, RetentionDays: 7},
		{Tenant: store.DefaultTenant, Number: "1001", Name: "Alice", PINHash: pin, MWITargets: []string{"sip:1001@10.0.0.5"}},
	} {
		must(s.st.CreateMailbox(ctx, &mb))
	}
	g := blobtest.Random(8044, 7)
	s.audio[store.GreetingKey("acme", "2001", "unavailable")] = g
	must(s.media.Put(store.GreetingKey("acme", "2001", "unavailable"), bytes.NewReader(g)))
	boxes := [][2]string{{"acme", "2001"}, {"acme", "2002"}, {"acme", "2000"}, {store.DefaultTenant, "1001"}}
	for i := range n {
		b := boxes[i%len(boxes)]
		m := store.Message{ID: store.NewMessageID(), Tenant: b[0], Mailbox: b[1],
			CallerID: fmt.Sprintf("+3361234%04d", i), CallerName: "Caller", DurationMS: int64(1000 + i),
			Urgent: i%5 == 0, ReceivedAt: time.Date(2026, 11, 1, 10, i%60, 0, 0, time.UTC)}
		m.MediaKey = store.MediaKey(m.Tenant, m.Mailbox, m.ID)
		data := blobtest.Random(4000+i*97, uint64(i))
		must(s.media.Put(m.MediaKey, bytes.NewReader(data)))
		m.Size = int64(len(data))
		must(s.st.CreateMessage(ctx, &m))
		if i%3 == 1 {
			m.Folder, m.Read = store.Folders[1+i%4], true
			must(s.st.UpdateMessage(ctx, &m))
		}
		s.audio[m.MediaKey] = data
		s.msgs = append(s.msgs, m)
	}
	must(s.st.CreateWebhook(ctx, &store.Webhook{Tenant: "acme", URL: "https://hooks.acme.example/vm", Secret: "s3cr3t", Events: []string{"message_created"}}))
	return s
}

// check compares the target with the source: rows field by field, audio
// byte for byte.
func check(t *testing.T, s *source, dst store.Store, media store.Blobs) {
	t.Helper()
	ctx := t.Context()
	for _, m := range s.msgs {
		got, err := dst.GetMessage(ctx, m.Tenant, m.Mailbox, m.ID)
		if err != nil {
			t.Errorf("message %s: %v", m.ID, err)
			continue
		}
		want, _ := s.st.GetMessage(ctx, m.Tenant, m.Mailbox, m.ID)
		if fmt.Sprint(*got) != fmt.Sprint(*want) {
			t.Errorf("message row differs:\n got %+v\nwant %+v", *got, *want)
		}
	}
	for key, want := range s.audio {
		f, err := media.Open(key)
		if err != nil {
			t.Errorf("audio %s: %v", key, err)
			continue
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("audio %s differs (%d bytes, want %d): %v", key, len(got), len(want), err)
		}
	}
	mb, err := dst.GetMailbox(ctx, "acme", "2001")
	if err != nil || !store.CheckPIN(mb.PINHash, "4321") || mb.Email != "ann@acme.example" || !mb.AttachAudio || mb.Timezone != "Europe/Paris" {
		t.Errorf("mailbox 2001 = %+v, %v", mb, err)
	}
	if g, err := dst.GetMailbox(ctx, "acme", "2000"); err != nil || g.Type != store.TypeGroup || len(g.Members) != 2 {
		t.Errorf("group 2000 = %+v, %v", g, err)
	}
	if tn, err := dst.GetTenant(ctx, "acme"); err != nil || len(tn.Domains) != 1 || tn.Domains[0] != "acme.example" {
		t.Errorf("tenant acme = %+v, %v", tn, err)
	}
	if days, ok, err := dst.TenantRetention(ctx, "acme"); err != nil || !ok || days != 30 {
		t.Errorf("acme retention = %d %v %v", days, ok, err)
	}
	if hooks, err := dst.ListWebhooks(ctx, "acme"); err != nil || len(hooks) != 1 || hooks[0].Secret != "s3cr3t" {
		t.Errorf("webhooks = %+v, %v", hooks, err)
	}
}

// migrateTo copies a seeded source into an empty SQLite and toMedia: an
// interrupted run, a resumed run, then a run that finds everything there.
func migrateTo(t *testing.T, toMedia store.Blobs) {
	const n = 23
	s := seed(t, n)
	dst := openStore(t, "dst.db")
	o := migrate.Options{From: s.st, FromMedia: s.media, To: dst, ToMedia: toMedia, Workers: 3}

	// Interrupted after a few messages (Ctrl-C, crash): an error, a partial copy.
	ctx, cancel := context.WithCancel(t.Context())
	o.Progress = func(p migrate.Progress) {
		if p.Done >= 5 {
			cancel()
		}
	}
	if _, err := migrate.Run(ctx, o); err == nil {
		t.Fatal("interrupted run reported success")
	}
	if err := migrate.Verify(t.Context(), o); err == nil {
		t.Fatal("Verify passed on a partial copy")
	}

	var last migrate.Progress
	o.Progress = func(p migrate.Progress) { last = p }
	rep, err := migrate.Run(t.Context(), o)
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if got := rep.Messages.Copied + rep.Messages.Present; got != n || rep.Messages.Present < 5 || rep.Messages.Copied == 0 {
		t.Errorf("resumed run messages = %+v, want %d in all", rep.Messages, n)
	}
	if last.Total != n || last.Done != n {
		t.Errorf("last progress = %+v, want %d/%d", last, n, n)
	}
	check(t, s, dst, toMedia)

	rep, err = migrate.Run(t.Context(), o)
	if err != nil {
		t.Fatalf("third run: %v", err)
	}
	if rep.Copied() != 0 || rep.Bytes != 0 || rep.Messages.Present != n || rep.Greetings.Present != 1 || rep.Mailboxes.Present != 4 {
		t.Errorf("third run copied something: %+v", rep)
	}

	// A message whose target audio vanished is noticed by the check.
	if err := toMedia.Delete(s.msgs[0].MediaKey); err != nil {
		t.Fatal(err)
	}
	if err := migrate.Verify(t.Context(), o); err == nil {
		t.Error("Verify passed with an object missing")
	}
}

func TestMigrateFileToS3(t *testing.T) {
	srv := s3test.Start(t)
	b, err := s3blob.Open(srv.URL("vm"), srv.AccessKey, srv.SecretKey, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	migrateTo(t, b)
}

func TestMigrateFileToAzure(t *testing.T) {
	srv := azuritetest.Start(t)
	b, err := azureblob.Open(srv.URL("vm"), azuritetest.AccountKey, "", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	migrateTo(t, b)
}

func TestMigrateFileToFile(t *testing.T) {
	b, err := store.NewFSBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	migrateTo(t, b)
}

func TestMigrateNeedsBothSides(t *testing.T) {
	if _, err := migrate.Run(t.Context(), migrate.Options{}); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("Run without stores = %v", err)
	}
}
