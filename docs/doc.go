// Package docs is the reference manual of the voicemail server, as
// Markdown pages in this folder (start at README.md). Its tests keep the
// manual true to the code: every metric the code registers is described,
// every relative link resolves, and no source or page cites a document that
// does not ship with the repository.
package docs
