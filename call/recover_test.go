package call

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/store"
)

// recoverFixture is a real SQLite store with mailbox default/1001 and a
// media folder.
func recoverFixture(t *testing.T) (store.Store, *store.FSBlobs) {
	t.Helper()
	ctx := t.Context()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "vm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateTenant(ctx, &store.Tenant{Name: store.DefaultTenant}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateMailbox(ctx, &store.Mailbox{Tenant: store.DefaultTenant, Number: "1001"}); err != nil {
		t.Fatal(err)
	}
	blobs, err := store.NewFSBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st, blobs
}

// committedRecording records seconds of tone through the recorder and
// commits the media only: the process "dies" before the row. It returns
// the sidecar's metadata and the audio as written.
func committedRecording(t *testing.T, blobs store.Blobs, mailbox string, seconds int, age time.Duration) (partMeta, []int16) {
	t.Helper()
	meta := partMeta{Tenant: store.DefaultTenant, Mailbox: mailbox, ID: store.NewMessageID(), CallerID: "+33612345678",
		CallerName: "Alice", ReceivedAt: time.Now().UTC().Truncate(time.Millisecond), Format: "pcm16"}
	rec, err := newRecorder(blobs, newWriters(), meta, media.FormatPCM16, 60, 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	tone := media.Tone(440, time.Duration(seconds)*time.Second, 0.5)
	for f := tone; len(f) > 0; f = f[min(160, len(f)):] {
		rec.WriteFrame(f[:min(160, len(f))])
	}
	if _, err := rec.finish(); err != nil {
		t.Fatal(err)
	}
	if err := rec.file.Commit(); err != nil {
		t.Fatal(err)
	}
	if fs, ok := blobs.(*store.FSBlobs); ok && age > 0 {
		then := time.Now().Add(-age)
		if err := os.Chtimes(fs.Path(store.MediaKey(meta.Tenant, meta.Mailbox, meta.ID)), then, then); err != nil {
			t.Fatal(err)
		}
	}
	return meta, tone
}

func readAudio(t *testing.T, blobs store.Blobs, key string) []int16 {
	t.Helper()
	f, err := blobs.Open(key)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pcm, err := media.ReadWAV(f)
	if err != nil {
		t.Fatal(err)
	}
	return pcm
}

// A crash between the commit and the row: the start-up recovery turns the
// committed recording into its message, sample-exact, and drops the
// sidecar; a second run does nothing.
func TestRecoverCommittedWithoutRow(t *testing.T) {
	st, blobs := recoverFixture(t)
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)
	meta, tone := committedRecording(t, blobs, "1001", 3, 10*time.Minute)
	key := store.MediaKey(meta.Tenant, meta.Mailbox, meta.ID)

	rec, removed, err := Recover(ctx, st, blobs, 1, log)
	if err != nil || rec != 1 || removed != 0 {
		t.Fatalf("Recover = %d saved, %d removed, %v; want 1, 0", rec, removed, err)
	}
	m, err := st.GetMessage(ctx, meta.Tenant, meta.Mailbox, meta.ID)
	if err != nil {
		t.Fatalf("no row after recovery: %v", err)
	}
	size, _ := blobs.Stat(key)
	if m.CallerID != meta.CallerID || m.CallerName != "Alice" || m.Folder != store.FolderNew || m.Size != size ||
		!m.ReceivedAt.Equal(meta.ReceivedAt) || m.DurationMS != 3000 || m.MediaKey != key {
		t.Errorf("recovered row = %+v", m)
	}
	if got := readAudio(t, blobs, key); !slices.Equal(got, tone) {
		t.Errorf("recovered audio differs from what was recorded (%d vs %d samples)", len(got), len(tone))
	}
	if err := blobs.ReadPartMeta(key, new(partMeta)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("sidecar after recovery: %v, want gone", err)
	}
	if rec, removed, err := Recover(ctx, st, blobs, 1, log); err != nil || rec+removed != 0 {
		t.Errorf("second Recover = %d, %d, %v; want nothing to do", rec, removed, err)
	}
}

// On a shared folder a fresh commit may belong to a live instance about
// to write its row: the recovery waits out the grace before taking it.
func TestRecoverUnsettledWaitsForGrace(t *testing.T) {
	st, blobs := recoverFixture(t)
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)
	meta, _ := committedRecording(t, blobs, "1001", 2, 0)
	if rec, removed, err := Recover(ctx, st, blobs, 1, log); err != nil || rec+removed != 0 {
		t.Fatalf("Recover of a fresh commit = %d, %d, %v; want it left to its writer", rec, removed, err)
	}
	if _, err := st.GetMessage(ctx, meta.Tenant, meta.Mailbox, meta.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("row created within the grace: %v", err)
	}
	later := time.Now().Add(SidecarGrace + time.Minute)
	if rec, _, err := RecoverUnsettled(ctx, st, blobs, SidecarGrace, SidecarGrace, later, log); err != nil || rec != 1 {
		t.Fatalf("RecoverUnsettled after the grace = %d, %v; want 1", rec, err)
	}
	if _, err := st.GetMessage(ctx, meta.Tenant, meta.Mailbox, meta.ID); err != nil {
		t.Errorf("no row after the grace: %v", err)
	}
}

// The other leftovers: a row that exists (crash before SettlePart), a
// sidecar whose part was removed (no blob), a mailbox deleted meanwhile.
func TestRecoverUnsettledLeftovers(t *testing.T) {
	st, blobs := recoverFixture(t)
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)

	// Row written, sidecar left.
	done, _ := committedRecording(t, blobs, "1001", 2, 10*time.Minute)
	doneKey := store.MediaKey(done.Tenant, done.Mailbox, done.ID)
	size, _ := blobs.Stat(doneKey)
	if err := st.CreateMessage(ctx, messageFrom(done, 2000, size, true)); err != nil {
		t.Fatal(err)
	}
	// Sidecar alone, no blob.
	staleID := store.NewMessageID()
	stale := store.MediaKey(store.DefaultTenant, "1001", staleID)
	if err := blobs.WritePartMeta(stale, partMeta{Tenant: store.DefaultTenant, Mailbox: "1001", ID: staleID}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(blobs.Path(stale)+".part.json", old, old)
	// A sidecar that does not describe its own key.
	odd := store.MediaKey(store.DefaultTenant, "1001", store.NewMessageID())
	if err := blobs.WritePartMeta(odd, partMeta{Tenant: store.DefaultTenant, Mailbox: "1001", ID: staleID}); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(blobs.Path(odd)+".part.json", old, old)
	// Mailbox gone.
	if err := st.CreateMailbox(ctx, &store.Mailbox{Tenant: store.DefaultTenant, Number: "1002"}); err != nil {
		t.Fatal(err)
	}
	gone, _ := committedRecording(t, blobs, "1002", 2, 10*time.Minute)
	goneKey := store.MediaKey(gone.Tenant, gone.Mailbox, gone.ID)
	if _, err := st.DeleteMailbox(ctx, store.DefaultTenant, "1002"); err != nil {
		t.Fatal(err)
	}

	rec, removed, err := Recover(ctx, st, blobs, 1, log)
	if err != nil || rec != 0 || removed != 3 {
		t.Fatalf("Recover = %d saved, %d removed, %v; want 0, 3", rec, removed, err)
	}
	if m, err := st.GetMessage(ctx, done.Tenant, done.Mailbox, done.ID); err != nil || !m.Urgent {
		t.Errorf("existing row replaced or lost: %+v, %v", m, err)
	}
	if blobs.Exists(goneKey) {
		t.Error("recording of a deleted mailbox kept")
	}
	if side, _ := blobs.Unsettled(); len(side) != 0 {
		t.Errorf("sidecars left: %+v", side)
	}
	if !blobs.Exists(doneKey) {
		t.Error("settled recording lost")
	}
}

// The live path: commit writes the row, then settles the sidecar.
func TestCommitSettlesSidecar(t *testing.T) {
	st, blobs := recoverFixture(t)
	meta := partMeta{Tenant: store.DefaultTenant, Mailbox: "1001", ID: store.NewMessageID(), ReceivedAt: time.Now().UTC()}
	rec, err := newRecorder(blobs, newWriters(), meta, media.FormatPCM16, 60, 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	rec.WriteFrame(media.Tone(440, time.Second, 0.5))
	d, err := rec.finish()
	if err != nil {
		t.Fatal(err)
	}
	m, err := rec.commit(context.Background(), st, d, false)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	if err := blobs.ReadPartMeta(m.MediaKey, new(partMeta)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("sidecar after commit: %v, want settled", err)
	}
	if side, _ := blobs.Unsettled(); len(side) != 0 {
		t.Errorf("Unsettled after commit = %+v", side)
	}
}

// A part left by a crash whose mailbox was deleted meanwhile is removed,
// and the start-up goes on.
func TestRecoverPartOfDeletedMailbox(t *testing.T) {
	st, blobs := recoverFixture(t)
	ctx := t.Context()
	if err := st.CreateMailbox(ctx, &store.Mailbox{Tenant: store.DefaultTenant, Number: "1002"}); err != nil {
		t.Fatal(err)
	}
	meta := partMeta{Tenant: store.DefaultTenant, Mailbox: "1002", ID: store.NewMessageID(), ReceivedAt: time.Now().UTC()}
	rec, err := newRecorder(blobs, newWriters(), meta, media.FormatPCM16, 60, 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	rec.WriteFrame(media.Tone(440, 2*time.Second, 0.5))
	rec.file.File.Close() // the crash: neither commit nor abort
	if _, err := st.DeleteMailbox(ctx, store.DefaultTenant, "1002"); err != nil {
		t.Fatal(err)
	}
	saved, removed, err := Recover(ctx, st, blobs, 1, slog.New(slog.DiscardHandler))
	if err != nil || saved != 0 || removed != 1 {
		t.Fatalf("Recover = %d, %d, %v; want 0 saved, 1 removed", saved, removed, err)
	}
	key := store.MediaKey(meta.Tenant, meta.Mailbox, meta.ID)
	if blobs.Exists(key) {
		t.Error("recording of the deleted mailbox kept")
	}
	if side, _ := blobs.Unsettled(); len(side) != 0 {
		t.Errorf("sidecar left: %+v", side)
	}
}
