package main

import (
	"os"
	"path/filepath"

	"github.com/vmserver/voicemail/config"
	"github.com/vmserver/voicemail/store"
	"github.com/vmserver/voicemail/store/mediastore"
)

// openMedia opens the `media` store. Recordings in progress on an object
// store spool under <data_dir>/spool, which must survive a restart for
// the crash recovery (docs/object-storage.md).
func openMedia(cfg *config.Config) (store.Blobs, error) {
	return mediastore.Open(cfg.Media, mediaOptions(cfg, filepath.Join(cfg.DataDir, "spool")))
}

func mediaOptions(cfg *config.Config, spool string) mediastore.Options {
	return mediastore.Options{
		SpoolDir:    spool,
		S3AccessKey: cfg.S3AccessKey, S3SecretKey: cfg.S3SecretKey,
		AzureAccountKey: cfg.AzureAccountKey, AzureSASKey: cfg.AzureSASToken,
		Getenv: os.LookupEnv,
	}
}
