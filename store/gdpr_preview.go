package store

import "context"

// GDPRPreviewStore answers what an undo would restore without restoring
// it: the dry runs of docs/gdpr.md (--count, ?dry_run=true).
type GDPRPreviewStore interface {
	// ForgottenByCaller returns the caller's hidden messages in tenant
	// ("" = every tenant) that UndoForget would restore now (their mailbox
	// still exists), ordered by ID, changing nothing. When none is hidden
	// but a purged tombstone of phoneHash exists in scope, it returns
	// ErrPurged, as UndoForget would.
	ForgottenByCaller(ctx context.Context, tenant, e164, phoneHash string) ([]Message, error)
}
