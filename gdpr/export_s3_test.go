package gdpr

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/vmserver/voicemail/internal/s3test"
	"github.com/vmserver/voicemail/phone"
	"github.com/vmserver/voicemail/store"
	"github.com/vmserver/voicemail/store/s3blob"
)

// TestExportArchiveOnS3: with media on a real S3 server the archive is an
// object under _exports/, another instance (other data_dir and spool)
// serves it, and it expires from the bucket.
func TestExportArchiveOnS3(t *testing.T) {
	srv := s3test.Start(t)
	openBlobs := func() *store.ObjectBlobs {
		b, err := s3blob.Open(srv.URL("vm"), srv.AccessKey, srv.SecretKey, t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	f := newFixture(t, func(c *Config) { c.Blobs = openBlobs() })
	ctx := t.Context()
	m := store.Message{ID: store.NewMessageID(), Tenant: "default", Mailbox: "1001", CallerID: "+17815551212",
		CallerE164: phone.Caller("+17815551212"), ReceivedAt: f.clock(), DurationMS: 1000}
	audio := "RIFF-audio-of-" + m.ID
	if err := f.svc.cfg.Blobs.Put(store.MediaKey("default", "1001", m.ID), strings.NewReader(audio)); err != nil {
		t.Fatal(err)
	}
	if err := f.st.CreateMessage(ctx, &m); err != nil {
		t.Fatal(err)
	}
	out := run(t, f, OpExport, contactCenterRequest, Principal{Actor: "operator"})
	if out.Archive == nil || out.Archive.Messages != 1 {
		t.Fatalf("archive %+v", out.Archive)
	}
	obj, err := srv.Client(t).StatObject(ctx, srv.Bucket, "vm/_exports/"+out.Archive.ID+".zip", minio.StatObjectOptions{})
	if err != nil || obj.Size == 0 {
		t.Fatalf("archive object in the bucket: %+v, %v", obj, err)
	}

	// Another instance: its own data_dir and spool, the same bucket.
	other, err := New(Config{Store: f.st, Blobs: openBlobs(), DataDir: filepath.Join(t.TempDir(), "data"),
		Logger: slog.New(slog.DiscardHandler), Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	a, err := other.OpenArchive(out.Archive.ID, "")
	if err != nil {
		t.Fatalf("other instance: %v", err)
	}
	data, err := io.ReadAll(a)
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, zf := range zr.File {
		if zf.Name == m.ID+".wav" {
			rc, _ := zf.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			found = string(b) == audio
		}
	}
	if !found {
		t.Errorf("the archive served by the other instance lacks the audio")
	}
	if _, err := other.OpenArchive(out.Archive.ID, "acme"); !errors.Is(err, ErrNoArchive) {
		t.Errorf("acme opened the operator's archive: %v", err)
	}

	f.advance(25 * time.Hour)
	st, err := f.svc.Sweep(ctx)
	if err != nil || st.Archives != 1 {
		t.Errorf("sweep expired %d archives, %v; want 1", st.Archives, err)
	}
	if _, err := other.OpenArchive(out.Archive.ID, ""); !errors.Is(err, ErrNoArchive) {
		t.Errorf("expired archive still opens: %v", err)
	}
}
