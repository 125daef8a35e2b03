package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

var (
	// ErrInvalidKey is returned (wrapped) for a blob key that could escape the
	// root or collide with the store's own temp files.
	ErrInvalidKey = errors.New("store: invalid blob key")
	// ErrBusy is returned (wrapped) by OpenPart when a live writer, possibly
	// another server instance on the same volume, still holds the .part file.
	ErrBusy = errors.New("store: blob is being written")
)

const (
	partSuffix = ".part"
	metaSuffix = ".part.json"
	filePerm   = 0o640
	dirPerm    = 0o750
)

// Blobs stores media (messages and greetings) by key, e.g.
// "<tenant>/<mailbox>/<id>.wav". Keys are slash-separated relative paths.
//
// A recording streams into "<key>.part" and becomes visible under key only
// when committed (fsync, rename, directory fsync), so a key that exists is
// always complete. Leftover parts after a crash are found with Parts and
// finalised or removed by the start-up recovery. The sidecar outlives the
// commit until the message row exists (SettlePart): a crash between the
// commit and the row leaves a sidecar (Unsettled) that the recovery turns
// into the row, so committed media is never left without one. On an object store
// (ObjectBlobs) the part lives in a local spool and the commit is an
// upload; the contract is the same (store/blobtest).
type Blobs interface {
	Create(key string) (*BlobFile, error)    // opens "<key>.part" exclusively for writing (creates dirs); ErrExists if a part is already there
	Open(key string) (Reader, error)         // ErrNotFound if absent
	Stat(key string) (size int64, err error) // ErrNotFound if absent
	Delete(key string) error                 // missing = nil
	Exists(key string) bool
	Path(key string) string                 // absolute file path (for local tools/tests); "" for an invalid key or a remote store
	Parts() ([]string, error)               // keys of all leftover "<key>.part" files under root
	OpenPart(key string) (*os.File, error)  // open an existing part read-write and lock it; ErrBusy if a live writer holds it
	CommitPart(key string) error            // fsync the part, rename it to key (the row's commit makes it durable); the sidecar stays until SettlePart
	RemovePart(key string) error            // remove the part and its sidecar; missing = nil
	SettlePart(key string) error            // remove the sidecar of a committed part once its row exists; missing = nil
	Unsettled() ([]Sidecar, error)          // sidecars without a part: committed (or abandoned) recordings not yet settled
	List(prefix string) ([]BlobInfo, error) // committed blobs whose key starts with prefix ("" = all), in key order
	Put(key string, r io.Reader) error      // whole write: temp file, fsync, rename (greetings)
	WritePartMeta(key string, v any) error  // write "<key>.part.json" (recovery sidecar; one plain write, see FSBlobs.WritePartMeta)
	ReadPartMeta(key string, v any) error   // ErrNotFound if absent
	Ping() error                            // the volume is reachable (readiness)
}

// Reader is a committed blob opened for reading. Seek lets
// http.ServeContent answer Range requests; on an object store a seek
// starts a ranged download instead of reading the whole object. *os.File
// is one.
type Reader interface {
	io.ReadSeekCloser
	Stat() (fs.FileInfo, error)
}

// FSBlobs is Blobs on a local or shared (NFS) file system. Several server
// instances may share one root: parts are created with O_EXCL and locked
// while written, and every other write goes through a unique temp file and
// an atomic rename.
type FSBlobs struct {
	root string
	// upload, when set, makes this a spool for an object store: committing
	// a part uploads it under its key, then removes the local part, instead
	// of renaming it (see ObjectBlobs).
	upload func(key, partPath string) error
}

var _ Blobs = (*FSBlobs)(nil)

// NewFSBlobs returns blobs stored under root, which is created if needed.
func NewFSBlobs(root string) (*FSBlobs, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("store: media root %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, dirPerm); err != nil {
		return nil, fmt.Errorf("store: create media root: %w", err)
	}
	return &FSBlobs{root: abs}, nil
}

// OpenBlobs opens the media store named by dsn: "file:///abs/dir" or
// "file://relative/dir".
func OpenBlobs(dsn string) (Blobs, error) {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return nil, fmt.Errorf("store: media %q: want scheme://…, e.g. file:///var/lib/voicemail/media", dsn)
	}
	switch strings.ToLower(scheme) {
	case "file":
		if rest == "" {
			return nil, fmt.Errorf("store: media %q: empty path", dsn)
		}
		return NewFSBlobs(rest)
	default:
		return nil, fmt.Errorf("store: unsupported media scheme %q (supported: file)", scheme)
	}
}

// Root is the absolute root directory.
func (b *FSBlobs) Root() string { return b.root }

// checkKey rejects keys that could leave the root (absolute, "..",
// backslashes), empty segments, hidden segments (the temp files of Put start
// with a dot) and names that end like a part or sidecar file.
func checkKey(key string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why) }
	switch {
	case key == "":
		return bad("empty")
	case strings.HasPrefix(key, "/"):
		return bad("absolute path")
	case strings.ContainsAny(key, "\\\x00"):
		return bad("backslash or NUL")
	}
	segs := strings.Split(key, "/")
	for _, s := range segs {
		if s == "" {
			return bad("empty path segment")
		}
		if s[0] == '.' {
			return bad("segment starts with a dot")
		}
	}
	last := segs[len(segs)-1]
	if strings.HasSuffix(last, partSuffix) || strings.HasSuffix(last, metaSuffix) {
		return bad("reserved suffix")
	}
	return nil
}

func (b *FSBlobs) path(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return filepath.Join(b.root, filepath.FromSlash(key)), nil
}

// Path returns the absolute file of key, or "" if key is invalid.
func (b *FSBlobs) Path(key string) string {
	p, err := b.path(key)
	if err != nil {
		return ""
	}
	return p
}

// Create opens "<key>.part" for a streaming write. O_EXCL makes two writers
// of one key (two instances) fail instead of interleaving, and the file
// lock tells another instance's recovery that the part is alive.
func (b *FSBlobs) Create(key string) (*BlobFile, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), dirPerm); err != nil {
		return nil, fmt.Errorf("store: create blob %s: %w", key, err)
	}
	f, err := os.OpenFile(p+partSuffix, os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("store: create blob %s: part file: %w", key, ErrExists)
	}
	if err != nil {
		return nil, fmt.Errorf("store: create blob %s: %w", key, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		os.Remove(p + partSuffix)
		return nil, fmt.Errorf("store: create blob %s: %w", key, err)
	}
	return &BlobFile{File: f, b: b, key: key, path: p}, nil
}

// Open opens a committed blob for reading.
func (b *FSBlobs) Open(key string) (Reader, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store: blob %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open blob %s: %w", key, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("store: blob %s: not a regular file: %w", key, ErrNotFound)
	}
	return f, nil
}

// Stat returns the size of a committed blob.
func (b *FSBlobs) Stat(key string) (int64, error) {
	p, err := b.path(key)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.Mode().IsRegular()) {
		return 0, fmt.Errorf("store: blob %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("store: stat blob %s: %w", key, err)
	}
	return fi.Size(), nil
}

// Delete removes a committed blob; a missing one is not an error, so that
// deletes can be retried.
func (b *FSBlobs) Delete(key string) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: delete blob %s: %w", key, err)
	}
	return nil
}

// Exists reports whether a committed blob exists.
func (b *FSBlobs) Exists(key string) bool {
	_, err := b.Stat(key)
	return err == nil
}

// Parts lists the keys of leftover part files, in lexical order.
func (b *FSBlobs) Parts() ([]string, error) {
	var keys []string
	err := filepath.WalkDir(b.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// Another instance may delete a mailbox folder while we walk.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(d.Name(), partSuffix) {
			return nil
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		key := strings.TrimSuffix(filepath.ToSlash(rel), partSuffix)
		if checkKey(key) == nil {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list part files under %s: %w", b.root, err)
	}
	return keys, nil
}

// OpenPart opens an existing part for recovery and locks it. Keep the file
// open until CommitPart or RemovePart returns, so that no other instance
// recovers the same part meanwhile.
func (b *FSBlobs) OpenPart(key string) (*os.File, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p+partSuffix, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store: part %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open part %s: %w", key, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: open part %s: %w", key, err)
	}
	return f, nil
}

// CommitPart makes a recovered part visible under key.
func (b *FSBlobs) CommitPart(key string) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	// No lock here: the caller holds it through OpenPart, and flock would
	// conflict with the caller's own descriptor.
	f, err := os.OpenFile(p+partSuffix, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: commit part %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: commit part %s: %w", key, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: commit part %s: sync: %w", key, err)
	}
	return b.publish(key, p)
}

// publish renames the synced part to its key and makes the rename
// durable. The recovery sidecar stays: it is what lets the recovery create
// the message row if the process dies before the caller does (SettlePart).
func (b *FSBlobs) publish(key, p string) error {
	if b.upload != nil {
		// The object appears whole or not at all (object stores commit an
		// upload atomically); the part stays until then for the recovery.
		if err := b.upload(key, p+partSuffix); err != nil {
			return fmt.Errorf("store: commit blob %s: %w", key, err)
		}
		// The sidecar's time tells the recovery when the commit was
		// (Unsettled): the object's own time is remote.
		now := time.Now()
		_ = os.Chtimes(p+metaSuffix, now, now)
		if err := os.Remove(p + partSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: commit blob %s: remove spooled part: %w", key, err)
		}
		return nil
	}
	// The audio is on disk (fsynced before); the rename need not be: the
	// message row, committed durably next, is what makes the recording
	// permanent, and if a power loss keeps the row but undoes the rename,
	// the start-up recovery finds the part and commits it again (its row
	// exists). So no fsync of the folder here (docs/storage.md).
	if err := os.Rename(p+partSuffix, p); err != nil {
		return fmt.Errorf("store: commit blob %s: %w", key, err)
	}
	return nil
}

// RemovePart deletes a part and its sidecar.
func (b *FSBlobs) RemovePart(key string) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	for _, name := range []string{p + partSuffix, p + metaSuffix} {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: remove part %s: %w", key, err)
		}
	}
	return nil
}

// Put writes a whole blob atomically, replacing any previous one: readers
// see either the old or the new content, never a partial file.
func (b *FSBlobs) Put(key string, r io.Reader) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	if err := writeAtomic(p, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	}); err != nil {
		return fmt.Errorf("store: put blob %s: %w", key, err)
	}
	return nil
}

// WritePartMeta stores v as JSON beside the part, for the recovery to know
// what the part is (caller, mailbox, start time…).
//
// One plain write, no fsync and no temp file (docs/storage.md,
// "Durability"): the sidecar is written when the recording starts, when
// nothing depends on it yet, and the commit's folder fsync (after the
// WAV's rename, in the same folder) makes its name durable with the
// WAV's. What a crash can leave is covered by the recovery
// (call.Recover): a process crash keeps the written bytes (they are in
// the kernel), and after a power loss a sidecar that is empty or cut
// short is read as missing, and the recording is kept under its key
// (tenant, mailbox, id; the time from the UUIDv7 id) without its caller.
// Readers never see a sidecar being written: other instances' recovery
// looks at a part's sidecar only once it holds the part's lock, and at a
// sidecar without a part only long after its part was committed. The part's
// O_EXCL already makes its writer the only one of the key; O_TRUNC lets
// the same writer replace the sidecar.
func (b *FSBlobs) WritePartMeta(key string, v any) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: part metadata %s: %w", key, err)
	}
	if err := writePlain(p+metaSuffix, data); err != nil {
		return fmt.Errorf("store: write part metadata %s: %w", key, err)
	}
	return nil
}

// writePlain writes data to name in one write, creating its folder when
// needed (the part normally did). A failed write leaves no file.
func writePlain(name string, data []byte) error {
	const flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	f, err := os.OpenFile(name, flags, filePerm)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(name), dirPerm); err != nil {
			return err
		}
		f, err = os.OpenFile(name, flags, filePerm)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return err
	}
	return nil
}

// ReadPartMeta decodes the sidecar of key's part into v.
func (b *FSBlobs) ReadPartMeta(key string, v any) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(p + metaSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: part metadata %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: read part metadata %s: %w", key, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("store: decode part metadata %s: %w", key, err)
	}
	return nil
}

// Ping checks that the root is still a reachable directory (e.g. the NFS
// mount is up).
func (b *FSBlobs) Ping() error {
	fi, err := os.Stat(b.root)
	if err != nil {
		return fmt.Errorf("store: media root: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("store: media root %s is not a directory", b.root)
	}
	return nil
}

// BlobFile is a part being written. Write (and Seek, for WAV headers) through
// the embedded *os.File, then Commit; defer Abort to clean up on any error
// path (it does nothing after a successful Commit).
type BlobFile struct {
	*os.File
	b    *FSBlobs
	key  string
	path string // final path; the file itself is path + ".part"
	done bool
}

// Key is the key the blob will have once committed.
func (f *BlobFile) Key() string { return f.key }

// Commit syncs the data, renames the part to its key and syncs the
// directory, so that the key exists only with its full content on disk.
// The rename happens before Close, while the lock is held, so that no
// other instance's recovery can take the part in between.
func (f *BlobFile) Commit() error {
	if f.done {
		return fmt.Errorf("store: commit blob %s: already finished", f.key)
	}
	if err := f.File.Sync(); err != nil {
		return fmt.Errorf("store: commit blob %s: sync: %w", f.key, err)
	}
	if err := f.b.publish(f.key, f.path); err != nil {
		if f.b.upload != nil {
			// A failed upload keeps the part and its sidecar for the
			// start-up recovery rather than losing the recording; the
			// lock is released so that the recovery can take it.
			f.done = true
			f.File.Close()
		}
		return err
	}
	f.done = true
	if err := f.File.Close(); err != nil {
		return fmt.Errorf("store: commit blob %s: close: %w", f.key, err)
	}
	return nil
}

// Abort closes and removes the part (and its sidecar). It is a no-op after
// Commit or a previous Abort.
func (f *BlobFile) Abort() error {
	if f.done {
		return nil
	}
	f.done = true
	f.File.Close() // the data is discarded; a close error does not matter
	if err := f.b.RemovePart(f.key); err != nil {
		return fmt.Errorf("store: abort blob %s: %w", f.key, err)
	}
	return nil
}

// writeAtomic writes a file through a unique hidden temp file in the same
// directory, fsyncs it, renames it over dst and fsyncs the directory.
func writeAtomic(dst string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(filePerm); err != nil {
		return err
	}
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename or create in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some file systems cannot fsync a directory; there is nothing more to do.
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
