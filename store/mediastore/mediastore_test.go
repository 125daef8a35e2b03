package mediastore

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmserver/voicemail/store"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	b, err := Open("file://"+filepath.Join(dir, "media"), Options{})
	if err != nil {
		t.Fatalf("file: %v", err)
	}
	if _, ok := b.(*store.FSBlobs); !ok {
		t.Errorf("file:// gave %T", b)
	}
	env := map[string]string{"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AZURE_STORAGE_ACCOUNT": "acme", "AZURE_STORAGE_KEY": "a2V5"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct {
		dsn  string
		o    Options
		want string // "" = opens
	}{
		{dsn: "s3://media/p?endpoint=http://127.0.0.1:1", o: Options{SpoolDir: dir, Getenv: getenv}},
		{dsn: "s3://media/p?endpoint=http://127.0.0.1:1", o: Options{SpoolDir: dir, S3AccessKey: "a", S3SecretKey: "b"}},
		{dsn: "s3://media/p", o: Options{SpoolDir: dir}, want: "s3.access_key"},
		{dsn: "S3://media/p", o: Options{SpoolDir: dir, Getenv: getenv}}, // schemes are case-insensitive
		{dsn: "s3://media/p", o: Options{Getenv: getenv}, want: "spool"},
		{dsn: "azblob://media/p", o: Options{SpoolDir: dir, Getenv: getenv}},
		{dsn: "azblob://media/p?account=x", o: Options{SpoolDir: dir, AzureSASKey: "sv=1&sig=x"}},
		{dsn: "azblob://media/p?account=x", o: Options{SpoolDir: dir}, want: "azure.account_key"},
		{dsn: "gs://media", o: Options{SpoolDir: dir}, want: `unsupported scheme "gs"`},
		{dsn: "media", want: "scheme://"},
		{dsn: "file://", want: "empty path"},
	} {
		b, err := Open(tc.dsn, tc.o)
		if tc.want == "" {
			if err != nil {
				t.Errorf("Open(%q): %v", tc.dsn, err)
			} else if _, ok := b.(*store.ObjectBlobs); !ok {
				t.Errorf("Open(%q) gave %T", tc.dsn, b)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want an error with %q", tc.dsn, err, tc.want)
		}
	}
}
