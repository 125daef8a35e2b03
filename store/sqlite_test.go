package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
)

func openTestSQLite(t *testing.T, path string) Store {
	t.Helper()
	s, err := Open(t.Context(), "sqlite://"+path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) { RunContract(t, b.open) })
}

func TestSQLitePersistsAcrossReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "nested", "dir", "voicemail.db") // parents are created
	s, err := Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	mustTenant(t, s, "default", "vm.example.com")
	mb := mustMailbox(t, s, Mailbox{Tenant: "default", Number: "8000", Type: TypeGroup, Members: []string{"1001"}})
	msg := mustMessage(t, s, Message{Tenant: "default", Mailbox: "8000", CallerID: "1001", Urgent: true})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openTestSQLite(t, path) // migrations are idempotent
	if got, err := s.TenantForDomain(ctx, "VM.example.com"); err != nil || got != "default" {
		t.Errorf("TenantForDomain after reopen = %q, %v", got, err)
	}
	got, err := s.GetMailbox(ctx, "default", "8000")
	if err != nil || !mailboxEqual(*got, *mb) {
		t.Errorf("GetMailbox after reopen = %+v, %v\nwant %+v", got, err, mb)
	}
	m, err := s.GetMessage(ctx, "default", "8000", msg.ID)
	if err != nil || *m != *msg {
		t.Errorf("GetMessage after reopen = %+v, %v\nwant %+v", m, err, msg)
	}
	if c, _ := s.CountMessages(ctx, "default", "8000"); c != (Counts{New: 1, UrgentNew: 1}) {
		t.Errorf("CountMessages after reopen = %+v", c)
	}

	// The file really is in WAL mode with the current schema version.
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	var version int
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	if err := db.QueryRow(`SELECT version FROM schema_version`).Scan(&version); err != nil || version != len(migrations) {
		t.Errorf("schema_version = %d, %v; want %d", version, err, len(migrations))
	}
}

func TestSQLiteRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.db")
	s := openTestSQLite(t, path)
	s.Close()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE schema_version SET version = ?`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(t.Context(), "sqlite://"+path)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open(newer schema) err = %v, want a 'newer than this binary' error", err)
	}
}

func TestOpenDSN(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"postgres://%zz", "invalid connection string"},
		{"mysql://x", `"mysql"`},
		{"/var/lib/voicemail.db", "scheme"},
		{"sqlite://", "empty path"},
		{"sqlite:///tmp/x.db?mode=ro", "query"},
	} {
		s, err := Open(t.Context(), tc.dsn)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", tc.dsn)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want it to mention %s", tc.dsn, err, tc.want)
		}
	}
}

func TestOpenRelativeDSN(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	s := openTestSQLite(t, "data/with space/voicemail.db")
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "with space", "voicemail.db")); err != nil {
		t.Errorf("relative database not created under the working directory: %v", err)
	}
}

// TestSQLiteTwoStoresOneFile is two server processes on one database file:
// each has its own writer, and busy_timeout plus BEGIN IMMEDIATE make them
// wait for each other instead of failing.
func TestSQLiteTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	a := openTestSQLite(t, path)
	b := openTestSQLite(t, path)
	mustTenant(t, a, "default")
	mustMailbox(t, a, Mailbox{Tenant: "default", Number: "1001"})

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for _, s := range []Store{a, b} {
		wg.Go(func() {
			for range 50 {
				if err := s.CreateMessage(t.Context(), &Message{Tenant: "default", Mailbox: "1001"}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c, err := b.CountMessages(t.Context(), "default", "1001"); err != nil || c.New != 100 {
		t.Errorf("counts = %+v, %v; want 100 new", c, err)
	}
}

func TestCanceledContext(t *testing.T) { forEachBackend(t, testCanceledContext) }

func testCanceledContext(t *testing.T, b backend) {
	s := b.open(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.CreateTenant(ctx, &Tenant{Name: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateTenant(canceled) = %v, want context.Canceled", err)
	}
	// The single writer connection is not poisoned by the canceled call.
	mustTenant(t, s, "x")
}

func TestPIN(t *testing.T) {
	t.Parallel() // bcrypt is slow on purpose
	h, err := HashPIN("1234")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h, "1234") || !strings.HasPrefix(h, "$2") {
		t.Errorf("HashPIN = %q, want a bcrypt hash", h)
	}
	if !CheckPIN(h, "1234") {
		t.Error("CheckPIN(right PIN) = false")
	}
	for _, pin := range []string{"", "1235", "12345", "123"} {
		if CheckPIN(h, pin) {
			t.Errorf("CheckPIN(%q) = true", pin)
		}
	}
	if CheckPIN("", "") || CheckPIN("garbage", "1234") {
		t.Error("CheckPIN accepted an empty or invalid hash")
	}
	if _, err := HashPIN(""); err == nil {
		t.Error("HashPIN(\"\") succeeded")
	}
}

func TestNewMessageID(t *testing.T) {
	var idList []string
	seen := map[string]bool{}
	for range 1000 {
		id := NewMessageID()
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 7 {
			t.Fatalf("NewMessageID() = %q (%v), want a UUIDv7", id, err)
		}
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
		idList = append(idList, id)
	}
	if !slices.IsSorted(idList) {
		t.Error("ids made in sequence do not sort in sequence")
	}
}

func TestKeys(t *testing.T) {
	id := NewMessageID()
	if got, want := MediaKey("default", "1001", id), "default/1001/"+id+".wav"; got != want {
		t.Errorf("MediaKey = %q, want %q", got, want)
	}
	if got, want := GreetingKey("acme", "1001", "busy"), "acme/1001/greetings/busy.wav"; got != want {
		t.Errorf("GreetingKey = %q, want %q", got, want)
	}
	for _, k := range []string{MediaKey("default", "1001", id), GreetingKey("default", "1001", "unavailable")} {
		if err := checkKey(k); err != nil {
			t.Errorf("generated key %q rejected: %v", k, err)
		}
	}
	// Bad parts are not cleaned into another valid key.
	if err := checkKey(MediaKey("..", "1001", id)); err == nil {
		t.Error("MediaKey with .. passed the key check")
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"default", "1001", "acme-corp", "sales_team", "a.b", "+33123", "x@y"} {
		if err := checkName("n", ok); err != nil {
			t.Errorf("checkName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", ".hidden", "a/b", `a\b`, "a b", "é", strings.Repeat("1", 65)} {
		if err := checkName("n", bad); err == nil {
			t.Errorf("checkName(%q) accepted", bad)
		}
	}
}

func TestErrorsNameTheObject(t *testing.T) { forEachBackend(t, testErrorsNameTheObject) }

func testErrorsNameTheObject(t *testing.T, b backend) {
	s := b.open(t)
	_, err := s.GetMailbox(t.Context(), "default", "4242")
	if err == nil || !regexp.MustCompile(`default/4242`).MatchString(err.Error()) {
		t.Errorf("error %v does not name the mailbox", err)
	}
	if !strings.HasPrefix(fmt.Sprint(err), "store: ") {
		t.Errorf("error %v lacks the package prefix", err)
	}
}
