//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes a non-blocking exclusive flock on f, released when f is
// closed or its process dies, so a crashed writer never leaves a stale lock.
// Linux maps flock to POSIX locks on NFS, so the lock also spans instances
// that share the volume. File systems without locking get no protection
// rather than no recordings.
func lockFile(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		lerr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
	}); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	switch {
	case lerr == nil:
		return nil
	case errors.Is(lerr, syscall.EWOULDBLOCK):
		return fmt.Errorf("lock %s: %w", f.Name(), ErrBusy)
	case errors.Is(lerr, syscall.ENOLCK), errors.Is(lerr, syscall.EOPNOTSUPP):
		return nil
	default:
		return fmt.Errorf("lock %s: %w", f.Name(), lerr)
	}
}
