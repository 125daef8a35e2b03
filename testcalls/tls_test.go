package testcalls

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/siptest"
)

// testCert writes a self-signed certificate for 127.0.0.1 named cn to
// dir/cert.pem and dir/key.pem and returns it.
func testCert(t *testing.T, dir, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Replace both files by rename, as a certificate renewal does.
	for name, block := range map[string]*pem.Block{"cert.pem": {Type: "CERTIFICATE", Bytes: der}, "key.pem": {Type: "EC PRIVATE KEY", Bytes: kb}} {
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// tlsServer starts a server with a UDP and a TLS SIP listener on fresh
// ports and the certificate in certDir.
func tlsServer(t *testing.T, certDir string, extra ...string) (s *server, udpAddr, tlsAddr string) {
	t.Helper()
	udp, tlsPort := freePort(t), freePort(t)
	args := append([]string{
		"--sip-listen", fmt.Sprintf("udp:127.0.0.1:%d,tls:127.0.0.1:%d", udp, tlsPort),
		"--sip-tls-cert", filepath.Join(certDir, "cert.pem"),
		"--sip-tls-key", filepath.Join(certDir, "key.pem"),
	}, extra...)
	s = depositServer(t, args...)
	return s, fmt.Sprintf("127.0.0.1:%d", udp), fmt.Sprintf("127.0.0.1:%d", tlsPort)
}

func trusting(certs ...*x509.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// TestTLSSRTPDeposit: with media.srtp required, a deposit over TLS with
// SRTP, in each SDES suite, is stored sample for sample as sent; every RTP
// packet the server sent authenticates with the key of its answer and
// none carried its payload in clear; a plain RTP offer over TLS and an
// SRTP offer over UDP (keys in clear) get 488.
func TestTLSSRTPDeposit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert := testCert(t, dir, "voicemail-test")
	s, udpAddr, tlsAddr := tlsServer(t, dir, "--media-srtp", "required")
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	// The greeting and instructions take ~5.5-6 s before the beep: 10 s of
	// audio leave ~4 s recorded (min_seconds is 2).
	sent := source[:10*8000]
	for i, suite := range []string{"AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_32"} {
		scheme := "sip"
		if i == 1 {
			scheme = "sips" // a sips: Request-URI over TLS
		}
		c, err := siptest.Dial(ctx, siptest.Config{
			Server: tlsAddr, RequestURI: fmt.Sprintf("%s:1002@%s", scheme, tlsAddr),
			TLS: trusting(cert), SRTP: suite, Codecs: []uint8{siptest.PCMU},
		})
		if err != nil {
			t.Fatalf("%s: %v", suite, err)
		}
		if c.Status() != 200 {
			c.Close()
			t.Fatalf("%s: INVITE over TLS answered %d %s", suite, c.Status(), c.Final().Reason)
		}
		contact := c.Final().Get("Contact")
		if (scheme == "sips" && !strings.Contains(contact, "sips:")) || (scheme == "sip" && !strings.Contains(contact, "transport=tls")) {
			t.Errorf("%s: Contact %q for a %s: Request-URI over TLS", suite, contact, scheme)
		}
		if err := c.SendAudio(ctx, sent); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if r, err := c.Bye(ctx); err != nil || r == nil || r.StatusCode != 200 {
			t.Fatalf("%s: BYE: %v %v", suite, r, err)
		}
		st := c.SRTPStats()
		rx := c.Received()
		c.Close()
		t.Logf("%s: RTP from the server: %+v; %d samples decrypted", suite, st, len(rx))
		if st.Authentic < 25 || st.Failed != 0 || st.Clear != 0 {
			t.Errorf("%s: the server's RTP: %d packets authentic, %d not, %d with the payload in clear", suite, st.Authentic, st.Failed, st.Clear)
		}
		// What decrypts is the greeting (1400 Hz), not noise.
		if len(rx) < 4000 {
			t.Fatalf("%s: decrypted only %d samples", suite, len(rx))
		}
		if w := rx[400:4000]; siptest.Goertzel(w, unavailableHz) < 10*siptest.Goertzel(w, busyHz) {
			t.Errorf("%s: the decrypted audio is not the greeting", suite)
		}
		rec := newestRecording(t, s, "1002", i+1)
		checkExactSuffix(t, rec.w.samples, siptest.PCMU, len(sent))
	}

	// An INVITE without SDP: in required mode our offer in the 200 is
	// RTP/SAVP; the caller's answer in the ACK picks its key, and the
	// server's media authenticates with the key of its offer.
	c, err := siptest.Dial(ctx, siptest.Config{Server: tlsAddr, RequestURI: "sip:1001@" + tlsAddr,
		TLS: trusting(cert), SRTP: "AES_CM_128_HMAC_SHA1_80", NoSDP: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Status() != 200 || !strings.Contains(string(c.Final().Body), "RTP/SAVP") {
		t.Fatalf("INVITE without SDP: %d, offer\n%s", c.Status(), c.Final().Body)
	}
	waitFor(t, "SRTP from the server after our answer", 10*time.Second, func() bool { return c.SRTPStats().Authentic >= 10 })
	if st := c.SRTPStats(); st.Clear != 0 {
		t.Errorf("offer in the 200: %+v", st)
	}
	if _, err := c.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()

	// Refused: plain RTP in required mode, SDES keys over UDP.
	for _, tc := range []struct {
		name   string
		cfg    siptest.Config
		reason string
	}{
		{"rtp over tls", siptest.Config{Server: tlsAddr, RequestURI: "sip:1002@" + tlsAddr, TLS: trusting(cert)}, "SRTP is required"},
		{"srtp over udp", siptest.Config{Server: udpAddr, RequestURI: "sip:1002@" + udpAddr, SRTP: "AES_CM_128_HMAC_SHA1_80"}, "only over TLS"},
	} {
		c, err := siptest.Dial(ctx, tc.cfg)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.Status() != 488 || !strings.Contains(c.Final().Get("Warning"), tc.reason) {
			t.Errorf("%s: %d, Warning %q; want 488 saying %q", tc.name, c.Status(), c.Final().Get("Warning"), tc.reason)
		}
		c.Close()
	}
	if n := len(s.messages(t, "1002")); n != 3 {
		t.Errorf("1002 has %d messages, want 3", n)
	}
	if strings.Contains(s.log.String(), "inline:") {
		t.Error("an SDES key is in the server's log")
	}
}

// peerCN is the certificate name a new TLS connection to addr gets.
func peerCN(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // only the name is looked at
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestTLSCertificateReload: SIGHUP serves a renewed certificate to new
// connections, a connection made before goes on working, a broken pair
// keeps the current certificate; a call over the new certificate ends
// with the server's BYE on the caller's own TLS connection.
func TestTLSCertificateReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := testCert(t, dir, "voicemail-old")
	s, _, tlsAddr := tlsServer(t, dir, "--recording-max-seconds", "3")
	if cn := peerCN(t, tlsAddr); cn != "voicemail-old" {
		t.Fatalf("served %q before the reload", cn)
	}
	before, err := tls.Dial("tcp", tlsAddr, trusting(old))
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()

	renewed := testCert(t, dir, "voicemail-new")
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the renewed certificate", 10*time.Second, func() bool { return peerCN(t, tlsAddr) == "voicemail-new" })

	// The connection made before the reload still carries SIP.
	opts := "OPTIONS sip:voicemail@" + tlsAddr + " SIP/2.0\r\n" +
		"Via: SIP/2.0/TLS " + before.LocalAddr().String() + ";branch=z9hG4bK" + siptest.RandHex(8) + "\r\n" +
		"From: <sip:probe@127.0.0.1>;tag=" + siptest.RandHex(4) + "\r\nTo: <sip:voicemail@127.0.0.1>\r\n" +
		"Call-ID: " + siptest.RandHex(8) + "\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	_ = before.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := before.Write([]byte(opts)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(before).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SIP/2.0 200") {
		t.Fatalf("OPTIONS on the connection from before the reload: %q %v", line, err)
	}

	// A broken pair is refused and the renewed certificate stays.
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed reload logged", 10*time.Second, func() bool { return strings.Contains(s.log.String(), "not reloaded") })
	if cn := peerCN(t, tlsAddr); cn != "voicemail-new" {
		t.Fatalf("after a broken reload the server serves %q", cn)
	}

	// A call trusting only the renewed certificate; the recording stops at
	// max_seconds and the server hangs up: its BYE can only come over the
	// connection the caller opened (siptest listens on no TLS port).
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c, err := siptest.Dial(ctx, siptest.Config{Server: tlsAddr, RequestURI: "sip:1001@" + tlsAddr,
		TLS: trusting(renewed), SRTP: "AES_CM_128_HMAC_SHA1_80"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Status() != 200 {
		t.Fatalf("INVITE answered %d", c.Status())
	}
	go func() { _ = c.SendAudio(ctx, source) }()
	waitEnded(t, c, 30*time.Second)
	if st := c.SRTPStats(); st.Authentic == 0 || st.Failed != 0 {
		t.Errorf("the server's RTP: %+v", st)
	}
	newestRecording(t, s, "1001", 1)
}

// readSIPStream reads one message framed by Content-Length from a stream.
func readSIPStream(r *bufio.Reader) (string, error) {
	var head strings.Builder
	length := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return head.String(), err
		}
		if strings.TrimSpace(line) == "" {
			if head.Len() == 0 {
				continue
			}
			break
		}
		head.WriteString(line)
		if name, val, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "content-length") {
			fmt.Sscan(strings.TrimSpace(val), &length)
		}
	}
	body := make([]byte, length)
	_, err := io.ReadFull(r, body)
	return head.String() + "\r\n" + string(body), err
}

// TestTLSSubscribeNotify: a SUBSCRIBE over TLS is answered, and its NOTIFY
// comes back over the subscriber's own TLS connection.
func TestTLSSubscribeNotify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert := testCert(t, dir, "voicemail-test")
	_, _, tlsAddr := tlsServer(t, dir)
	conn, err := tls.Dial("tcp", tlsAddr, trusting(cert))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	local := conn.LocalAddr().String()
	sub := "SUBSCRIBE sips:1001@" + tlsAddr + " SIP/2.0\r\n" +
		"Via: SIP/2.0/TLS " + local + ";branch=z9hG4bK" + siptest.RandHex(8) + ";rport\r\n" +
		"From: <sips:1001@127.0.0.1>;tag=" + siptest.RandHex(4) + "\r\nTo: <sips:1001@127.0.0.1>\r\n" +
		"Call-ID: " + siptest.RandHex(8) + "@tls\r\nCSeq: 1 SUBSCRIBE\r\nMax-Forwards: 70\r\n" +
		"Contact: <sips:1001@" + local + ">\r\nEvent: message-summary\r\nExpires: 60\r\n" +
		"Accept: application/simple-message-summary\r\nContent-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(sub)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	var answered, notified bool
	for !answered || !notified {
		m, err := readSIPStream(r)
		if err != nil {
			t.Fatalf("reading over TLS (answered %v, notified %v): %v", answered, notified, err)
		}
		first, _, _ := strings.Cut(m, "\r\n")
		switch {
		case strings.HasPrefix(first, "SIP/2.0 2"):
			answered = true
		case strings.HasPrefix(first, "SIP/2.0 "):
			t.Fatalf("SUBSCRIBE over TLS answered %q", first)
		case strings.HasPrefix(first, "NOTIFY "):
			if !strings.Contains(m, "Messages-Waiting") {
				t.Fatalf("NOTIFY without a message summary:\n%s", m)
			}
			notified = true
			// 200 to the NOTIFY: its Via, From, To, Call-ID and CSeq.
			var resp strings.Builder
			resp.WriteString("SIP/2.0 200 OK\r\n")
			for _, line := range strings.Split(m, "\r\n") {
				name, _, _ := strings.Cut(line, ":")
				switch strings.ToLower(strings.TrimSpace(name)) {
				case "via", "v", "from", "f", "to", "t", "call-id", "i", "cseq":
					resp.WriteString(line + "\r\n")
				}
			}
			resp.WriteString("Content-Length: 0\r\n\r\n")
			if _, err := conn.Write([]byte(resp.String())); err != nil {
				t.Fatal(err)
			}
		}
	}
}
