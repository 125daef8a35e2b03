// Package mediastore opens the media store named by the `media` setting:
// file:// (a local or shared folder), s3:// or azblob://. It lives apart
// from package store so that only the programs that open media by URL
// link the cloud SDKs. See docs/object-storage.md.
package mediastore

import (
	"fmt"
	"strings"

	"github.com/vmserver/voicemail/store"
	"github.com/vmserver/voicemail/store/azureblob"
	"github.com/vmserver/voicemail/store/s3blob"
)

// Options are the credentials and local folders an object store needs.
type Options struct {
	// SpoolDir holds recordings in progress before their upload (s3://
	// and azblob:// only). It must survive a restart for the crash
	// recovery to upload what a crash left.
	SpoolDir string

	S3AccessKey, S3SecretKey     string // config s3.access_key / s3.secret_key
	AzureAccountKey, AzureSASKey string // config azure.account_key / azure.sas_token

	// Getenv reads the standard AWS_* and AZURE_STORAGE_* variables when a
	// credential is not configured; nil reads none.
	Getenv func(string) (string, bool)
}

// Open returns the media store named by dsn.
func Open(dsn string, o Options) (store.Blobs, error) {
	scheme, _, ok := strings.Cut(dsn, "://")
	if !ok {
		return nil, fmt.Errorf("media %q: want scheme://…, e.g. file:///var/lib/voicemail/media", dsn)
	}
	getenv := o.Getenv
	if getenv == nil {
		getenv = func(string) (string, bool) { return "", false }
	}
	switch strings.ToLower(scheme) {
	case "file":
		return store.OpenBlobs(dsn)
	case "s3", "azblob":
		if o.SpoolDir == "" {
			return nil, fmt.Errorf("media %s: no spool folder for recordings in progress", scheme)
		}
		if strings.ToLower(scheme) == "s3" {
			return s3blob.Open(dsn, o.S3AccessKey, o.S3SecretKey, o.SpoolDir, getenv)
		}
		return azureblob.Open(dsn, o.AzureAccountKey, o.AzureSASKey, o.SpoolDir, getenv)
	default:
		return nil, fmt.Errorf("media: unsupported scheme %q (supported: file, s3, azblob)", scheme)
	}
}
