//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package store

import "os"

// lockFile is a no-op where flock is unavailable: parts are still created
// with O_EXCL, but recovery cannot tell a live part from a leftover one.
func lockFile(*os.File) error { return nil }
