package mail

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// smtpd is a real SMTP server (go-smtp) on loopback that records the mails
// it accepts.
type smtpd struct {
	srv  *smtp.Server
	addr string

	mu    sync.Mutex
	mails []received
	got   chan struct{} // signalled on every accepted mail
	gate  chan struct{} // when set, DATA waits for it before answering
	inDat chan struct{} // signalled when a DATA command arrives
}

type received struct {
	from string
	to   []string
	data []byte
}

// startSMTPD listens on addr ("" = a free loopback port).
func startSMTPD(t *testing.T, addr string) *smtpd {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	d := &smtpd{addr: ln.Addr().String(), got: make(chan struct{}, 100), inDat: make(chan struct{}, 100)}
	d.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{d: d}, nil }))
	d.srv.Domain = "localhost"
	d.srv.AllowInsecureAuth = true
	d.srv.ReadTimeout = 30 * time.Second
	d.srv.WriteTimeout = 30 * time.Second
	go d.srv.Serve(ln)
	t.Cleanup(d.close)
	return d
}

func (d *smtpd) close() {
	d.mu.Lock()
	if d.gate != nil {
		select {
		case <-d.gate:
		default:
			close(d.gate)
		}
	}
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.srv.Shutdown(ctx); err != nil {
		d.srv.Close()
	}
}

func (d *smtpd) port() string { _, p, _ := net.SplitHostPort(d.addr); return p }

func (d *smtpd) received() []received {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]received(nil), d.mails...)
}

// wait returns once n mails arrived.
func (d *smtpd) wait(t *testing.T, n int, timeout time.Duration) []received {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if m := d.received(); len(m) >= n {
			return m
		}
		select {
		case <-d.got:
		case <-deadline:
			t.Fatalf("%d mails after %v, want %d", len(d.received()), timeout, n)
		}
	}
}

type smtpSession struct {
	d    *smtpd
	from string
	to   []string
}

func (s *smtpSession) Reset()        { s.from, s.to = "", nil }
func (s *smtpSession) Logout() error { return nil }
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.d.inDat <- struct{}{}
	s.d.mu.Lock()
	gate := s.d.gate
	s.d.mu.Unlock()
	if gate != nil {
		<-gate
	}
	s.d.mu.Lock()
	s.d.mails = append(s.d.mails, received{from: s.from, to: append([]string(nil), s.to...), data: b})
	s.d.mu.Unlock()
	s.d.got <- struct{}{}
	return nil
}

// parsed is a received mail taken apart.
type parsed struct {
	header     netmail.Header
	subject    string
	body       string
	attachName string
	attachType string
	attach     []byte
}

func parseMail(t *testing.T, raw []byte) parsed {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse mail: %v\n%s", err, raw)
	}
	p := parsed{header: msg.Header}
	dec := new(mime.WordDecoder)
	if p.subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		p.body = string(decodePart(t, msg.Header.Get("Content-Transfer-Encoding"), msg.Body))
		return p
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data := decodePart(t, part.Header.Get("Content-Transfer-Encoding"), part)
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if part.FileName() != "" {
			p.attachName, p.attachType, p.attach = part.FileName(), ct, data
		} else if ct == "text/plain" {
			p.body = string(data)
		}
	}
	return p
}

func decodePart(t *testing.T, cte string, r io.Reader) []byte {
	t.Helper()
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode %s part: %v", cte, err)
	}
	return b
}
