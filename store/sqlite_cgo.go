//go:build cgo

package store

import (
	"errors"

	"github.com/mattn/go-sqlite3"
)

// isSQLiteConflict reports a UNIQUE or PRIMARY KEY violation.
func isSQLiteConflict(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
}
