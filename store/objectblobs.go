package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// ObjectStore is the small part of an object store (S3, Azure Blob) that
// ObjectBlobs needs. Keys are already checked; implementations add their
// own prefix. Every method maps "no such object" to ErrNotFound.
type ObjectStore interface {
	// Upload stores size bytes of f under key. The object must appear
	// whole or not at all, replacing any previous one.
	Upload(ctx context.Context, key string, f *os.File, size int64) error
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// Download streams the object from offset off to its end.
	Download(ctx context.Context, key string, off int64) (io.ReadCloser, error)
	Delete(ctx context.Context, key string) error // missing = nil
	// List calls fn for every object whose key starts with prefix, with
	// keys relative to the store's own prefix.
	List(ctx context.Context, prefix string, fn func(key string, info ObjectInfo) error) error
	Ping(ctx context.Context) error
	String() string // where the objects are, for logs (no secret)
}

// ObjectInfo is what Stat tells of an object.
type ObjectInfo struct {
	Size    int64
	ModTime time.Time
}

// Time limits of object store calls: the Blobs methods take no context
// (the callers predate remote media), so each call bounds itself.
const (
	objectCallTimeout   = 30 * time.Second
	objectUploadTimeout = 10 * time.Minute
)

// ObjectBlobs is Blobs on an object store. A recording streams into a
// local spool folder (a "<key>.part" with its sidecar, as on the file
// system) and is uploaded when committed; the part is removed only after
// the upload succeeded, so a crash loses at most the recording in progress
// and the start-up recovery (Parts, OpenPart, CommitPart) uploads what a
// crash left. Keep the spool on a disk that survives a restart.
type ObjectBlobs struct {
	spool *FSBlobs
	obj   ObjectStore
}

var _ Blobs = (*ObjectBlobs)(nil)

// NewObjectBlobs returns blobs stored in obj, with parts spooled under
// spoolDir (created if needed).
func NewObjectBlobs(spoolDir string, obj ObjectStore) (*ObjectBlobs, error) {
	spool, err := NewFSBlobs(spoolDir)
	if err != nil {
		return nil, fmt.Errorf("store: media spool: %w", err)
	}
	b := &ObjectBlobs{spool: spool, obj: obj}
	spool.upload = b.uploadFile
	if err := removeTemps(spool.Root()); err != nil {
		return nil, fmt.Errorf("store: media spool: %w", err)
	}
	return b, nil
}

// removeTemps deletes the temp files of Puts that a crash interrupted.
// The spool belongs to this instance, which is starting: none is in use.
func removeTemps(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasPrefix(d.Name(), ".") && strings.HasSuffix(d.Name(), ".tmp") {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
}

// String names the object store, for logs.
func (b *ObjectBlobs) String() string { return b.obj.String() }

// Spool is the local folder of the parts.
func (b *ObjectBlobs) Spool() string { return b.spool.Root() }

func (b *ObjectBlobs) uploadFile(key, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), objectUploadTimeout)
	defer cancel()
	if err := b.obj.Upload(ctx, key, f, fi.Size()); err != nil {
		return fmt.Errorf("upload to %s: %w", b.obj, err)
	}
	return nil
}

// Create starts a recording in the spool; Commit uploads it.
func (b *ObjectBlobs) Create(key string) (*BlobFile, error) { return b.spool.Create(key) }

// Open opens a committed object. The returned Reader downloads lazily from
// its current offset, so a Range request reads only the bytes it serves.
func (b *ObjectBlobs) Open(key string) (Reader, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	info, err := b.stat(key)
	if err != nil {
		return nil, err
	}
	return &objectReader{obj: b.obj, key: key, info: info}, nil
}

func (b *ObjectBlobs) stat(key string) (ObjectInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), objectCallTimeout)
	defer cancel()
	info, err := b.obj.Stat(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return ObjectInfo{}, fmt.Errorf("store: blob %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("store: stat blob %s in %s: %w", key, b.obj, err)
	}
	return info, nil
}

// Stat returns the size of a committed object.
func (b *ObjectBlobs) Stat(key string) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	info, err := b.stat(key)
	return info.Size, err
}

// Delete removes a committed object; a missing one is not an error.
func (b *ObjectBlobs) Delete(key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), objectCallTimeout)
	defer cancel()
	if err := b.obj.Delete(ctx, key); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("store: delete blob %s in %s: %w", key, b.obj, err)
	}
	return nil
}

// Exists reports whether a committed object exists.
func (b *ObjectBlobs) Exists(key string) bool {
	_, err := b.Stat(key)
	return err == nil
}

// Path is "": committed blobs have no local file.
func (b *ObjectBlobs) Path(string) string { return "" }

// Parts lists the spooled parts that a crash left.
func (b *ObjectBlobs) Parts() ([]string, error) { return b.spool.Parts() }

// OpenPart opens and locks a spooled part for recovery.
func (b *ObjectBlobs) OpenPart(key string) (*os.File, error) { return b.spool.OpenPart(key) }

// CommitPart uploads a recovered part, then removes it from the spool.
func (b *ObjectBlobs) CommitPart(key string) error { return b.spool.CommitPart(key) }

// SettlePart removes the sidecar of an uploaded part.
func (b *ObjectBlobs) SettlePart(key string) error { return b.spool.SettlePart(key) }

// Unsettled lists the spool's sidecars whose part was uploaded (or
// removed); the spool is this instance's own, so they are Private.
func (b *ObjectBlobs) Unsettled() ([]Sidecar, error) { return b.spool.Unsettled() }

// RemovePart removes a spooled part and its sidecar.
func (b *ObjectBlobs) RemovePart(key string) error { return b.spool.RemovePart(key) }

// WritePartMeta writes the sidecar of a spooled part.
func (b *ObjectBlobs) WritePartMeta(key string, v any) error { return b.spool.WritePartMeta(key, v) }

// ReadPartMeta reads the sidecar of a spooled part.
func (b *ObjectBlobs) ReadPartMeta(key string, v any) error { return b.spool.ReadPartMeta(key, v) }

// Put uploads a whole object. r is first copied to a spool temp file: the
// size is then known (a single or multipart upload of the right size
// instead of buffering an unknown length in memory) and a failing reader
// never reaches the store.
func (b *ObjectBlobs) Put(key string, r io.Reader) error {
	if err := checkKey(key); err != nil {
		return err
	}
	dir := filepath.Join(b.spool.Root(), filepath.FromSlash(path.Dir(key)))
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("store: put blob %s: %w", key, err)
	}
	// The leading dot keeps the temp file out of Parts (hidden segment).
	tmp, err := os.CreateTemp(dir, "."+path.Base(key)+".*.tmp")
	if err != nil {
		return fmt.Errorf("store: put blob %s: %w", key, err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	if _, err := io.Copy(tmp, r); err != nil {
		return fmt.Errorf("store: put blob %s: %w", key, err)
	}
	if err := b.uploadFile(key, tmp.Name()); err != nil {
		return fmt.Errorf("store: put blob %s: %w", key, err)
	}
	return nil
}

// Ping checks that the object store answers and the spool is there.
func (b *ObjectBlobs) Ping() error {
	if err := b.spool.Ping(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), objectCallTimeout)
	defer cancel()
	if err := b.obj.Ping(ctx); err != nil {
		return fmt.Errorf("store: media %s: %w", b.obj, err)
	}
	return nil
}

// objectReader reads an object by ranged downloads: Seek only moves the
// offset; the next Read starts a download from there to the end.
type objectReader struct {
	obj    ObjectStore
	key    string
	info   ObjectInfo
	off    int64
	body   io.ReadCloser
	cancel context.CancelFunc
	closed bool
}

func (r *objectReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fs.ErrClosed
	}
	if r.off >= r.info.Size {
		return 0, io.EOF
	}
	if r.body == nil {
		// No deadline: a slow client may take long to drain a download;
		// Close cancels it.
		ctx, cancel := context.WithCancel(context.Background())
		body, err := r.obj.Download(ctx, r.key, r.off)
		if err != nil {
			cancel()
			return 0, fmt.Errorf("store: read blob %s: %w", r.key, err)
		}
		r.body, r.cancel = body, cancel
	}
	// Never read past the size seen at Open, so a concurrent replacement
	// cannot make the content longer than what was announced.
	if rest := r.info.Size - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := r.body.Read(p)
	r.off += int64(n)
	if err == io.EOF && r.off < r.info.Size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		err = fmt.Errorf("store: read blob %s: %w", r.key, err)
	}
	return n, err
}

func (r *objectReader) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, fs.ErrClosed
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.info.Size + offset
	default:
		return 0, fmt.Errorf("store: seek blob %s: bad whence %d", r.key, whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("store: seek blob %s: negative offset", r.key)
	}
	if abs != r.off {
		r.drop()
		r.off = abs
	}
	return abs, nil
}

func (r *objectReader) drop() {
	if r.body != nil {
		r.body.Close()
		r.cancel()
		r.body, r.cancel = nil, nil
	}
}

func (r *objectReader) Close() error {
	r.drop()
	r.closed = true
	return nil
}

func (r *objectReader) Stat() (fs.FileInfo, error) { return objectInfo{r}, nil }

// objectInfo is the fs.FileInfo of an open object.
type objectInfo struct{ r *objectReader }

func (i objectInfo) Name() string       { return path.Base(i.r.key) }
func (i objectInfo) Size() int64        { return i.r.info.Size }
func (i objectInfo) Mode() fs.FileMode  { return 0o440 }
func (i objectInfo) ModTime() time.Time { return i.r.info.ModTime }
func (i objectInfo) IsDir() bool        { return false }
func (i objectInfo) Sys() any           { return nil }
