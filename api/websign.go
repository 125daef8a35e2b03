package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Signed media URLs (README, "Web inbox and admin console"): an <audio> or
// <img> element cannot send an Authorization header, so a bearer token asks
// for short-lived links to one message's audio and waveform. A link names its tenant and path and is
// signed with HMAC-SHA256; it grants GET on that path only, for mediaURLTTL.
// Nothing state-changing ever accepts a signature, and no cookie authorizes
// anything, so there is nothing for a cross-site request to ride on.

// mediaURLTTL bounds how long a link works after it was issued (a revoked
// token's links die within it).
const mediaURLTTL = 10 * time.Minute

// urlSigner signs and checks media links.
type urlSigner struct{ key []byte }

// newURLSigner derives the key from the operator token, so that every
// instance behind a load balancer accepts the links of the others; without
// one the key is random (one instance).
func newURLSigner(adminToken string) urlSigner {
	if adminToken == "" {
		k := make([]byte, 32)
		_, _ = rand.Read(k) // crypto/rand never fails on supported platforms
		return urlSigner{key: k}
	}
	m := hmac.New(sha256.New, []byte(adminToken))
	m.Write([]byte("voicemail signed media url v1"))
	return urlSigner{key: m.Sum(nil)}
}

func (u urlSigner) mac(tenant, path string, exp int64) []byte {
	m := hmac.New(sha256.New, u.key)
	m.Write([]byte(tenant + "\x00" + path + "\x00" + strconv.FormatInt(exp, 10)))
	return m.Sum(nil)
}

// sign returns path?tenant=…&exp=…&sig=… valid until now+mediaURLTTL.
func (u urlSigner) sign(tenant, path string, now time.Time) (string, time.Time) {
	exp := now.Add(mediaURLTTL).Truncate(time.Second)
	q := url.Values{}
	q.Set("tenant", tenant)
	q.Set("exp", strconv.FormatInt(exp.Unix(), 10))
	q.Set("sig", base64.RawURLEncoding.EncodeToString(u.mac(tenant, path, exp.Unix())))
	return path + "?" + q.Encode(), exp
}

// verify checks the signature of r (GET only) and returns the tenant.
func (u urlSigner) verify(r *http.Request, now time.Time) (string, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", false
	}
	q := r.URL.Query()
	sig, err := base64.RawURLEncoding.DecodeString(q.Get("sig"))
	if err != nil || len(sig) == 0 {
		return "", false
	}
	exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
	if err != nil || now.Unix() > exp {
		return "", false
	}
	tenant := q.Get("tenant")
	return tenant, hmac.Equal(sig, u.mac(tenant, r.URL.Path, exp))
}

// media registers a GET route that takes a bearer token or a signed link.
// A signed link acts as a user of the path's mailbox, so the handler's own
// checks (s.message) pass for exactly that mailbox and nothing else.
func (s *Server) media(pattern string, h handler) {
	s.routes = append(s.routes, pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		var p principal
		var err error
		if r.Header.Get("Authorization") == "" && r.URL.Query().Has("sig") {
			tenant, ok := s.signer.verify(r, time.Now())
			if !ok {
				err = unauthorized("invalid or expired signed link")
			} else {
				p = principal{kind: kindUser, tenant: tenant, mailbox: r.PathValue("number")}
			}
		} else {
			p, err = s.authenticate(r)
		}
		if err == nil {
			err = h(w, r, p)
		}
		s.finish(w, r, err)
	})
}

type mediaLinks struct {
	Audio     string    `json:"audio"`
	Waveform  string    `json:"waveform"`
	Download  string    `json:"download"`
	ExpiresAt time.Time `json:"expires_at"`
}

// messageLinks issues signed links to one message's audio and waveform,
// with the same authorization as the audio itself.
func (s *Server) messageLinks(w http.ResponseWriter, r *http.Request, p principal) error {
	m, _, err := s.message(r, p)
	if err != nil {
		return err
	}
	base := "/api/v1/mailboxes/" + m.Mailbox + "/messages/" + m.ID
	now := time.Now()
	audio, exp := s.signer.sign(p.tenant, base+"/audio", now)
	wave, _ := s.signer.sign(p.tenant, base+"/waveform.svg", now)
	writeJSON(w, http.StatusOK, mediaLinks{Audio: audio, Waveform: wave, Download: audio, ExpiresAt: exp.UTC()})
	return nil
}

type whoamiJSON struct {
	Kind    string   `json:"kind"`
	Tenant  string   `json:"tenant"`
	Mailbox string   `json:"mailbox,omitempty"`
	Groups  []string `json:"groups,omitempty"`
}

// whoami tells a client what its token is (the web console picks its view;
// the API still checks every request).
func (s *Server) whoami(w http.ResponseWriter, r *http.Request, p principal) error {
	out := whoamiJSON{Kind: p.kind, Tenant: p.tenant, Mailbox: p.mailbox}
	for g := range p.groups {
		out.Groups = append(out.Groups, g)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
