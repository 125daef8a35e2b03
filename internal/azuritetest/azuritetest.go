// Package azuritetest runs a real Azure Blob Storage server for tests:
// Azurite (npm package azurite) over a temp folder, on a free loopback
// port, for the duration of one test.
package azuritetest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
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

// StartProcess starts an emulator for a whole test binary (from TestMain,
// before the tests load the machine: Node takes seconds of CPU to start,
// and under two dozen parallel call tests on two cores it was seen not to
// listen within a minute). stop kills it. The folder is the caller's.
func StartProcess(dir string) (s *Server, stop func(), err error) {
	bin := os.Getenv("AZURITE_BLOB")
	if bin == "" {
		if bin, err = exec.LookPath("azurite-blob"); err != nil {
			return nil, nil, fmt.Errorf("azurite-blob not found (set AZURITE_BLOB or put it on PATH); install: %s", Hint)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("azurite: free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var out bytes.Buffer
	cmd := exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
		"--location", dir, "--skipApiVersionCheck", "--loose")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("azurite: %w", err)
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("azurite does not listen on %s after 2 min\n%s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s = &Server{Endpoint: "http://" + addr + "/" + Account, Container: "media"}
	cred, err := container.NewSharedKeyCredential(Account, AccountKey)
	if err == nil {
		var cl *container.Client
		if cl, err = container.NewClientWithSharedKeyCredential(s.Endpoint+"/"+s.Container, cred, nil); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err = cl.Create(ctx, nil)
			cancel()
		}
	}
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("azurite: create container: %w", err)
	}
	return s, stop, nil
}
