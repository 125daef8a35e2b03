package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Sidecar is a recording's sidecar whose part is gone: the part was
// committed (the row may be missing) or removed by a crash mid-cleanup.
// See docs/storage.md.
type Sidecar struct {
	Key string
	// ModTime is when the committed blob was last written (its commit)
	// or, without a blob, when the sidecar was: how long ago a writer was
	// last seen.
	ModTime time.Time
	// Private is true when the sidecar is in this instance's own spool
	// (object stores): no other live instance can be about to settle it.
	Private bool
}

// BlobInfo describes a committed blob.
type BlobInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// SettlePart removes the sidecar of a committed part: the message row
// exists now, so the recovery has nothing left to do for it.
func (b *FSBlobs) SettlePart(key string) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p + metaSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: settle part %s: %w", key, err)
	}
	return nil
}

// Unsettled lists the sidecars that have no part beside them, in key order.
func (b *FSBlobs) Unsettled() ([]Sidecar, error) {
	var out []Sidecar
	err := b.walk("", func(p, rel string, d fs.DirEntry) error {
		if !strings.HasSuffix(d.Name(), metaSuffix) {
			return nil
		}
		key := strings.TrimSuffix(rel, metaSuffix)
		if checkKey(key) != nil {
			return nil
		}
		final := strings.TrimSuffix(p, metaSuffix)
		if _, err := os.Lstat(final + partSuffix); err == nil {
			return nil // still a part: Parts and OpenPart handle it
		}
		fi, err := os.Stat(final)
		if err != nil {
			fi, err = d.Info()
		}
		if err != nil {
			return nil // removed meanwhile
		}
		out = append(out, Sidecar{Key: key, ModTime: fi.ModTime(), Private: b.upload != nil})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list sidecars under %s: %w", b.root, err)
	}
	slices.SortFunc(out, func(a, b Sidecar) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// List returns the committed blobs whose key starts with prefix, in key
// order. Parts, sidecars and temp files are not blobs.
func (b *FSBlobs) List(prefix string) ([]BlobInfo, error) {
	var out []BlobInfo
	// Walk only the deepest folder the prefix names: a call looking up one
	// mailbox's greetings reads that folder, not the whole volume.
	under := ""
	if i := strings.LastIndexByte(prefix, '/'); i > 0 && checkKey(prefix[:i]) == nil {
		under = prefix[:i]
	}
	err := b.walk(under, func(_, key string, d fs.DirEntry) error {
		if !strings.HasPrefix(key, prefix) || checkKey(key) != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		out = append(out, BlobInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list blobs under %s: %w", b.root, err)
	}
	slices.SortFunc(out, func(a, b BlobInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// walk calls fn for every regular file in the folder under (a
// slash-separated path relative to the root, "" for the root) and below,
// with its path and its slash-separated path relative to the root. Hidden
// folders (temp files of other tools) are skipped; a missing folder has
// no files.
func (b *FSBlobs) walk(under string, fn func(p, rel string, d fs.DirEntry) error) error {
	start := filepath.Join(b.root, filepath.FromSlash(under))
	return filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// Another instance may delete a mailbox folder while we walk.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() && p != start && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		return fn(p, filepath.ToSlash(rel), d)
	})
}

// List returns the committed objects whose key starts with prefix, in
// key order.
func (b *ObjectBlobs) List(prefix string) ([]BlobInfo, error) {
	return b.list(prefix, objectCallTimeout)
}

// list bounds each wait for the store by idle, not the listing as a
// whole: the whole bucket takes many pages and minutes, a mailbox's
// greetings one request, which a deposit's caller waits for in silence.
func (b *ObjectBlobs) list(prefix string, idle time.Duration) ([]BlobInfo, error) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stalled := time.AfterFunc(idle, func() { cancel(fmt.Errorf("no answer from the object store in %v", idle)) })
	defer stalled.Stop()
	var out []BlobInfo
	err := b.obj.List(ctx, prefix, func(key string, info ObjectInfo) error {
		stalled.Reset(idle)
		if checkKey(key) == nil && strings.HasPrefix(key, prefix) {
			out = append(out, BlobInfo{Key: key, Size: info.Size, ModTime: info.ModTime})
		}
		return nil
	})
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		return nil, fmt.Errorf("store: list blobs in %s: %w", b.obj, err)
	}
	slices.SortFunc(out, func(a, b BlobInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}
