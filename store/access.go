package store

// AccessStore is what the access IVR (SPEC §5) keeps: login failures per
// mailbox across calls and the lockout they cause.
type AccessStore interface{}
