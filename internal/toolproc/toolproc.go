// Package toolproc starts the external servers that tests talk to (an S3
// gateway, the Azure Storage emulator): it finds the tool, fails or skips
// when it is missing, picks a free loopback port and stops the process at
// the end of the test.
package toolproc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Find returns the path of the tool: the file named by the environment
// variable envVar, else name on PATH, else name in one of extraDirs. When
// none is found the test fails if CI=true (CI must install every tool) and
// is skipped otherwise, both with the install hint.
func Find(t testing.TB, envVar, name, hint string, extraDirs ...string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range extraDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found (set %s or put it on PATH); install: %s", name, envVar, hint)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs the command until the end of the test and waits until addr
// accepts TCP connections. The tool's output is shown if it fails.
func Start(t testing.TB, addr string, name string, args ...string) {
	t.Helper()
	if err := TryStart(t, 60*time.Second, addr, name, args...); err != nil {
		t.Fatal(err)
	}
}

// TryStart is Start that returns the failure (the process is then killed)
// instead of failing the test, so that a caller may try again.
func TryStart(t testing.TB, wait time.Duration, addr string, name string, args ...string) error {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			err := <-exited
			exited <- err
		})
	}
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			return fmt.Errorf("%s exited before listening on %s: %v\n%s", name, addr, err, out.String())
		case <-ctx.Done():
			stop()
			return fmt.Errorf("%s does not listen on %s after %s\n%s", name, addr, wait, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Addr joins the loopback address and port.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 64<<10 { // enough to explain a failure
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
