package store_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmserver/voicemail/store"
	"github.com/vmserver/voicemail/store/blobtest"
)

func TestFSBlobContract(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) store.Blobs {
		b, err := store.NewFSBlobs(filepath.Join(t.TempDir(), "media"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// TestObjectBlobsSpoolCleanup: temp files of interrupted Puts are removed
// when the spool is opened again; parts (recordings to recover) are kept.
func TestObjectBlobsSpoolCleanup(t *testing.T) {
	spool := t.TempDir()
	dir := filepath.Join(spool, "default", "1001", "greetings")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".busy.wav.123.tmp")
	part := filepath.Join(spool, "default", "1001", "m.wav.part")
	for _, f := range []string{tmp, part} {
		if err := os.WriteFile(f, []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.NewObjectBlobs(spool, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temp file kept: %v", err)
	}
	if _, err := os.Stat(part); err != nil {
		t.Errorf("part removed: %v", err)
	}
}
