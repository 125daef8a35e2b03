package gdpr

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vmserver/voicemail/store"
)

// ExportFile is the name of the metadata file in an export archive.
const ExportFile = "export.json"

// Archive is a finished export: a zip with one "<message-id>.wav" per
// message and export.json.
type Archive struct {
	ID       string
	Path     string   // a local copy of the zip in <data_dir>/gdpr/exports, the caller's to move or remove (downloads read the media store)
	Files    []string // the WAV names, sorted
	Messages int
}

// ExportJSON is export.json.
type ExportJSON struct {
	CaseID    string              `json:"caseid"`
	Consumers map[string][]string `json:"consumers"` // phone as requested → its "<message-id>.wav" files
	Cases     []ExportCase        `json:"cases"`
	Messages  []ExportMessage     `json:"messages"`
	CreatedAt time.Time           `json:"created_at"`
	Scope     string              `json:"scope"` // the tenant, or "*" for every tenant
}

// ExportCase is one request of the document.
type ExportCase struct {
	RequestCase string              `json:"requestcase"`
	Consumers   map[string][]string `json:"consumers"`
}

// ExportMessage is one message's metadata.
type ExportMessage struct {
	File       string    `json:"file"` // "" when the audio was missing
	ID         string    `json:"id"`
	Tenant     string    `json:"tenant"`
	Mailbox    string    `json:"mailbox"`
	Folder     string    `json:"folder"`
	CallerID   string    `json:"caller_id"`
	CallerE164 string    `json:"caller_e164"`
	CallerName string    `json:"caller_name"`
	ReceivedAt time.Time `json:"received_at"`
	DurationMS int64     `json:"duration_ms"`
	Urgent     bool      `json:"urgent"`
	Read       bool      `json:"read"`
	Size       int64     `json:"size"`
}

// archiveMeta is the sidecar "<id>.json" of an archive: who may fetch it.
type archiveMeta struct {
	Scope     string    `json:"scope"`
	CreatedAt time.Time `json:"created_at"`
}

type exporter struct {
	s       *Service
	id      string
	tmp     *os.File
	zw      *zip.Writer
	meta    ExportJSON
	cases   map[string]*ExportCase
	order   []string          // request cases in document order
	written map[string]string // message id → file name ("" = audio missing)
	scope   string
	done    bool
}

func (s *Service) exportDir() string { return filepath.Join(s.cfg.DataDir, "gdpr", "exports") }

func (s *Service) newExporter(doc *Document, p Principal) (*exporter, error) {
	dir := s.exportDir()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("gdpr: export: %w", err)
	}
	id := uuid.NewString()
	f, err := os.CreateTemp(dir, ".export-*.zip")
	if err != nil {
		return nil, fmt.Errorf("gdpr: export: %w", err)
	}
	var caseIDs []string
	for _, r := range doc.Requests {
		if r.RequestCase != "" && !slices.Contains(caseIDs, r.RequestCase) {
			caseIDs = append(caseIDs, r.RequestCase)
		}
	}
	return &exporter{
		s: s, id: id, tmp: f, zw: zip.NewWriter(f),
		meta: ExportJSON{CaseID: strings.Join(caseIDs, ","), Consumers: map[string][]string{},
			Cases: []ExportCase{}, Messages: []ExportMessage{}, CreatedAt: s.cfg.Now().UTC(), Scope: scopeName(p.Tenant)},
		cases: map[string]*ExportCase{}, written: map[string]string{}, scope: p.Tenant,
	}, nil
}

// add writes the messages of one phone contact (as requested) into the zip.
func (e *exporter) add(ctx context.Context, reqCase, phone string, msgs []store.Message) error {
	c := e.cases[reqCase]
	if c == nil {
		c = &ExportCase{RequestCase: reqCase, Consumers: map[string][]string{}}
		e.cases[reqCase] = c
		e.order = append(e.order, reqCase)
	}
	files := e.meta.Consumers[phone]
	if files == nil {
		files = []string{}
	}
	caseFiles := c.Consumers[phone]
	if caseFiles == nil {
		caseFiles = []string{}
	}
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		name, seen := e.written[m.ID]
		if !seen {
			var err error
			if name, err = e.writeAudio(m); err != nil {
				return err
			}
			e.written[m.ID] = name
			e.meta.Messages = append(e.meta.Messages, ExportMessage{File: name, ID: m.ID, Tenant: m.Tenant,
				Mailbox: m.Mailbox, Folder: m.Folder, CallerID: m.CallerID, CallerE164: m.CallerE164,
				CallerName: m.CallerName, ReceivedAt: m.ReceivedAt, DurationMS: m.DurationMS,
				Urgent: m.Urgent, Read: m.Read, Size: m.Size})
		}
		if name != "" {
			if !slices.Contains(files, name) {
				files = append(files, name)
			}
			if !slices.Contains(caseFiles, name) {
				caseFiles = append(caseFiles, name)
			}
		}
	}
	e.meta.Consumers[phone] = files
	c.Consumers[phone] = caseFiles
	return nil
}

// writeAudio copies the message's WAV into the zip as "<id>.wav"; a missing
// file is recorded in the metadata (File "") rather than failing the export.
func (e *exporter) writeAudio(m store.Message) (string, error) {
	f, err := e.s.cfg.Blobs.Open(m.MediaKey)
	if errors.Is(err, store.ErrNotFound) {
		e.s.cfg.Logger.Warn("gdpr export: message audio missing", "message", m.ID)
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("gdpr: export %s: %w", m.ID, err)
	}
	defer f.Close()
	name := m.ID + ".wav"
	// WAV hardly compresses: stored, so large exports stay fast.
	w, err := e.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store, Modified: m.ReceivedAt})
	if err != nil {
		return "", fmt.Errorf("gdpr: export %s: %w", m.ID, err)
	}
	if _, err := io.Copy(w, f); err != nil {
		return "", fmt.Errorf("gdpr: export %s: %w", m.ID, err)
	}
	return name, nil
}

func (e *exporter) finish() (*Archive, error) {
	for _, rc := range e.order {
		e.meta.Cases = append(e.meta.Cases, *e.cases[rc])
	}
	w, err := e.zw.CreateHeader(&zip.FileHeader{Name: ExportFile, Method: zip.Deflate, Modified: e.meta.CreatedAt})
	if err != nil {
		return nil, fmt.Errorf("gdpr: export: %w", err)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(e.meta); err != nil {
		return nil, fmt.Errorf("gdpr: export: %w", err)
	}
	if err := e.zw.Close(); err != nil {
		return nil, fmt.Errorf("gdpr: export: %w", err)
	}
	if err := e.tmp.Sync(); err != nil {
		return nil, fmt.Errorf("gdpr: export: %w", err)
	}
	if err := e.tmp.Close(); err != nil {
		return nil, fmt.Errorf("gdpr: export: %w", err)
	}
	path := filepath.Join(e.s.exportDir(), e.id+".zip")
	if err := os.Rename(e.tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("gdpr: export: %w", err)
	}
	e.done = true
	if err := e.s.publishArchive(e.id, path, archiveMeta{Scope: e.scope, CreatedAt: e.meta.CreatedAt}); err != nil {
		os.Remove(path)
		return nil, err
	}
	a := &Archive{ID: e.id, Path: path, Messages: len(e.meta.Messages)}
	for _, n := range e.written {
		if n != "" {
			a.Files = append(a.Files, n)
		}
	}
	slices.Sort(a.Files)
	return a, nil
}

func (e *exporter) abort() {
	if e.done {
		return
	}
	e.tmp.Close()
	os.Remove(e.tmp.Name())
}

// Export archives live in the media store under archivePrefix, so that
// any instance serves the archive another one made (object storage
// included); the orphan sweep leaves the prefix alone. "<id>.json" says
// who may fetch "<id>.zip" and is written last: an archive is openable
// only once whole.
const archivePrefix = "_exports/"

func archiveKey(id, ext string) string { return archivePrefix + id + ext }

// publishArchive uploads the finished zip at path, then its metadata.
func (s *Service) publishArchive(id, path string, m archiveMeta) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("gdpr: export: %w", err)
	}
	defer f.Close()
	if err := s.cfg.Blobs.Put(archiveKey(id, ".zip"), f); err != nil {
		return fmt.Errorf("gdpr: export: store archive: %w", err)
	}
	meta, _ := json.Marshal(m)
	if err := s.cfg.Blobs.Put(archiveKey(id, ".json"), bytes.NewReader(meta)); err != nil {
		_ = s.cfg.Blobs.Delete(archiveKey(id, ".zip"))
		return fmt.Errorf("gdpr: export: store archive: %w", err)
	}
	return nil
}

// dropArchive removes an archive from the media store (the drop folder
// hands its archives over as files instead).
func (s *Service) dropArchive(id string) {
	for _, ext := range []string{".json", ".zip"} {
		if err := s.cfg.Blobs.Delete(archiveKey(id, ext)); err != nil {
			s.cfg.Logger.Warn("gdpr: remove export archive", "archive", id, "err", err)
		}
	}
}

// ErrNoArchive is returned by OpenArchive for an unknown, expired or
// foreign archive.
var ErrNoArchive = errors.New("gdpr: no such export archive")

// OpenArchive opens the archive id for a principal of tenant ("" =
// operator, who may open any), from the media store: a Range request
// reads only what it serves.
func (s *Service) OpenArchive(id, tenant string) (store.Reader, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, ErrNoArchive
	}
	mf, err := s.cfg.Blobs.Open(archiveKey(id, ".json"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoArchive
	}
	if err != nil {
		return nil, fmt.Errorf("gdpr: open archive %s: %w", id, err)
	}
	b, err := io.ReadAll(io.LimitReader(mf, 1<<16))
	mf.Close()
	if err != nil {
		return nil, fmt.Errorf("gdpr: open archive %s: %w", id, err)
	}
	var m archiveMeta
	if json.Unmarshal(b, &m) != nil || (tenant != "" && m.Scope != tenant) {
		return nil, ErrNoArchive
	}
	f, err := s.cfg.Blobs.Open(archiveKey(id, ".zip"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoArchive
	}
	if err != nil {
		return nil, fmt.Errorf("gdpr: open archive %s: %w", id, err)
	}
	return f, nil
}

// expireArchives removes the archives older than the export TTL from the
// media store and returns how many; local files (the zips runs hand to
// their caller, temp files left by a crash) go by the same rule.
func (s *Service) expireArchives() int {
	cutoff := s.cfg.Now().Add(-s.cfg.ExportTTL)
	n := 0
	if all, err := s.cfg.Blobs.List(archivePrefix); err != nil {
		s.cfg.Logger.Warn("gdpr: list export archives", "err", err)
	} else {
		for _, b := range all {
			if !b.ModTime.Before(cutoff) {
				continue
			}
			if s.cfg.Blobs.Delete(b.Key) == nil && strings.HasSuffix(b.Key, ".zip") {
				n++
			}
		}
	}
	ents, err := os.ReadDir(s.exportDir())
	if err != nil {
		return n
	}
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.ModTime().Before(cutoff) {
			os.Remove(filepath.Join(s.exportDir(), e.Name()))
		}
	}
	return n
}
