package store_test

import (
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
