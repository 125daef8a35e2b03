// Package archtest checks, in its test, that imports follow
// docs/architecture.md. It has no code of its own.
package archtest
