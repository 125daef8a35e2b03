//go:build unix

package diskspace

import "syscall"

// Statfs returns the space available to an unprivileged user (f_bavail)
// and the size of the file system holding path.
func Statfs(path string) (Usage, error) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(path, &s); err != nil {
		return Usage{}, err
	}
	bs := uint64(s.Bsize)
	return Usage{Free: uint64(s.Bavail) * bs, Total: uint64(s.Blocks) * bs}, nil
}
