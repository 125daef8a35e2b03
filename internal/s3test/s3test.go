// Package s3test runs a real S3 server for tests: versitygw over a temp
// folder, on a free loopback port, for the duration of one test.
package s3test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/vmserver/voicemail/internal/toolproc"
)

// Hint is how to install the gateway (.ci/run does it).
const Hint = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Server is a running gateway with one bucket.
type Server struct {
	Endpoint             string // http://127.0.0.1:port
	Host                 string // 127.0.0.1:port
	AccessKey, SecretKey string
	Bucket               string
	Region               string
}

// URL is the media URL of the bucket under prefix.
func (s *Server) URL(prefix string) string {
	return "s3://" + s.Bucket + "/" + prefix + "?endpoint=" + s.Endpoint + "&region=" + s.Region + "&path_style=true"
}

// Start runs versitygw (VERSITYGW, or versitygw on PATH or in
// $(go env GOPATH)/bin) and creates the bucket "media". A missing gateway
// fails the test when CI=true and skips it otherwise.
func Start(t testing.TB) *Server {
	t.Helper()
	var dirs []string
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.Join(gp, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	bin := toolproc.Find(t, "VERSITYGW", "versitygw", Hint, dirs...)
	root := t.TempDir()
	s := &Server{AccessKey: "test-access-key", SecretKey: "test-secret-key-0123456789", Bucket: "media", Region: "us-east-1"}
	port := toolproc.FreePort(t)
	s.Host = toolproc.Addr(port)
	s.Endpoint = "http://" + s.Host
	toolproc.Start(t, s.Host, bin,
		"--access", s.AccessKey, "--secret", s.SecretKey,
		"--region", s.Region, "--port", "127.0.0.1:"+strconv.Itoa(port),
		"posix", root)
	cl := s.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatalf("versitygw: create bucket: %v", err)
	}
	return s
}

// Client is a plain S3 client of the server, to look behind the store.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	cl, err := minio.New(s.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:       s.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
