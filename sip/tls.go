package sip

// SIP over TLS (RFC 3261 §26, RFC 5630): the certificate of tls:
// listeners, reloaded without a restart, and the Contact we give on a TLS
// connection. docs/sip.md.

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
)

// Certificate serves the TLS certificate of the SIP listeners. Reload
// reads the files again (on SIGHUP): new connections get the new
// certificate, established ones keep theirs; a new pair that does not
// load keeps the old one.
type Certificate struct {
	certFile, keyFile string
	log               *slog.Logger
	cur               atomic.Pointer[tls.Certificate]
}

// LoadCertificate reads a PEM certificate chain and its key.
func LoadCertificate(certFile, keyFile string, log *slog.Logger) (*Certificate, error) {
	c := &Certificate{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Certificate) load() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("sip: tls certificate %s / key %s: %w", c.certFile, c.keyFile, err)
	}
	c.cur.Store(&pair)
	return nil
}

// Reload reads the files again; on error the current certificate stays
// and the error is logged and returned.
func (c *Certificate) Reload() error {
	if err := c.load(); err != nil {
		c.log.Error("sip: tls certificate not reloaded; keeping the current one", "err", err)
		return err
	}
	leaf := c.cur.Load().Leaf
	attrs := []any{"cert", c.certFile}
	if leaf != nil {
		attrs = append(attrs, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
	}
	c.log.Info("sip: tls certificate reloaded", attrs...)
	return nil
}

// Config is the server tls.Config: TLS 1.2 or later, the certificate
// looked up per handshake.
func (c *Certificate) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cur.Load(), nil
		},
	}
}

// contactFor is our Contact in a response to req, or in the requests of
// the dialog it starts: a sips: Request-URI gets a sips: Contact
// (RFC 5630 §4.1: a SIPS dialog keeps TLS end to end), a request over TLS
// ;transport=tls, others as Contact.
func (s *Server) contactFor(req *sip.Request) *sip.ContactHeader {
	c := s.Contact(req.Transport())
	if strings.EqualFold(req.Recipient.Scheme, "sips") && strings.EqualFold(req.Transport(), "tls") {
		c.Address.Scheme = "sips"
		c.Address.UriParams.Remove("transport")
	}
	return c
}
