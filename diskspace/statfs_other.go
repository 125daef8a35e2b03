//go:build !unix

package diskspace

import "errors"

// Statfs is not implemented here: the monitor then reports every file
// system as unmeasurable, so set media.min_free to 0 on such systems.
func Statfs(path string) (Usage, error) {
	return Usage{}, errors.New("diskspace: statfs is not supported on this system")
}
