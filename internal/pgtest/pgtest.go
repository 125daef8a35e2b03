// Package pgtest runs a throwaway PostgreSQL server for tests: Debian's
// binaries (/usr/lib/postgresql/<version>/bin), a cluster in a temporary
// folder, loopback on a free port, never as root (as user "postgres" when
// the tests run as root, as in CI).
//
// A package's TestMain starts one server for all its tests; each test gets
// a fresh database from NewDatabase.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// InstallHint says how to get the server binaries.
const InstallHint = "install PostgreSQL: apt-get install postgresql"

// ErrNotInstalled is returned by Start when no PostgreSQL binaries exist.
var ErrNotInstalled = errors.New("pgtest: PostgreSQL not found in /usr/lib/postgresql/*/bin (" + InstallHint + ")")

// runAs is the unprivileged account that owns the cluster when the tests
// run as root (initdb refuses root). Debian's postgresql package creates it.
const runAs = "postgres"

// Server is a running test cluster.
type Server struct {
	dir  string // temporary folder: data, socket, log
	bin  string
	port int
	sudo bool // commands run through runuser as runAs
	n    atomic.Int64
	keep bool // StartIn: Stop leaves the folder (and its data) in place
}

// Start creates and starts a cluster. It returns ErrNotInstalled when the
// binaries are missing.
func Start() (*Server, error) {
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	return start(dir, false)
}

// StartIn starts the cluster kept in dir, creating it on first use; Stop
// leaves it there. It is for data too costly to rebuild at every run (the
// seeded databases of the scale benchmarks).
func StartIn(dir string) (*Server, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	return start(dir, true)
}

func start(dir string, keep bool) (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, sudo: os.Geteuid() == 0, dir: dir, keep: keep}
	// A kept cluster is never removed on failure: it may hold seeded data.
	removeAll := func(dir string) {
		if !keep {
			os.RemoveAll(dir)
		}
	}
	if s.sudo {
		u, err := user.Lookup(runAs)
		if err != nil {
			removeAll(s.dir)
			return nil, fmt.Errorf("pgtest: running as root needs the %q user (%s): %w", runAs, InstallHint, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(s.dir, uid, gid); err != nil {
			removeAll(s.dir)
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	if s.port, err = freePort(); err != nil {
		removeAll(s.dir)
		return nil, err
	}
	data := filepath.Join(s.dir, "data")
	_, statErr := os.Stat(filepath.Join(data, "PG_VERSION"))
	if !keep || statErr != nil {
		if err := s.initdb(data); err != nil {
			removeAll(s.dir)
			return nil, err
		}
	}
	// Durability is not under test here: no fsync makes CREATE DATABASE and
	// commits fast on a shared machine.
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=300",
		s.port, s.dir)
	if err := s.run("pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", filepath.Join(s.dir, "log"), "-o", opts); err != nil {
		logb, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		removeAll(s.dir)
		return nil, fmt.Errorf("%w\n%s", err, logb)
	}
	return s, nil
}

// Stop stops the server and removes its folder (StartIn's folder stays).
func (s *Server) Stop() {
	if s.keep {
		// A clean stop, so that the next StartIn needs no recovery.
		_ = s.run("pg_ctl", "stop", "-m", "fast", "-w", "-t", "120", "-D", filepath.Join(s.dir, "data"))
		return
	}
	_ = s.run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", filepath.Join(s.dir, "data"))
	os.RemoveAll(s.dir)
}

func (s *Server) initdb(data string) error {
	return s.run("initdb", "-D", data, "-U", "voicemail", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
}

// DSN is the connection string of database db.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://voicemail@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// NewDatabase creates an empty database and returns its DSN. The database
// goes with the server.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d", s.n.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return s.DSN(name)
}

// Main runs a package's tests with *srv set to a started server, and stops
// it afterwards. Without PostgreSQL, the tests fail when CI=true and
// otherwise run with *srv nil (tests that need it skip) after a notice.
func Main(m *testing.M, srv **Server) {
	s, err := Start()
	switch {
	case err == nil:
		*srv = s
	case os.Getenv("CI") == "true":
		fmt.Fprintf(os.Stderr, "FAIL: PostgreSQL tests need a server: %v\n", err)
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "NOTICE: skipping the PostgreSQL tests: %v\n", err)
	}
	code := m.Run()
	if s != nil {
		s.Stop()
	}
	os.Exit(code)
}

// Require returns srv or skips t (outside CI; Main already failed in CI).
func Require(t testing.TB, srv *Server) *Server {
	t.Helper()
	if srv == nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no PostgreSQL server: " + InstallHint)
		}
		t.Skip("no PostgreSQL server: " + InstallHint)
	}
	return srv
}

func (s *Server) run(name string, args ...string) error {
	path := filepath.Join(s.bin, name)
	var cmd *exec.Cmd
	if s.sudo {
		cmd = exec.Command("runuser", append([]string{"-u", runAs, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgtest: %s: %w\n%s", name, err, out)
	}
	return nil
}

// findBin returns the bin folder of the newest installed version.
func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var ok []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			ok = append(ok, d)
		}
	}
	if len(ok) == 0 {
		return "", ErrNotInstalled
	}
	sort.Slice(ok, func(i, j int) bool { return version(ok[i]) > version(ok[j]) })
	return ok[0], nil
}

func version(bin string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return v
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
