//go:build !cgo

package store

// isSQLiteConflict never matches without cgo: go-sqlite3 is then a stub whose
// Open fails with a message saying cgo is required, so no query runs.
func isSQLiteConflict(error) bool { return false }
