package s3blob_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/vmserver/voicemail/internal/s3test"
	"github.com/vmserver/voicemail/store"
	"github.com/vmserver/voicemail/store/blobtest"
	"github.com/vmserver/voicemail/store/s3blob"
)

func open(t *testing.T, s *s3test.Server, prefix string, spool string) *store.ObjectBlobs {
	t.Helper()
	b, err := s3blob.Open(s.URL(prefix), s.AccessKey, s.SecretKey, spool, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestS3BlobContract runs the blob contract against a real S3 gateway,
// each subtest under a prefix of its own.
func TestS3BlobContract(t *testing.T) {
	s := s3test.Start(t)
	blobtest.Run(t, func(t *testing.T) store.Blobs {
		return open(t, s, "c/"+strings.ReplaceAll(t.Name(), "/", "-"), t.TempDir())
	})
}

// TestS3Layout: objects sit under the prefix with their keys, and a
// recording left in the spool by a crash is uploaded by a new instance's
// recovery (same spool).
func TestS3Layout(t *testing.T) {
	s := s3test.Start(t)
	spool := filepath.Join(t.TempDir(), "spool")
	b := open(t, s, "vm/prod", spool)
	key := store.MediaKey("default", "1001", store.NewMessageID())
	f, err := b.Create(key)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("recorded before the crash")
	f.File.Close() // crash

	b2 := open(t, s, "vm/prod", spool)
	parts, err := b2.Parts()
	if err != nil || len(parts) != 1 || parts[0] != key {
		t.Fatalf("Parts after restart = %v, %v", parts, err)
	}
	pf, err := b2.OpenPart(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.CommitPart(key); err != nil {
		t.Fatalf("CommitPart: %v", err)
	}
	pf.Close()
	ctx := context.Background()
	obj, err := s.Client(t).GetObject(ctx, s.Bucket, "vm/prod/"+key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	if err != nil || string(got) != "recorded before the crash" {
		t.Errorf("object = %q, %v", got, err)
	}
	if parts, _ := b2.Parts(); len(parts) != 0 {
		t.Errorf("spool not emptied: %v", parts)
	}
}

// TestS3UploadFailureKeepsPart: when the upload fails, Commit fails (no
// message row may be written) and the recording stays in the spool for
// the recovery instead of being lost.
func TestS3UploadFailureKeepsPart(t *testing.T) {
	s := s3test.Start(t)
	spool := t.TempDir()
	bad, err := s3blob.Open("s3://missing-bucket/x?endpoint="+s.Endpoint+"&path_style=true&region="+s.Region, s.AccessKey, s.SecretKey, spool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Ping(); err == nil {
		t.Error("Ping of a missing bucket succeeded")
	}
	key := "default/1001/m.wav"
	f, err := bad.Create(key)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("precious")
	if err := bad.WritePartMeta(key, map[string]string{"caller": "1002"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err == nil {
		t.Fatal("Commit into a missing bucket succeeded")
	}
	if err := f.Abort(); err != nil {
		t.Fatal(err)
	}
	// Once the store is back (here: the right bucket), recovery uploads it.
	good := open(t, s, "x", spool)
	if parts, _ := good.Parts(); len(parts) != 1 {
		t.Fatalf("part lost after a failed upload: %v", parts)
	}
	pf, err := good.OpenPart(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := good.CommitPart(key); err != nil {
		t.Fatal(err)
	}
	pf.Close()
	if got := blobtest.Read(t, good, key); got != "precious" {
		t.Errorf("recovered = %q", got)
	}
	// Wrong credentials are an error, not "not found".
	wrong, err := s3blob.Open(s.URL("x"), s.AccessKey, "not-the-secret", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Stat(key); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat with a wrong secret = %v", err)
	}
}
