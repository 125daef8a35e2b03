// Package smtptest is a real SMTP server (go-smtp) on loopback for tests:
// it records the mails it accepts, can hold its answer to DATA, and takes
// mails apart.
package smtptest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
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

// Mail is a mail the server accepted: its envelope and raw message.
type Mail struct {
	From string
	To   []string
	Raw  []byte
}

// Server is an SMTP server listening on Addr.
type Server struct {
	Addr string

	srv  *smtp.Server
	got  chan struct{} // a wake-up per accepted mail
	data chan struct{} // a signal per DATA command (before any hold)

	mu    sync.Mutex
	mails []Mail
	hold  chan struct{} // when set, the answer to DATA waits until it is closed
}

// Start listens on addr ("" = a free loopback port, 127.0.0.1:0) and
// serves until the test ends (t.Cleanup releases any hold, then closes it).
func Start(t testing.TB, addr string) *Server {
	t.Helper()
	return start(t, addr, false)
}

// StartHeld is Start with the server held from the very first DATA on, as
// if Hold were called before it listens: use it when a client may already
// be retrying against addr.
func StartHeld(t testing.TB, addr string) *Server {
	t.Helper()
	return start(t, addr, true)
}

func start(t testing.TB, addr string, held bool) *Server {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("SMTP server on %s: %v", addr, err)
	}
	s := &Server{Addr: ln.Addr().String(), got: make(chan struct{}, 100), data: make(chan struct{}, 100)}
	if held {
		s.hold = make(chan struct{})
	}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	go s.srv.Serve(ln)
	t.Cleanup(s.close)
	return s
}

func (s *Server) close() {
	s.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
}

// Port is the port of Addr.
func (s *Server) Port() string {
	_, p, _ := net.SplitHostPort(s.Addr)
	return p
}

// Hold makes the answer to the end of DATA wait for Release, from now on
// (a DATA already past its hold check is answered).
func (s *Server) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		s.hold = make(chan struct{})
	}
}

// Release answers the held DATA commands and stops holding. Calling it
// without a hold, or twice, is harmless.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// DataStarted receives a signal per DATA command whose message was read,
// before any hold (buffered: 100 unread signals block further DATA).
func (s *Server) DataStarted() <-chan struct{} { return s.data }

// Mails is a copy of the mails accepted so far, in order.
func (s *Server) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Wait returns the mails once at least n were accepted, and fails the
// test if that takes longer than timeout.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Mail {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if m := s.Mails(); len(m) >= n {
			return m
		}
		select {
		case <-s.got:
		case <-deadline:
			t.Fatalf("the SMTP server got %d mails in %v, want %d", len(s.Mails()), timeout, n)
		}
	}
}

type session struct {
	s    *Server
	from string
	to   []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}
func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.data <- struct{}{}
	x.s.mu.Lock()
	hold := x.s.hold
	x.s.mu.Unlock()
	if hold != nil {
		<-hold
	}
	x.s.mu.Lock()
	x.s.mails = append(x.s.mails, Mail{From: x.from, To: append([]string(nil), x.to...), Raw: b})
	x.s.mu.Unlock()
	select {
	case x.s.got <- struct{}{}:
	default: // Wait has wake-ups pending already and re-reads Mails
	}
	return nil
}

// Parts is a mail taken apart: the body is the text/plain part (or the
// whole body of a single-part mail); Attachment, AttachName and AttachType
// are the last part with a file name, Attachments how many there are.
type Parts struct {
	Header      netmail.Header
	Subject     string
	Body        string
	AttachName  string
	AttachType  string
	Attachment  []byte
	Attachments int
}

// Parse takes a raw mail apart, decoding base64 and quoted-printable parts.
func Parse(t testing.TB, raw []byte) Parts {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse mail: %v\n%s", err, raw)
	}
	p := Parts{Header: msg.Header}
	if p.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		p.Body = string(decode(t, msg.Header.Get("Content-Transfer-Encoding"), msg.Body))
		return p
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data := decode(t, part.Header.Get("Content-Transfer-Encoding"), part)
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		switch {
		case part.FileName() != "":
			p.Attachments++
			p.AttachName, p.AttachType, p.Attachment = part.FileName(), ct, data
		case ct == "text/plain":
			p.Body = string(data)
		}
	}
	return p
}

func decode(t testing.TB, cte string, r io.Reader) []byte {
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
