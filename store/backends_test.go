package store

import (
	"path/filepath"
	"testing"

	"github.com/vmserver/voicemail/internal/pgtest"
)

// pgServer is the PostgreSQL server of this package's tests (nil when none
// is installed outside CI: the PostgreSQL subtests then skip).
var pgServer *pgtest.Server

func TestMain(m *testing.M) { pgtest.Main(m, &pgServer) }

// backend is one database the store contract runs against.
type backend struct {
	name   string
	newDSN func(t *testing.T) string // a fresh, empty database
}

var backends = []backend{
	{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "voicemail.db") }},
	{"postgres", func(t *testing.T) string { return pgtest.Require(t, pgServer).NewDatabase(t) }},
}

// forEachBackend runs f once per backend, as subtests named after them.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// open opens a fresh store, closed when the test ends.
func (b backend) open(t *testing.T) Store { return openDSN(t, b.newDSN(t)) }

// openDSN opens dsn, closed when the test ends.
func openDSN(t *testing.T, dsn string) Store {
	t.Helper()
	s, err := Open(t.Context(), dsn)
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
