// Package azureblob keeps media in an Azure Blob Storage container: the
// store.ObjectStore behind store.ObjectBlobs, named by a URL
// "azblob://container/prefix?account=…&endpoint=…". See
// docs/object-storage.md.
package azureblob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/vmserver/voicemail/store"
)

// Config says where the container is and how to sign in: an account key
// (shared key) or a SAS token.
type Config struct {
	Container string
	Prefix    string // "" or a slash-separated path without leading/trailing slash
	Account   string
	// Endpoint is the blob service URL, e.g. http://127.0.0.1:10000/devstoreaccount1
	// for Azurite; default https://<account>.blob.core.windows.net.
	Endpoint string

	AccountKey string
	SASToken   string // without the leading '?'
}

// ParseURL reads "azblob://container[/prefix][?account=NAME&endpoint=URL]".
// Credentials are not part of the URL: see Credentials.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("azblob media URL: %w", err)
	}
	if u.Scheme != "azblob" {
		return Config{}, fmt.Errorf("azblob media URL %q: scheme must be azblob", raw)
	}
	if u.User != nil {
		return Config{}, errors.New("azblob media URL: put credentials in azure.account_key/azure.sas_token or AZURE_STORAGE_* variables, not in the URL")
	}
	c := Config{Container: u.Host}
	if err := checkContainer(c.Container); err != nil {
		return Config{}, err
	}
	if c.Prefix, err = cleanPrefix(u.Path); err != nil {
		return Config{}, fmt.Errorf("azblob media URL: %w", err)
	}
	for k, v := range u.Query() {
		val := v[len(v)-1]
		switch k {
		case "account":
			c.Account = val
		case "endpoint":
			e, err := url.Parse(val)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" || e.RawQuery != "" || e.User != nil {
				return Config{}, fmt.Errorf("azblob media URL: endpoint %q: want http(s)://host[:port][/account]", val)
			}
			c.Endpoint = strings.TrimRight(val, "/")
		default:
			return Config{}, fmt.Errorf("azblob media URL: unknown parameter %q (known: account, endpoint)", k)
		}
	}
	return c, nil
}

// checkContainer applies the Azure container naming rules.
func checkContainer(c string) error {
	if len(c) < 3 || len(c) > 63 {
		return fmt.Errorf("azblob media URL: container %q: want 3 to 63 characters", c)
	}
	for i, r := range c {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0 && i < len(c)-1 && c[i-1] != '-'
		if !ok {
			return fmt.Errorf("azblob media URL: container %q: only lowercase letters, digits and single inner '-'", c)
		}
	}
	return nil
}

func cleanPrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	for _, s := range strings.Split(p, "/") {
		if s == "" || s == "." || s == ".." {
			return "", fmt.Errorf("prefix %q: empty, '.' or '..' segment", p)
		}
	}
	return p, nil
}

// Credentials fills what the configuration left empty from the standard
// variables AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_KEY and
// AZURE_STORAGE_SAS_TOKEN. A key or token from the configuration wins
// over both of the environment.
func (c *Config) Credentials(getenv func(string) (string, bool)) {
	get := func(k string) string { v, _ := getenv(k); return v }
	if c.Account == "" {
		c.Account = get("AZURE_STORAGE_ACCOUNT")
	}
	if c.AccountKey == "" && c.SASToken == "" {
		c.AccountKey, c.SASToken = get("AZURE_STORAGE_KEY"), get("AZURE_STORAGE_SAS_TOKEN")
	}
	c.SASToken = strings.TrimPrefix(c.SASToken, "?")
}

// Store is a container (and prefix) as a store.ObjectStore.
type Store struct {
	cfg Config
	cl  *container.Client
}

var _ store.ObjectStore = (*Store)(nil)

// New builds the client; no request is made (use Ping to check).
func New(cfg Config) (*Store, error) {
	if cfg.Account == "" && cfg.Endpoint == "" {
		return nil, errors.New("azblob media: no account: set account= in the URL or AZURE_STORAGE_ACCOUNT")
	}
	svc := cfg.Endpoint
	if svc == "" {
		svc = "https://" + cfg.Account + ".blob.core.windows.net"
	}
	curl := svc + "/" + url.PathEscape(cfg.Container)
	var (
		cl  *container.Client
		err error
	)
	switch {
	case cfg.AccountKey != "":
		if cfg.Account == "" {
			return nil, errors.New("azblob media: a shared key needs the account name (account= or AZURE_STORAGE_ACCOUNT)")
		}
		cred, cerr := container.NewSharedKeyCredential(cfg.Account, cfg.AccountKey)
		if cerr != nil {
			return nil, fmt.Errorf("azblob media: account key: %w", cerr)
		}
		cl, err = container.NewClientWithSharedKeyCredential(curl, cred, nil)
	case cfg.SASToken != "":
		cl, err = container.NewClientWithNoCredential(curl+"?"+cfg.SASToken, nil)
	default:
		return nil, errors.New("azblob media: no credentials: set azure.account_key or azure.sas_token, or AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN")
	}
	if err != nil {
		return nil, fmt.Errorf("azblob media %s: %w", svc, err)
	}
	return &Store{cfg: cfg, cl: cl}, nil
}

// String names the container and prefix (never a key or token).
func (s *Store) String() string {
	ep := s.cfg.Endpoint
	if ep == "" {
		ep = s.cfg.Account + ".blob.core.windows.net"
	}
	return "azblob://" + s.cfg.Container + "/" + s.cfg.Prefix + " at " + ep
}

func (s *Store) name(key string) string {
	if s.cfg.Prefix == "" {
		return key
	}
	return s.cfg.Prefix + "/" + key
}

// Upload puts f as a block blob. A single Put Blob, or staged blocks and
// one Put Block List for large files: either way the blob changes at once.
func (s *Store) Upload(ctx context.Context, key string, f *os.File, size int64) error {
	ct := "audio/wav"
	_, err := s.cl.NewBlockBlobClient(s.name(key)).UploadFile(ctx, f, &blockblob.UploadFileOptions{
		HTTPHeaders: &blob.HTTPHeaders{BlobContentType: &ct},
	})
	return redact(err)
}

// Stat returns the size and modification time; store.ErrNotFound if absent.
func (s *Store) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	p, err := s.cl.NewBlobClient(s.name(key)).GetProperties(ctx, nil)
	if err != nil {
		return store.ObjectInfo{}, redact(mapErr(err))
	}
	var info store.ObjectInfo
	if p.ContentLength != nil {
		info.Size = *p.ContentLength
	}
	if p.LastModified != nil {
		info.ModTime = *p.LastModified
	}
	return info, nil
}

// Download streams the blob from offset off (Count 0 = to the end).
func (s *Store) Download(ctx context.Context, key string, off int64) (io.ReadCloser, error) {
	r, err := s.cl.NewBlobClient(s.name(key)).DownloadStream(ctx, &blob.DownloadStreamOptions{
		Range: blob.HTTPRange{Offset: off},
	})
	if err != nil {
		return nil, redact(mapErr(err))
	}
	return r.Body, nil
}

// Delete removes the blob with its snapshots; a missing one is nil.
func (s *Store) Delete(ctx context.Context, key string) error {
	inc := blob.DeleteSnapshotsOptionTypeInclude
	_, err := s.cl.NewBlobClient(s.name(key)).Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: &inc})
	if err = mapErr(err); errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return redact(err)
}

// List pages through the blobs whose name starts with the store prefix
// and prefix, and calls fn with keys relative to the store prefix.
func (s *Store) List(ctx context.Context, prefix string, fn func(key string, info store.ObjectInfo) error) error {
	full := s.name(prefix) // "<store prefix>/" for prefix ""
	pager := s.cl.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &full})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return redact(err)
		}
		if page.Segment == nil {
			continue
		}
		for _, it := range page.Segment.BlobItems {
			if it.Name == nil {
				continue
			}
			key := *it.Name
			if s.cfg.Prefix != "" {
				key = strings.TrimPrefix(key, s.cfg.Prefix+"/")
			}
			var info store.ObjectInfo
			if p := it.Properties; p != nil {
				if p.ContentLength != nil {
					info.Size = *p.ContentLength
				}
				if p.LastModified != nil {
					info.ModTime = *p.LastModified
				}
			}
			if err := fn(key, info); err != nil {
				return err
			}
		}
	}
	return nil
}

// Ping checks that the container exists and the credentials are accepted.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.cl.GetProperties(ctx, nil)
	if bloberror.HasCode(err, bloberror.ContainerNotFound) {
		return fmt.Errorf("container %q does not exist", s.cfg.Container)
	}
	return redact(err)
}

// sasSig matches the signature of a SAS token in a URL.
var sasSig = regexp.MustCompile(`(?i)(sig=)[^&\s"']+`)

// redact hides a SAS signature that a transport error (*url.Error) prints
// with the request URL, so that logs never hold a usable token.
func redact(err error) error {
	if err == nil || !sasSig.MatchString(err.Error()) {
		return err
	}
	return redactedError{msg: sasSig.ReplaceAllString(err.Error(), "${1}REDACTED"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var re *azcore.ResponseError
	if bloberror.HasCode(err, bloberror.BlobNotFound) || (errors.As(err, &re) && re.StatusCode == http.StatusNotFound) {
		return fmt.Errorf("%w: %v", store.ErrNotFound, err)
	}
	return err
}

// Open returns store.Blobs on the container named by rawURL, with parts
// spooled under spoolDir. Empty credentials are taken from the environment
// (getenv).
func Open(rawURL, accountKey, sasToken, spoolDir string, getenv func(string) (string, bool)) (*store.ObjectBlobs, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	cfg.AccountKey, cfg.SASToken = accountKey, sasToken
	cfg.Credentials(getenv)
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return store.NewObjectBlobs(spoolDir, s)
}
