package azureblob

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Config
		err  string
	}{
		{in: "azblob://media", want: Config{Container: "media"}},
		{in: "azblob://vm-media/prod/eu/?account=acme", want: Config{Container: "vm-media", Prefix: "prod/eu", Account: "acme"}},
		{in: "azblob://media/p?account=devstoreaccount1&endpoint=http://127.0.0.1:10000/devstoreaccount1/",
			want: Config{Container: "media", Prefix: "p", Account: "devstoreaccount1", Endpoint: "http://127.0.0.1:10000/devstoreaccount1"}},
		{in: "s3://media", err: "scheme"},
		{in: "azblob://ab", err: "3 to 63"},
		{in: "azblob://Media", err: "lowercase"},
		{in: "azblob://-media", err: "lowercase"},
		{in: "azblob://me--dia", err: "lowercase"},
		{in: "azblob://media.x", err: "lowercase"},
		{in: "azblob://k:s@media", err: "credentials"},
		{in: "azblob://media/a/./b", err: "'.'"},
		{in: "azblob://media?endpoint=127.0.0.1:10000", err: "endpoint"},
		{in: "azblob://media?endpoint=http://x?sig=1", err: "endpoint"},
		{in: "azblob://media?sas=x", err: `unknown parameter "sas"`},
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
	env := map[string]string{"AZURE_STORAGE_ACCOUNT": "acme", "AZURE_STORAGE_KEY": "a2V5", "AZURE_STORAGE_SAS_TOKEN": "?sv=1&sig=x"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var c Config
	c.Credentials(getenv)
	if c.Account != "acme" || c.AccountKey != "a2V5" || c.SASToken != "sv=1&sig=x" {
		t.Errorf("from env: %+v", c)
	}
	c = Config{Account: "cfg", SASToken: "sv=2"}
	c.Credentials(getenv)
	if c.Account != "cfg" || c.AccountKey != "" || c.SASToken != "sv=2" {
		t.Errorf("config must win: %+v", c)
	}
	for _, cfg := range []Config{{Container: "media"}, {Container: "media", Account: "a"}, {Container: "media", Endpoint: "http://x", AccountKey: "a2V5"}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	if _, err := New(Config{Container: "media", Account: "a", SASToken: "sv=1&sig=x"}); err != nil {
		t.Errorf("New with a SAS token: %v", err)
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"azblob://media/p?account=a&endpoint=http://127.0.0.1:10000/a", "azblob://a/../b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseURL(s)
		if err != nil {
			return
		}
		if checkContainer(c.Container) != nil || strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") || strings.Contains("/"+c.Prefix+"/", "/../") {
			t.Errorf("ParseURL(%q) accepted %+v", s, c)
		}
	})
}

// TestSASNeverInErrors: a transport error prints the request URL; the
// signature of the SAS token must not reach the logs through it.
func TestSASNeverInErrors(t *testing.T) {
	if got := redact(errors.New(`Get "http://h/c/b?sv=2024&sig=SeCrEt%2Bx&se=1": refused`)).Error(); strings.Contains(got, "SeCrEt") || !strings.Contains(got, "sig=REDACTED&se=1") {
		t.Errorf("redacted = %q", got)
	}
	base := errors.New("x")
	if err := redact(fmt.Errorf("GET ?sig=abc: %w", base)); !errors.Is(err, base) {
		t.Error("redact loses the wrapped error")
	}
	s, err := New(Config{Container: "media", Account: "a", Endpoint: "http://127.0.0.1:1/a", SASToken: "sv=1&sig=TOPSECRETSIG"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = s.Stat(ctx, "default/1001/x.wav")
	if err == nil || strings.Contains(err.Error(), "TOPSECRETSIG") {
		t.Errorf("Stat against a closed port = %v", err)
	}
}
