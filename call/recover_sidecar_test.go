package call

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/store"
)

// The sidecar is written without fsync (docs/storage.md, "Durability"): a
// power loss can leave it empty, cut short or missing. Each case below is
// such a leftover; the recovery keeps the recording (sample-exact, under
// its key, the time from its id, no caller) or, for a key that is not a
// message's, removes it as before. Never an orphan.

// crashedPart records seconds of tone and "dies" mid-recording: the part
// stays, unlocked, its WAV header not finalized.
func crashedPart(t *testing.T, blobs store.Blobs, seconds int) (partMeta, []int16) {
	t.Helper()
	meta := partMeta{Tenant: store.DefaultTenant, Mailbox: "1001", ID: store.NewMessageID(), CallerID: "+33612345678",
		CallerName: "Alice", ReceivedAt: time.Now().UTC(), Format: "pcm16"}
	rec, err := newRecorder(blobs, newWriters(), meta, media.FormatPCM16, 60, 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	tone := media.Tone(440, time.Duration(seconds)*time.Second, 0.5)
	for f := tone; len(f) > 0; f = f[min(160, len(f)):] {
		rec.WriteFrame(f[:min(160, len(f))])
	}
	_ = rec.out.wait()    // what the process had handed to the kernel
	rec.file.File.Close() // the crash: neither commit nor abort
	return meta, tone
}

// damage leaves the sidecar of key as a power loss may: "empty", "cut"
// (half its bytes) or "missing".
func damage(t *testing.T, blobs *store.FSBlobs, key, how string) {
	t.Helper()
	side := blobs.Path(key) + ".part.json"
	var err error
	switch how {
	case "empty":
		err = os.Truncate(side, 0)
	case "cut":
		var fi os.FileInfo
		if fi, err = os.Stat(side); err == nil {
			err = os.Truncate(side, fi.Size()/2)
		}
	case "missing":
		err = os.Remove(side)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// idTime is the time a UUIDv7 message id carries.
func idTime(t *testing.T, id string) time.Time {
	t.Helper()
	sec, nsec := uuid.MustParse(id).Time().UnixTime()
	return time.Unix(sec, nsec).UTC()
}

// checkKept checks the row rebuilt from the key and its audio: the tone
// sent, or for a crashed part what of it reached the file (the WAV writer
// buffers), sample-exact.
func checkKept(t *testing.T, st store.Store, blobs store.Blobs, meta partMeta, tone []int16, partial bool) {
	t.Helper()
	key := store.MediaKey(meta.Tenant, meta.Mailbox, meta.ID)
	got := readAudio(t, blobs, key)
	if partial && len(got) > media.SampleRate && len(got) <= len(tone) {
		tone = tone[:len(got)]
	}
	m, err := st.GetMessage(t.Context(), meta.Tenant, meta.Mailbox, meta.ID)
	if err != nil {
		t.Fatalf("no row: %v", err)
	}
	size, _ := blobs.Stat(key)
	if m.CallerID != "" || m.Folder != store.FolderNew || m.MediaKey != key || m.Size != size ||
		m.DurationMS != int64(len(tone))*1000/media.SampleRate || !m.ReceivedAt.Equal(idTime(t, meta.ID)) {
		t.Errorf("row = %+v", m)
	}
	if d := meta.ReceivedAt.Sub(m.ReceivedAt); d < -time.Second || d > time.Second {
		t.Errorf("received at %v, the call started at %v", m.ReceivedAt, meta.ReceivedAt)
	}
	if !slices.Equal(got, tone) {
		t.Errorf("audio differs from what was recorded (%d vs %d samples)", len(got), len(tone))
	}
	if side, _ := blobs.Unsettled(); len(side) != 0 {
		t.Errorf("sidecars left: %+v", side)
	}
	if parts, _ := blobs.Parts(); len(parts) != 0 {
		t.Errorf("parts left: %v", parts)
	}
}

// A power loss during the recording: the part and a damaged sidecar.
func TestRecoverPartDamagedSidecar(t *testing.T) {
	for _, how := range []string{"empty", "cut", "missing"} {
		t.Run(how, func(t *testing.T) {
			st, blobs := recoverFixture(t)
			meta, tone := crashedPart(t, blobs, 2)
			damage(t, blobs, store.MediaKey(meta.Tenant, meta.Mailbox, meta.ID), how)
			saved, removed, err := Recover(t.Context(), st, blobs, 1, slog.New(slog.DiscardHandler))
			if err != nil || saved != 1 || removed != 0 {
				t.Fatalf("Recover = %d saved, %d removed, %v; want 1, 0", saved, removed, err)
			}
			checkKept(t, st, blobs, meta, tone, true)
		})
	}
}

// A power loss between the WAV's commit and its row's: the WAV is there,
// the row is not, the sidecar may be empty.
func TestRecoverCommittedDamagedSidecar(t *testing.T) {
	for _, how := range []string{"empty", "cut"} {
		t.Run(how, func(t *testing.T) {
			st, blobs := recoverFixture(t)
			meta, tone := committedRecording(t, blobs, "1001", 2, 10*time.Minute)
			damage(t, blobs, store.MediaKey(meta.Tenant, meta.Mailbox, meta.ID), how)
			saved, removed, err := Recover(t.Context(), st, blobs, 1, slog.New(slog.DiscardHandler))
			if err != nil || saved != 1 || removed != 0 {
				t.Fatalf("Recover = %d saved, %d removed, %v; want 1, 0", saved, removed, err)
			}
			checkKept(t, st, blobs, meta, tone, false)
		})
	}
}

// The row survived: the damaged sidecar only goes, the row is untouched.
func TestRecoverCommittedDamagedSidecarRowKept(t *testing.T) {
	st, blobs := recoverFixture(t)
	meta, _ := committedRecording(t, blobs, "1001", 2, 10*time.Minute)
	key := store.MediaKey(meta.Tenant, meta.Mailbox, meta.ID)
	size, _ := blobs.Stat(key)
	if err := st.CreateMessage(t.Context(), messageFrom(meta, 2000, size, true)); err != nil {
		t.Fatal(err)
	}
	damage(t, blobs, key, "empty")
	if _, _, err := Recover(t.Context(), st, blobs, 1, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMessage(t.Context(), meta.Tenant, meta.Mailbox, meta.ID)
	if err != nil || m.CallerID != meta.CallerID || !m.Urgent {
		t.Errorf("row after recovery = %+v, %v; want the original", m, err)
	}
	if side, _ := blobs.Unsettled(); len(side) != 0 {
		t.Errorf("sidecar left: %+v", side)
	}
}

// A part that is not a message's (no UUIDv7 id in its key) with an
// unreadable sidecar is removed, as before.
func TestRecoverDamagedSidecarNotAMessage(t *testing.T) {
	st, blobs := recoverFixture(t)
	key := "default/1001/not-an-id.wav"
	f, err := blobs.Create(key)
	if err != nil {
		t.Fatal(err)
	}
	w, err := media.NewWAVWriter(f, media.FormatPCM16)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(media.Tone(440, 2*time.Second, 0.5)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blobs.Path(key)+".part.json", []byte(`{"tenant":"def`), 0o640); err != nil {
		t.Fatal(err)
	}
	f.File.Close()
	saved, removed, err := Recover(t.Context(), st, blobs, 1, slog.New(slog.DiscardHandler))
	if err != nil || saved != 0 || removed != 1 {
		t.Fatalf("Recover = %d saved, %d removed, %v; want 0, 1", saved, removed, err)
	}
	if parts, _ := blobs.Parts(); len(parts) != 0 {
		t.Errorf("parts left: %v", parts)
	}
	if blobs.Exists(key) {
		t.Error("the part was committed")
	}
}

// A live writer's part whose sidecar is still empty (another instance
// between creating both) is left alone: the recovery takes the lock first.
func TestRecoverLeavesLivePartWithEmptySidecar(t *testing.T) {
	st, blobs := recoverFixture(t)
	meta := partMeta{Tenant: store.DefaultTenant, Mailbox: "1001", ID: store.NewMessageID(), ReceivedAt: time.Now().UTC()}
	rec, err := newRecorder(blobs, newWriters(), meta, media.FormatPCM16, 60, 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.discard()
	key := store.MediaKey(meta.Tenant, meta.Mailbox, meta.ID)
	damage(t, blobs, key, "empty")
	saved, removed, err := Recover(t.Context(), st, blobs, 1, slog.New(slog.DiscardHandler))
	if err != nil || saved+removed != 0 {
		t.Fatalf("Recover = %d saved, %d removed, %v; want nothing done", saved, removed, err)
	}
	if parts, _ := blobs.Parts(); !slices.Equal(parts, []string{key}) {
		t.Errorf("parts = %v, want the live one", parts)
	}
	// The writer goes on and commits as usual.
	if err := blobs.WritePartMeta(key, meta); err != nil {
		t.Fatal(err)
	}
	rec.WriteFrame(media.Tone(440, time.Second, 0.5))
	d, err := rec.finish()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rec.commit(context.Background(), st, d, false); err != nil {
		t.Fatal(err)
	}
}

// A power loss after the row's commit that undid the WAV's rename (it is
// not fsynced: the durable row is the commit point) and kept the
// sidecar's removal: the part, whole, is committed again under the row,
// which keeps its caller. Nothing lost, nothing orphaned.
func TestRecoverRenameUndone(t *testing.T) {
	st, blobs := recoverFixture(t)
	meta, tone := committedRecording(t, blobs, "1001", 2, 10*time.Minute)
	key := store.MediaKey(meta.Tenant, meta.Mailbox, meta.ID)
	size, _ := blobs.Stat(key)
	if err := st.CreateMessage(t.Context(), messageFrom(meta, 2000, size, true)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(blobs.Path(key), blobs.Path(key)+".part"); err != nil {
		t.Fatal(err)
	}
	damage(t, blobs, key, "missing")
	if _, _, err := Recover(t.Context(), st, blobs, 1, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMessage(t.Context(), meta.Tenant, meta.Mailbox, meta.ID)
	if err != nil || m.CallerID != meta.CallerID || !m.Urgent {
		t.Errorf("row after recovery = %+v, %v; want the original", m, err)
	}
	if got := readAudio(t, blobs, key); !slices.Equal(got, tone) {
		t.Errorf("audio after recovery: %d samples, want the %d recorded", len(got), len(tone))
	}
	if _, err := os.Stat(blobs.Path(key) + ".part"); !os.IsNotExist(err) {
		t.Errorf("part left: %v", err)
	}
}
