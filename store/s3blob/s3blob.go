// Package s3blob keeps media in an S3-compatible bucket (AWS S3, MinIO,
// versitygw…): the store.ObjectStore behind store.ObjectBlobs, named by a
// URL "s3://bucket/prefix?endpoint=…&region=…". See docs/object-storage.md.
package s3blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/vmserver/voicemail/store"
)

// Config says where the bucket is and how to sign in.
type Config struct {
	Bucket   string
	Prefix   string // "" or a slash-separated path without leading/trailing slash
	Endpoint string // host[:port]
	Secure   bool   // https
	Region   string
	// PathStyle forces https://endpoint/bucket/key URLs (most self-hosted
	// gateways); otherwise the client picks (virtual hosts on AWS).
	PathStyle bool

	AccessKey, SecretKey, SessionToken string
}

// DefaultEndpoint is AWS S3.
const DefaultEndpoint = "s3.amazonaws.com"

// ParseURL reads "s3://bucket[/prefix][?endpoint=URL&region=R&path_style=true]".
// The endpoint may be "host:port" (https) or "http(s)://host:port".
// Credentials are not part of the URL: see Credentials.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("s3 media URL: %w", err)
	}
	if u.Scheme != "s3" {
		return Config{}, fmt.Errorf("s3 media URL %q: scheme must be s3", raw)
	}
	if u.User != nil {
		return Config{}, errors.New("s3 media URL: put credentials in s3.access_key/s3.secret_key or AWS_* variables, not in the URL")
	}
	c := Config{Bucket: u.Host, Endpoint: DefaultEndpoint, Secure: true}
	if err := checkBucket(c.Bucket); err != nil {
		return Config{}, err
	}
	if c.Prefix, err = cleanPrefix(u.Path); err != nil {
		return Config{}, fmt.Errorf("s3 media URL: %w", err)
	}
	for k, v := range u.Query() {
		val := v[len(v)-1]
		switch k {
		case "endpoint":
			if c.Endpoint, c.Secure, err = parseEndpoint(val); err != nil {
				return Config{}, fmt.Errorf("s3 media URL: endpoint: %w", err)
			}
		case "region":
			c.Region = val
		case "path_style":
			switch val {
			case "true", "1":
				c.PathStyle = true
			case "false", "0":
			default:
				return Config{}, fmt.Errorf("s3 media URL: path_style: want true or false, got %q", val)
			}
		default:
			return Config{}, fmt.Errorf("s3 media URL: unknown parameter %q (known: endpoint, region, path_style)", k)
		}
	}
	return c, nil
}

func parseEndpoint(v string) (host string, secure bool, err error) {
	if v == "" {
		return "", false, errors.New("empty")
	}
	if !strings.Contains(v, "://") {
		v = "https://" + v
	}
	u, err := url.Parse(v)
	if err != nil {
		return "", false, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", false, fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", false, fmt.Errorf("%q: want scheme://host[:port] only", v)
	}
	return u.Host, u.Scheme == "https", nil
}

// checkBucket applies the S3 bucket naming rules that matter for a URL.
func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("s3 media URL: bucket %q: want 3 to 63 characters", b)
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("s3 media URL: bucket %q: only lowercase letters, digits, '-' and '.'", b)
		}
	}
	return nil
}

// cleanPrefix turns a URL path into a key prefix: no leading or trailing
// slash, no empty, "." or ".." segment.
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

// Credentials fills empty keys from the standard AWS variables
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) and an
// empty region from AWS_REGION or AWS_DEFAULT_REGION. Keys given in the
// configuration win.
func (c *Config) Credentials(getenv func(string) (string, bool)) {
	get := func(k string) string { v, _ := getenv(k); return v }
	if c.AccessKey == "" && c.SecretKey == "" {
		c.AccessKey, c.SecretKey = get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")
		c.SessionToken = get("AWS_SESSION_TOKEN")
	}
	if c.Region == "" {
		c.Region = get("AWS_REGION")
	}
	if c.Region == "" {
		c.Region = get("AWS_DEFAULT_REGION")
	}
}

// Store is a bucket (and prefix) as a store.ObjectStore.
type Store struct {
	cfg Config
	cl  *minio.Core
}

var _ store.ObjectStore = (*Store)(nil)

// New connects lazily (no request is made): use Ping to check.
func New(cfg Config) (*Store, error) {
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("s3 media: no credentials: set s3.access_key and s3.secret_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	cl, err := minio.NewCore(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken),
		Secure:       cfg.Secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 media %s: %w", cfg.Endpoint, err)
	}
	return &Store{cfg: cfg, cl: cl}, nil
}

// String names the bucket and prefix (never the keys).
func (s *Store) String() string {
	return "s3://" + s.cfg.Bucket + "/" + s.cfg.Prefix + " at " + s.cfg.Endpoint
}

func (s *Store) name(key string) string {
	if s.cfg.Prefix == "" {
		return key
	}
	return s.cfg.Prefix + "/" + key
}

// partSize bounds the memory of a multipart upload (one part per worker);
// recordings are smaller, so most uploads are a single PUT.
const partSize = 16 << 20

// Upload puts f as one object; S3 makes it visible only once complete
// (single PUT, or CompleteMultipartUpload for large files).
func (s *Store) Upload(ctx context.Context, key string, f *os.File, size int64) error {
	_, err := s.cl.Client.PutObject(ctx, s.cfg.Bucket, s.name(key), f, size, minio.PutObjectOptions{
		ContentType: "audio/wav",
		PartSize:    partSize,
	})
	return err
}

// Stat returns the size and modification time; store.ErrNotFound if absent.
func (s *Store) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	oi, err := s.cl.Client.StatObject(ctx, s.cfg.Bucket, s.name(key), minio.StatObjectOptions{})
	if err != nil {
		return store.ObjectInfo{}, mapErr(err)
	}
	return store.ObjectInfo{Size: oi.Size, ModTime: oi.LastModified}, nil
}

// Download is a GET from offset off (a Range request when off > 0).
func (s *Store) Download(ctx context.Context, key string, off int64) (io.ReadCloser, error) {
	var opts minio.GetObjectOptions
	if off > 0 {
		if err := opts.SetRange(off, 0); err != nil {
			return nil, err
		}
	}
	body, _, _, err := s.cl.GetObject(ctx, s.cfg.Bucket, s.name(key), opts)
	if err != nil {
		return nil, mapErr(err)
	}
	return body, nil
}

// Delete removes the object; S3 answers a missing one with success too.
func (s *Store) Delete(ctx context.Context, key string) error {
	return mapErr(s.cl.Client.RemoveObject(ctx, s.cfg.Bucket, s.name(key), minio.RemoveObjectOptions{}))
}

// List walks the objects whose name starts with the store prefix and
// prefix, and calls fn with keys relative to the store prefix.
func (s *Store) List(ctx context.Context, prefix string, fn func(key string, info store.ObjectInfo) error) error {
	full := s.name(prefix) // "<store prefix>/" for prefix ""
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine when fn fails
	for oi := range s.cl.Client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: full, Recursive: true}) {
		if oi.Err != nil {
			return mapErr(oi.Err)
		}
		key := oi.Key
		if s.cfg.Prefix != "" {
			key = strings.TrimPrefix(key, s.cfg.Prefix+"/")
		}
		if err := fn(key, store.ObjectInfo{Size: oi.Size, ModTime: oi.LastModified}); err != nil {
			return err
		}
	}
	return nil
}

// Ping checks that the bucket exists and the credentials are accepted.
func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.cl.Client.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("bucket %q does not exist", s.cfg.Bucket)
	}
	return nil
}

func mapErr(err error) error {
	if err == nil {
		return nil
	}
	r := minio.ToErrorResponse(err)
	if r.StatusCode == http.StatusNotFound || r.Code == minio.NoSuchKey {
		return fmt.Errorf("%w: %v", store.ErrNotFound, err)
	}
	return err
}

// Open returns store.Blobs on the bucket named by rawURL, with parts
// spooled under spoolDir. Empty credentials in cfgCreds are taken from the
// environment (getenv).
func Open(rawURL, accessKey, secretKey, spoolDir string, getenv func(string) (string, bool)) (*store.ObjectBlobs, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	cfg.AccessKey, cfg.SecretKey = accessKey, secretKey
	cfg.Credentials(getenv)
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return store.NewObjectBlobs(spoolDir, s)
}
