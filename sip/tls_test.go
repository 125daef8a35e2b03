package sip

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func writePair(t *testing.T, dir, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(filepath.Join(dir, "c.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "k.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func servedCN(t *testing.T, c *Certificate) string {
	t.Helper()
	cert, err := c.Config().GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject.CommonName
}

func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	writePair(t, dir, "one")
	var logs bytes.Buffer
	c, err := LoadCertificate(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if cn := servedCN(t, c); cn != "one" {
		t.Fatalf("served %q", cn)
	}
	writePair(t, dir, "two")
	if err := c.Reload(); err != nil || servedCN(t, c) != "two" {
		t.Fatalf("reload: %v, served %q", err, servedCN(t, c))
	}
	_ = os.WriteFile(filepath.Join(dir, "k.pem"), []byte("garbage"), 0o600)
	if err := c.Reload(); err == nil {
		t.Fatal("a broken key reloaded")
	}
	if cn := servedCN(t, c); cn != "two" {
		t.Fatalf("after a failed reload served %q", cn)
	}
	if !strings.Contains(logs.String(), "not reloaded") {
		t.Errorf("failed reload not logged: %s", logs.String())
	}
	if c.Config().MinVersion < tls.VersionTLS12 {
		t.Error("TLS below 1.2 allowed")
	}
	if _, err := LoadCertificate(filepath.Join(dir, "none.pem"), filepath.Join(dir, "k.pem"), slog.Default()); err == nil {
		t.Error("a missing certificate loaded")
	}
}

func TestContactFor(t *testing.T) {
	s := &Server{cfg: Config{PublicIP: net.IPv4(192, 0, 2, 1)}, ports: map[string]int{"udp": 5060, "tls": 5061}}
	cases := []struct{ scheme, transport, want string }{
		{"sip", "UDP", "<sip:voicemail@192.0.2.1:5060>"},
		{"sip", "TLS", "<sip:voicemail@192.0.2.1:5061;transport=tls>"},
		{"sips", "TLS", "<sips:voicemail@192.0.2.1:5061>"},
	}
	for _, c := range cases {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: c.scheme, User: "1001", Host: "h"})
		req.SetTransport(c.transport)
		if got := s.contactFor(req).Value(); got != c.want {
			t.Errorf("%s over %s: Contact %s, want %s", c.scheme, c.transport, got, c.want)
		}
	}
}

func TestRedactKeys(t *testing.T) {
	in := "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20\r\n"
	out := redactKeys(in)
	if strings.Contains(out, key30[:20]) || !strings.Contains(out, "inline:[redacted]|2^20") {
		t.Errorf("redacted: %q", out)
	}
	if clip(in) == in || strings.Contains(clip(in), key30[:20]) {
		t.Errorf("clip leaks the key: %q", clip(in))
	}
}

// TestReofferAndAnswerChecks: an SRTP call cannot fall back to RTP in a
// re-INVITE, and an answer must match our offer.
func TestReofferAndAnswerChecks(t *testing.T) {
	s := &Server{cfg: Config{SRTP: SRTPOptional}}
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "1001", Host: "h"})
	req.SetTransport("TLS")
	sav, _ := ParseOffer([]byte(offerSAVP + "a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\r\n"))
	plain, _ := ParseOffer([]byte(offerPCMU))

	d := &Dialog{s: s}
	if _, err := d.checkReoffer(plain, req); err != nil {
		t.Fatalf("plain re-offer in a plain call: %v", err)
	}
	keys, err := d.srtpFor(sav)
	if err != nil || keys == nil || d.crypto == nil || d.crypto.Tag != 4 {
		t.Fatalf("srtpFor: %v %+v", err, keys)
	}
	if !bytes.Equal(keys.RemoteKey, sav.Crypto.Key) || bytes.Equal(keys.LocalKey, sav.Crypto.Key) {
		t.Fatal("keys: remote must be theirs, local ours")
	}
	first := d.crypto.Key
	if _, err := d.srtpFor(sav); err != nil || !bytes.Equal(d.crypto.Key, first) {
		t.Fatal("our key changed on a re-INVITE of the same suite")
	}
	if _, err := d.checkReoffer(plain, req); err == nil {
		t.Fatal("an SRTP call fell back to plain RTP")
	}
	if _, err := d.checkReoffer(sav, req); err != nil {
		t.Fatalf("SRTP re-offer: %v", err)
	}

	// Our offer (INVITE without SDP, required): the ACK's answer.
	d2 := &Dialog{s: s}
	if err := d2.offerCrypto(); err != nil {
		t.Fatal(err)
	}
	good, _ := ParseOffer([]byte(offerSAVP + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\r\n"))
	wrongTag, _ := ParseOffer([]byte(offerSAVP + "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\r\n"))
	for name, c := range map[string]struct {
		o  *Offer
		ok bool
	}{"matching": {good, true}, "plain": {plain, false}, "other tag": {wrongTag, false}} {
		if err := d2.checkAnswer(c.o); (err == nil) != c.ok {
			t.Errorf("%s answer: %v", name, err)
		}
	}
	if err := (&Dialog{s: s}).checkAnswer(good); err == nil {
		t.Error("an SRTP answer to a plain offer accepted")
	}
}
