package main

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/vmserver/voicemail/config"
)

func TestMailConfig(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	config.Register(fs)
	if err := fs.Parse([]string{"--smtp-host", "mx.example.com", "--smtp-tls", "tls", "--smtp-from", "vm@example.com",
		"--http-listen", "127.0.0.1:9090", "--smtp-subject-template", "VM {{.MailboxNumber}}", "--smtp-retry", "5s"}); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(fs, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	mc := mailConfig(c)
	if mc.Host != "mx.example.com" || mc.Port != 587 || mc.TLS != "tls" || mc.From != "vm@example.com" ||
		mc.PublicURL != "http://127.0.0.1:9090" || mc.SubjectTemplate != "VM {{.MailboxNumber}}" || mc.BodyTemplate != "" ||
		mc.RetryBase != 5*time.Second || mc.RetryMax != time.Hour {
		t.Errorf("mailConfig = %+v", mc)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	config.Register(fs)
	_ = fs.Parse([]string{"--http-public-url", "https://vm.example.com/", "--smtp-retry", "2h"})
	if _, err := config.Load(fs, func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), "smtp.retry") {
		t.Errorf("smtp.retry longer than smtp.retry_max: %v", err)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	config.Register(fs)
	_ = fs.Parse([]string{"--http-public-url", "https://vm.example.com/"})
	if c, err := config.Load(fs, func(string) (string, bool) { return "", false }); err != nil {
		t.Error(err)
	} else if c.HTTPPublicURL != "https://vm.example.com" {
		t.Errorf("http.public_url = %q", c.HTTPPublicURL)
	}
}
