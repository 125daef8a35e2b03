package azureblob_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmserver/voicemail/internal/azuritetest"
	"github.com/vmserver/voicemail/store"
	"github.com/vmserver/voicemail/store/azureblob"
	"github.com/vmserver/voicemail/store/blobtest"
)

func open(t *testing.T, s *azuritetest.Server, prefix, spool string) *store.ObjectBlobs {
	t.Helper()
	b, err := azureblob.Open(s.URL(prefix), azuritetest.AccountKey, "", spool, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAzure runs everything against one Azurite (it takes seconds to
// start): the blob contract, each subtest under a prefix of its own, then
// the Azure-specific checks.
func TestAzure(t *testing.T) {
	s := azuritetest.Start(t)
	t.Run("Contract", func(t *testing.T) {
		blobtest.Run(t, func(t *testing.T) store.Blobs {
			return open(t, s, "c/"+strings.ReplaceAll(t.Name(), "/", "-"), t.TempDir())
		})
	})
	t.Run("LayoutAndRecovery", func(t *testing.T) { layoutAndRecovery(t, s) })
	t.Run("Failures", func(t *testing.T) { failures(t, s) })
}

// layoutAndRecovery: blobs sit under the prefix with their keys;
// a recording left in the spool by a crash is uploaded by the recovery of
// the next instance on the same spool.
func layoutAndRecovery(t *testing.T, s *azuritetest.Server) {
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
	pf, err := b2.OpenPart(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.CommitPart(key); err != nil {
		t.Fatalf("CommitPart: %v", err)
	}
	pf.Close()
	resp, err := s.Client(t).NewBlobClient("vm/prod/"+key).DownloadStream(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(got) != "recorded before the crash" {
		t.Errorf("blob = %q, %v", got, err)
	}
	if parts, _ := b2.Parts(); len(parts) != 0 {
		t.Errorf("spool not emptied: %v", parts)
	}
}

// failures: a missing container fails Ping and Commit and keeps
// the part; a wrong key is an error, never "not found"; a SAS token works.
func failures(t *testing.T, s *azuritetest.Server) {
	spool := t.TempDir()
	bad, err := azureblob.Open("azblob://missing/x?account="+azuritetest.Account+"&endpoint="+s.Endpoint, azuritetest.AccountKey, "", spool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Ping(); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Ping of a missing container = %v", err)
	}
	f, err := bad.Create("default/1001/m.wav")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("precious")
	if err := f.Commit(); err == nil {
		t.Fatal("Commit into a missing container succeeded")
	}
	f.Abort()
	if parts, _ := bad.Parts(); len(parts) != 1 {
		t.Errorf("part lost after a failed upload: %v", parts)
	}

	wrong, err := azureblob.Open(s.URL("x"), "AAAA"+azuritetest.AccountKey[4:], "", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Stat("default/1001/m.wav"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat with a wrong key = %v", err)
	}
	if err := wrong.Ping(); err == nil {
		t.Error("Ping with a wrong key succeeded")
	}
}
