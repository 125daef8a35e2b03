// Package azuritetest runs a real Azure Blob Storage server for tests:
// Azurite (npm package azurite) over a temp folder, on a free loopback
// port, for the duration of one test.
package azuritetest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/vmserver/voicemail/internal/toolproc"
)

// Hint is how to install the emulator (.ci/run does it).
const Hint = "npm install -g azurite@3.37.0"

// Azurite's fixed development account (public, documented by Microsoft).
const (
	Account    = "devstoreaccount1"
	AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Server is a running emulator with one container.
type Server struct {
	Endpoint  string // blob service URL: http://127.0.0.1:port/devstoreaccount1
	Container string
}

// URL is the media URL of the container under prefix.
func (s *Server) URL(prefix string) string {
	return "azblob://" + s.Container + "/" + prefix + "?account=" + Account + "&endpoint=" + s.Endpoint
}

// Start runs azurite-blob (AZURITE_BLOB, or azurite-blob on PATH) and
// creates the container "media". A missing emulator fails the test when
// CI=true and skips it otherwise.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := toolproc.Find(t, "AZURITE_BLOB", "azurite-blob", Hint)
	// On a loaded 2-core CI machine Node has been seen not to listen within
	// a minute (it starts in ~3 s otherwise): one more try, on a new port.
	var addr string
	for try := 1; ; try++ {
		port := toolproc.FreePort(t)
		addr = toolproc.Addr(port)
		err := toolproc.TryStart(t, 45*time.Second, addr, bin,
			"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
			"--location", t.TempDir(), "--skipApiVersionCheck", "--loose")
		if err == nil {
			break
		}
		if try == 2 {
			t.Fatal(err)
		}
		t.Logf("azurite: %v; trying again", err)
	}
	s := &Server{Endpoint: "http://" + addr + "/" + Account, Container: "media"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client(t).Create(ctx, nil); err != nil {
		t.Fatalf("azurite: create container: %v", err)
	}
	return s
}

// Client is a plain client of the container, to look behind the store.
func (s *Server) Client(t testing.TB) *container.Client {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(Account, AccountKey)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := container.NewClientWithSharedKeyCredential(s.Endpoint+"/"+s.Container, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
