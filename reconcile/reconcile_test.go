package reconcile

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vmserver/voicemail/internal/azuritetest"
	"github.com/vmserver/voicemail/internal/pgtest"
	"github.com/vmserver/voicemail/internal/s3test"
	"github.com/vmserver/voicemail/store"
	"github.com/vmserver/voicemail/store/azureblob"
	"github.com/vmserver/voicemail/store/s3blob"
)

var pgServer *pgtest.Server

func TestMain(m *testing.M) { pgtest.Main(m, &pgServer) }

func sqliteDSN(t *testing.T) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "vm.db")
}

func fsBlobs(t *testing.T) store.Blobs {
	b, err := store.NewFSBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The sweep on both databases (media in a folder) and on both object
// stores (database SQLite).
func TestSweep(t *testing.T) {
	t.Run("sqlite+file", func(t *testing.T) { testSweep(t, sqliteDSN(t), fsBlobs(t)) })
	t.Run("postgres+file", func(t *testing.T) {
		testSweep(t, pgtest.Require(t, pgServer).NewDatabase(t), fsBlobs(t))
	})
	t.Run("sqlite+s3", func(t *testing.T) {
		s := s3test.Start(t)
		b, err := s3blob.Open(s.URL("sweep"), s.AccessKey, s.SecretKey, t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		testSweep(t, sqliteDSN(t), b)
	})
	t.Run("sqlite+azblob", func(t *testing.T) {
		s := azuritetest.Start(t)
		b, err := azureblob.Open(s.URL("sweep"), azuritetest.AccountKey, "", t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		testSweep(t, sqliteDSN(t), b)
	})
}

// testSweep: rows (visible or GDPR-hidden), sidecars, live mailboxes,
// reserved and unknown keys keep their blobs; a blob without a row and
// the greetings of a deleted mailbox go, but only once older than the
// grace; a dry run removes nothing; a second instance waits for the lease.
func testSweep(t *testing.T, dsn string, blobs store.Blobs) {
	ctx := t.Context()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateTenant(ctx, &store.Tenant{Name: store.DefaultTenant}))
	for _, n := range []string{"1001", "1002"} {
		must(st.CreateMailbox(ctx, &store.Mailbox{Tenant: store.DefaultTenant, Number: n}))
	}
	put := func(key string) {
		t.Helper()
		must(blobs.Put(key, strings.NewReader("audio of "+key)))
	}
	message := func(mailbox, caller string) string {
		t.Helper()
		m := &store.Message{Tenant: store.DefaultTenant, Mailbox: mailbox, CallerID: caller, CallerE164: caller}
		m.ID = store.NewMessageID()
		m.MediaKey = store.MediaKey(m.Tenant, m.Mailbox, m.ID)
		put(m.MediaKey)
		must(st.CreateMessage(ctx, m))
		return m.MediaKey
	}
	kept := []string{
		message("1001", "+33611111111"),
		message("1001", "+33622222222"), // hidden by a GDPR forget below
		store.GreetingKey(store.DefaultTenant, "1001", "busy"),
		"_exports/archive.zip",
		"default/1001/notes/readme.txt", // no known shape: left alone
	}
	_, err = st.ForgetCaller(ctx, store.Forget{ID: "f1", Tenant: store.DefaultTenant, E164: "+33622222222", PhoneHash: "h"})
	must(err)
	// A committed recording still waiting for its row (its sidecar).
	waiting := store.MediaKey(store.DefaultTenant, "1001", store.NewMessageID())
	put(waiting)
	must(blobs.WritePartMeta(waiting, map[string]string{"caller": "1003"}))
	kept = append(kept, waiting)
	for _, k := range kept[2:5] {
		put(k)
	}
	// Orphans: a row deleted before its blob, greetings of a deleted mailbox.
	deleted := message("1001", "+33633333333")
	if _, err := st.DeleteMessage(ctx, store.DefaultTenant, "1001", strings.TrimSuffix(filepath.Base(deleted), ".wav")); err != nil {
		t.Fatal(err)
	}
	noRow := store.MediaKey(store.DefaultTenant, "1002", store.NewMessageID())
	put(noRow)
	greeting := store.GreetingKey(store.DefaultTenant, "1002", "unavailable")
	put(greeting)
	if _, err := st.DeleteMailbox(ctx, store.DefaultTenant, "1002"); err != nil {
		t.Fatal(err)
	}
	orphans := []string{deleted, noRow, greeting}
	slices.Sort(orphans)

	log := slog.New(slog.DiscardHandler)
	r, err := New(Config{Store: st, Blobs: blobs, Logger: log, Grace: time.Hour})
	must(err)
	// Everything is younger than the grace: nothing is judged.
	rep, err := r.Sweep(ctx)
	if err != nil || len(rep.Orphans) != 0 || rep.Young != rep.Checked || rep.Checked != len(kept)+len(orphans) {
		t.Fatalf("sweep within the grace = %+v, %v; want all %d young", rep, err, len(kept)+len(orphans))
	}
	r.cfg.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	rep, err = r.Check(ctx, false)
	if err != nil || !slices.Equal(rep.Orphans, orphans) || rep.Removed != 0 || rep.Unknown != 1 {
		t.Fatalf("dry run = %+v, %v; want orphans %v", rep, err, orphans)
	}
	for _, k := range orphans {
		if !blobs.Exists(k) {
			t.Errorf("dry run removed %s", k)
		}
	}
	// Another instance waits while this one holds the lease.
	other, err := New(Config{Store: st, Blobs: blobs, Logger: log, Grace: time.Hour, Now: r.cfg.Now})
	must(err)
	if rep, err := other.Sweep(ctx); err != nil || !rep.Skipped || len(rep.Orphans) != 0 {
		t.Errorf("second instance's sweep = %+v, %v; want skipped", rep, err)
	}
	rep, err = r.Sweep(ctx)
	if err != nil || !slices.Equal(rep.Orphans, orphans) || rep.Removed != len(orphans) || rep.Failures != 0 {
		t.Fatalf("sweep = %+v, %v; want %v removed", rep, err, orphans)
	}
	for _, k := range orphans {
		if blobs.Exists(k) {
			t.Errorf("orphan %s kept", k)
		}
	}
	for _, k := range kept {
		if !blobs.Exists(k) {
			t.Errorf("owned blob %s removed", k)
		}
	}
	if got := testutil.ToFloat64(r.removed.WithLabelValues("message")); got != 2 {
		t.Errorf("removed{kind=message} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(r.removed.WithLabelValues("greeting")); got != 1 {
		t.Errorf("removed{kind=greeting} = %v, want 1", got)
	}
	if rep, err := r.Sweep(ctx); err != nil || len(rep.Orphans) != 0 {
		t.Errorf("second sweep = %+v, %v; want nothing left", rep, err)
	}
}

// A settle hook runs before the sweep, lease or not; its error does
// not stop the sweep. Start and Stop give the lease back.
func TestStartSettleStop(t *testing.T) {
	ctx := t.Context()
	st, err := store.Open(ctx, sqliteDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	settled := make(chan struct{}, 10)
	r, err := New(Config{Store: st, Blobs: fsBlobs(t), Interval: time.Hour, Settle: func(context.Context) error {
		settled <- struct{}{}
		return errors.New("settle trouble")
	}})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	select {
	case <-settled:
	case <-time.After(30 * time.Second):
		t.Fatal("no sweep at Start")
	}
	r.Stop()
	r.Stop() // twice is fine
	// The lease was given back: a new instance sweeps at once.
	other, _ := New(Config{Store: st, Blobs: fsBlobs(t)})
	if rep, err := other.Sweep(ctx); err != nil || rep.Skipped {
		t.Errorf("sweep after Stop = %+v, %v; want the lease free", rep, err)
	}
	// An instance without the lease still settles its own sidecars.
	third, _ := New(Config{Store: st, Blobs: fsBlobs(t), Settle: func(context.Context) error { settled <- struct{}{}; return nil }})
	if rep, err := third.Sweep(ctx); err != nil || !rep.Skipped {
		t.Errorf("sweep while another holds the lease = %+v, %v; want skipped", rep, err)
	}
	select {
	case <-settled:
	default:
		t.Error("no settle without the lease")
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without a store succeeded")
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct{ key, kind, tenant, mailbox string }{
		{"default/1001/0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b.wav", "message", "default", "1001"},
		{"acme/2001/greetings/busy.wav", "greeting", "acme", "2001"},
		{"_exports/x.zip", "reserved", "", ""},
		{"default/1001/.wav", "", "", ""},
		{"default/1001/x.mp3", "", "", ""},
		{"default/1001/greetings/busy.txt", "", "", ""},
		{"default/x.wav", "", "", ""},
		{"a/b/c/d/e.wav", "", "", ""},
	} {
		kind, tenant, mailbox := classify(tc.key)
		if kind != tc.kind || tenant != tc.tenant || mailbox != tc.mailbox {
			t.Errorf("classify(%q) = %q, %q, %q; want %q, %q, %q", tc.key, kind, tenant, mailbox, tc.kind, tc.tenant, tc.mailbox)
		}
	}
	if got := messageID("default/1001/abc.wav"); got != "abc" {
		t.Errorf("messageID = %q", got)
	}
}
