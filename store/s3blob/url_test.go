package s3blob

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Config
		err  string
	}{
		{in: "s3://media", want: Config{Bucket: "media", Endpoint: DefaultEndpoint, Secure: true}},
		{in: "s3://vm-media/prod/eu/?region=eu-west-3", want: Config{Bucket: "vm-media", Prefix: "prod/eu", Endpoint: DefaultEndpoint, Secure: true, Region: "eu-west-3"}},
		{in: "s3://media/p?endpoint=http://127.0.0.1:7070&path_style=true", want: Config{Bucket: "media", Prefix: "p", Endpoint: "127.0.0.1:7070", PathStyle: true}},
		{in: "s3://media?endpoint=minio.local:9000", want: Config{Bucket: "media", Endpoint: "minio.local:9000", Secure: true}},
		{in: "s3://media?endpoint=https://s3.example.com/", want: Config{Bucket: "media", Endpoint: "s3.example.com", Secure: true}},
		{in: "file:///x", err: "scheme"},
		{in: "s3://ab", err: "3 to 63"},
		{in: "s3://Media", err: "lowercase"},
		{in: "s3://key:secret@media", err: "credentials"},
		{in: "s3://media/a/../b", err: "'..'"},
		{in: "s3://media/a//b", err: "empty"},
		{in: "s3://media?endpoint=ftp://x", err: "endpoint"},
		{in: "s3://media?endpoint=http://x/path", err: "endpoint"},
		{in: "s3://media?endpoint=", err: "endpoint"},
		{in: "s3://media?path_style=maybe", err: "path_style"},
		{in: "s3://media?secret=x", err: `unknown parameter "secret"`},
		{in: "s3://media/%zz", err: "URL"},
	} {
		got, err := ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseURL(%q) = %+v, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestCredentialsFromEnv(t *testing.T) {
	env := map[string]string{"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_SESSION_TOKEN": "TOK", "AWS_DEFAULT_REGION": "eu-north-1"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var c Config
	c.Credentials(getenv)
	if c.AccessKey != "AK" || c.SecretKey != "SK" || c.SessionToken != "TOK" || c.Region != "eu-north-1" {
		t.Errorf("from env: %+v", c)
	}
	c = Config{AccessKey: "cfg", SecretKey: "cfgsecret", Region: "us-east-2"}
	c.Credentials(getenv)
	if c.AccessKey != "cfg" || c.SecretKey != "cfgsecret" || c.SessionToken != "" || c.Region != "us-east-2" {
		t.Errorf("config must win: %+v", c)
	}
	if _, err := New(Config{Bucket: "media", Endpoint: DefaultEndpoint}); err == nil || !strings.Contains(err.Error(), "s3.access_key") {
		t.Errorf("New without credentials = %v", err)
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"s3://media/p?endpoint=http://127.0.0.1:7070&region=x", "s3://a/../b", "s3://media?path_style=true"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseURL(s)
		if err != nil {
			return
		}
		if checkBucket(c.Bucket) != nil || strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") || strings.Contains("/"+c.Prefix+"/", "/../") || c.Endpoint == "" {
			t.Errorf("ParseURL(%q) accepted %+v", s, c)
		}
	})
}
