package gdpr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// DropName matches the files of the drop-folder mode (docs/gdpr.md):
// forget-YYYYMMDD_<id>.json, export-YYYYMMDD_<id>.json, and undo-… for undo.
var DropName = regexp.MustCompile(`^(forget|export|undo)-([0-9]{8})_([A-Za-z0-9][A-Za-z0-9._-]*)\.json$`)

// processingDir holds the files being processed: renaming a file there
// claims it, so two instances watching one folder never both run it.
const processingDir = ".processing"

// ExecutionLog is "<name>-execution-log.json": the result file of the
// contact-center format, {"requests": [as received], "result": [...]}
// (docs/gdpr.md); "error" is added only when the file itself could not
// be run (bad JSON…), with empty arrays.
type ExecutionLog struct {
	Requests []json.RawMessage `json:"requests"`
	Result   []json.RawMessage `json:"result"`
	Error    string            `json:"error,omitempty"`
}

func (s *Service) prepareDropFolder() error {
	for _, d := range []string{filepath.Join(s.cfg.SubmitDir, processingDir), s.cfg.ResultDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("gdpr drop folder: %w", err)
		}
	}
	return nil
}

// watch polls SubmitDir. A file is taken once its size stayed the same for
// one poll (a writer that copies slowly is not read half-way).
func (s *Service) watch(ctx context.Context) {
	// Files claimed before a crash are run again.
	if ents, err := os.ReadDir(filepath.Join(s.cfg.SubmitDir, processingDir)); err == nil {
		for _, e := range ents {
			if DropName.MatchString(e.Name()) {
				s.processClaimed(ctx, e.Name())
			}
		}
	}
	seen := map[string]int64{}
	ignored := map[string]bool{}
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		ents, err := os.ReadDir(s.cfg.SubmitDir)
		if err != nil {
			s.cfg.Logger.Error("gdpr drop folder unreadable", "dir", s.cfg.SubmitDir, "err", err)
		}
		next := map[string]int64{}
		for _, e := range ents {
			name := e.Name()
			if !e.Type().IsRegular() || strings.HasPrefix(name, ".") {
				continue
			}
			if !DropName.MatchString(name) {
				if strings.HasSuffix(name, ".json") && !ignored[name] {
					ignored[name] = true
					s.cfg.Logger.Warn("gdpr drop folder: file ignored: want forget-YYYYMMDD_<id>.json or export-YYYYMMDD_<id>.json", "file", name)
				}
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue
			}
			if prev, ok := seen[name]; !ok || prev != info.Size() {
				next[name] = info.Size()
				continue
			}
			if ctx.Err() != nil {
				return
			}
			s.processFile(ctx, name)
		}
		seen = next
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// processFile claims and runs one submitted file.
func (s *Service) processFile(ctx context.Context, name string) {
	src := filepath.Join(s.cfg.SubmitDir, name)
	if err := os.Rename(src, filepath.Join(s.cfg.SubmitDir, processingDir, name)); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.cfg.Logger.Error("gdpr drop folder: cannot claim file", "file", name, "err", err)
		}
		return
	}
	s.processClaimed(ctx, name)
}

func (s *Service) processClaimed(ctx context.Context, name string) {
	path := filepath.Join(s.cfg.SubmitDir, processingDir, name)
	base := strings.TrimSuffix(name, ".json")
	m := DropName.FindStringSubmatch(name)
	op, _ := ParseOperation(m[1])
	// The run is not cut short by a shutdown: it is one request file.
	ctx = context.WithoutCancel(ctx)
	var (
		doc *Document
		out *Outcome
	)
	err := func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if doc, err = ParseDocument(b); err != nil {
			return err
		}
		if out, err = s.Run(ctx, op, doc, Principal{Actor: "drop-folder:" + name}); err != nil {
			return err
		}
		if out.Archive != nil {
			if err := moveFile(out.Archive.Path, filepath.Join(s.cfg.ResultDir, base+"-archive.zip")); err != nil {
				return err
			}
			s.dropArchive(out.Archive.ID) // handed over as a file, not downloadable
		}
		return nil
	}()
	var b []byte
	if err == nil {
		b, err = json.MarshalIndent(doc, "", "  ")
	}
	if err != nil {
		s.cfg.Logger.Error("gdpr drop folder: request failed", "file", name, "err", err)
		b, _ = json.MarshalIndent(failedLog(doc, out, err), "", "  ")
	}
	if werr := writeFileAtomic(filepath.Join(s.cfg.ResultDir, base+"-execution-log.json"), append(b, '\n')); werr != nil {
		s.cfg.Logger.Error("gdpr drop folder: execution log not written; the file stays claimed", "file", name, "err", werr)
		return
	}
	os.Remove(path)
	if out != nil {
		s.cfg.Logger.Info("gdpr drop folder: processed", "file", name, "operation", op,
			"contacts", out.Contacts, "errors", out.Errors, "messages", out.Messages, "archive", out.Archive != nil)
	}
}

// failedLog is the execution log of a file that failed as a whole: what
// was read and done before the failure (an export whose archive could not
// be moved still ran), and the error.
func failedLog(doc *Document, out *Outcome, err error) ExecutionLog {
	l := ExecutionLog{Requests: []json.RawMessage{}, Result: []json.RawMessage{}, Error: err.Error()}
	if doc == nil {
		return l
	}
	for _, r := range doc.Requests {
		if b, err := r.MarshalJSON(); err == nil {
			l.Requests = append(l.Requests, b)
		}
	}
	if out != nil {
		if res, err := doc.Results(); err == nil {
			l.Result = res
		}
	}
	return l
}

// writeFileAtomic writes through a temp file and a rename.
func writeFileAtomic(dst string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o640); err != nil {
		return err
	}
	return os.Rename(f.Name(), dst)
}

// moveFile renames, or copies then removes across file systems.
func moveFile(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	return os.Remove(src)
}
