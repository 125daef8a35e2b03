package api

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/store"
)

// webMessage stores a 1 s 440 Hz WAV message in mailbox n and returns its id.
func webMessage(t *testing.T, f *fixture, n string) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	var buf memFile
	ww, err := media.NewWAVWriter(&buf, media.FormatPCM16)
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, 8000)
	for i := range pcm {
		pcm[i] = int16((i % 18) * 1000)
	}
	if err := ww.Write(pcm); err != nil {
		t.Fatal(err)
	}
	if err := ww.Close(); err != nil {
		t.Fatal(err)
	}
	wav := buf.b
	id := store.NewMessageID()
	key := store.MediaKey("default", n, id)
	if err := f.blobs.Put(key, bytes.NewReader(wav)); err != nil {
		t.Fatal(err)
	}
	m := &store.Message{ID: id, Tenant: "default", Mailbox: n, CallerID: "2002", ReceivedAt: time.Now().UTC(),
		DurationMS: 1000, Size: int64(len(wav)), MediaKey: key}
	if err := f.st.CreateMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	return id, wav
}

func webUser(t *testing.T, f *fixture, n string) string {
	t.Helper()
	res, b := f.do(t, "POST", "/api/v1/mailboxes", token, `{"number":"`+n+`","pin":"1234"}`)
	if res.StatusCode != 201 {
		t.Fatalf("create %s: %d %s", n, res.StatusCode, b)
	}
	res, b = f.do(t, "POST", "/api/v1/login", "", `{"mailbox":"`+n+`","pin":"1234"}`)
	if res.StatusCode != 200 {
		t.Fatalf("login %s: %d %s", n, res.StatusCode, b)
	}
	var tok tokenJSON
	if err := json.Unmarshal(b, &tok); err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

func TestSignedMediaLinks(t *testing.T) {
	f := newFixture(t)
	alice, bob := webUser(t, f, "1001"), webUser(t, f, "1002")
	id, wav := webMessage(t, f, "1001")
	bobID, _ := webMessage(t, f, "1002")
	base := "/api/v1/mailboxes/1001/messages/" + id

	res, b := f.do(t, "GET", base+"/links", alice, "")
	if res.StatusCode != 200 {
		t.Fatalf("links: %d %s", res.StatusCode, b)
	}
	var l mediaLinks
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(l.Audio, alice) || !strings.HasPrefix(l.Audio, base+"/audio?") {
		t.Fatalf("audio link %q", l.Audio)
	}
	if d := time.Until(l.ExpiresAt); d <= 0 || d > mediaURLTTL {
		t.Errorf("expires in %v", d)
	}

	// The links work without a token, Range included.
	res, got := f.do(t, "GET", l.Audio, "", "")
	if res.StatusCode != 200 || !bytes.Equal(got, wav) {
		t.Fatalf("signed audio: %d, %d bytes (want the %d stored)", res.StatusCode, len(got), len(wav))
	}
	res, got = f.do(t, "GET", l.Audio, "", "", "Range", "bytes=44-99")
	if res.StatusCode != 206 || !bytes.Equal(got, wav[44:100]) {
		t.Errorf("signed range: %d %d bytes", res.StatusCode, len(got))
	}
	res, svg := f.do(t, "GET", l.Waveform, "", "")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/svg+xml" || !bytes.Contains(svg, []byte("<path")) {
		t.Fatalf("waveform: %d %q %s", res.StatusCode, res.Header.Get("Content-Type"), svg)
	}
	if !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("waveform CSP %q", res.Header.Get("Content-Security-Policy"))
	}
	res, _ = f.do(t, "GET", l.Waveform, "", "", "If-None-Match", res.Header.Get("ETag"))
	if res.StatusCode != 304 {
		t.Errorf("waveform revalidation: %d", res.StatusCode)
	}
	// A bearer token works for the waveform as for the audio.
	if res, _ = f.do(t, "GET", base+"/waveform.svg", alice, ""); res.StatusCode != 200 {
		t.Errorf("waveform with a bearer token: %d", res.StatusCode)
	}

	// Tampering: another message, another tenant, another route, a late
	// expiry, no signature, a state-changing method.
	u, _ := url.Parse(l.Audio)
	q := u.Query()
	with := func(path string, set ...string) string {
		v := url.Values{}
		for k, x := range q {
			v[k] = x
		}
		for i := 0; i+1 < len(set); i += 2 {
			v.Set(set[i], set[i+1])
		}
		return path + "?" + v.Encode()
	}
	for name, link := range map[string]string{
		"other message":  with("/api/v1/mailboxes/1002/messages/" + bobID + "/audio"),
		"other tenant":   with(u.Path, "tenant", "acme"),
		"longer expiry":  with(u.Path, "exp", "99999999999"),
		"bad signature":  with(u.Path, "sig", "AAAA"),
		"empty sig":      with(u.Path, "sig", ""),
		"message route":  with(base),
		"waveform route": with(base + "/waveform.svg"),
	} {
		res, b := f.do(t, "GET", link, "", "")
		if res.StatusCode != 401 {
			t.Errorf("%s: %d %s", name, res.StatusCode, b)
		}
	}
	for _, m := range []string{"DELETE", "PATCH"} {
		if res, _ := f.do(t, m, with(base), "", ""); res.StatusCode != 401 {
			t.Errorf("%s with a signature: %d", m, res.StatusCode)
		}
	}
	// Expired.
	old, _ := f.api.signer.sign("default", u.Path, time.Now().Add(-2*mediaURLTTL))
	if res, _ := f.do(t, "GET", old, "", ""); res.StatusCode != 401 {
		t.Errorf("expired link: %d", res.StatusCode)
	}
	// Bob may not ask for links to Alice's message.
	if res, _ := f.do(t, "GET", base+"/links", bob, ""); res.StatusCode != 403 {
		t.Errorf("links for another mailbox: %d", res.StatusCode)
	}
	// The message deleted: its link finds nothing.
	if res, _ := f.do(t, "DELETE", base, alice, ""); res.StatusCode != 204 {
		t.Fatalf("delete: %d", res.StatusCode)
	}
	if res, _ := f.do(t, "GET", l.Audio, "", ""); res.StatusCode != 404 {
		t.Errorf("link of a deleted message: %d", res.StatusCode)
	}
}

func TestWhoami(t *testing.T) {
	f := newFixture(t)
	alice := webUser(t, f, "1001")
	for _, tc := range []struct {
		tok, hdr, want string
	}{
		{token, "", `"kind":"operator","tenant":"default"`},
		{token, "acme", `"kind":"operator","tenant":"acme"`},
		{alice, "", `"kind":"user","tenant":"default","mailbox":"1001"`},
	} {
		res, b := f.do(t, "GET", "/api/v1/whoami", tc.tok, "", "X-Tenant", tc.hdr)
		if res.StatusCode != 200 || !strings.Contains(string(b), tc.want) {
			t.Errorf("whoami: %d %s, want %s", res.StatusCode, b, tc.want)
		}
	}
	if res, _ := f.do(t, "GET", "/api/v1/whoami", "", ""); res.StatusCode != 401 {
		t.Errorf("whoami without a token: %d", res.StatusCode)
	}
}

func TestWaveformSVG(t *testing.T) {
	loud := make([]int16, 16000)
	for i := range loud {
		loud[i] = int16(30000 * (1 - 2*(i%2)))
	}
	for name, pcm := range map[string][]int16{"empty": nil, "silence": make([]int16, 8000), "loud": loud, "short": {5, -5, 3}} {
		svg := waveformSVG(pcm)
		if bytes.Contains(svg, []byte("style=")) || bytes.Contains(svg, []byte("<script")) {
			t.Errorf("%s: style or script in %s", name, svg)
		}
		dec := xml.NewDecoder(bytes.NewReader(svg))
		for {
			if _, err := dec.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: not XML: %v", name, err)
			}
		}
		bars := bytes.Count(svg, []byte("M"))
		if want := map[bool]int{true: 0, false: waveformBars}[len(pcm) == 0]; bars != want {
			t.Errorf("%s: %d bars, want %d", name, bars, want)
		}
	}
}

func TestWaveformCacheBound(t *testing.T) {
	c := newWaveformCache()
	for i := 0; i < waveformCacheSize+10; i++ {
		c.put(string(rune('a'+i%26))+strings.Repeat("x", i), []byte{1})
	}
	if len(c.svg) != waveformCacheSize || c.order.Len() != waveformCacheSize {
		t.Errorf("cache holds %d/%d entries, bound %d", len(c.svg), c.order.Len(), waveformCacheSize)
	}
}

// FuzzSignedLink: no query string verifies unless it is the signer's own.
func FuzzSignedLink(f *testing.F) {
	s := newURLSigner("k")
	good, _ := s.sign("default", "/api/v1/mailboxes/1/messages/x/audio", time.Now())
	f.Add(good)
	f.Add("/api/v1/mailboxes/1/messages/x/audio?tenant=default&exp=1&sig=AA")
	f.Fuzz(func(t *testing.T, link string) {
		r := httptest.NewRequest("GET", "/", nil)
		u, err := url.Parse(link)
		if err != nil {
			return
		}
		r.URL = u
		tenant, ok := s.verify(r, time.Now())
		if !ok {
			return
		}
		want, _ := s.sign(tenant, u.Path, time.Unix(mustInt(u.Query().Get("exp")), 0).Add(-mediaURLTTL))
		if w, _ := url.Parse(want); w.Query().Get("sig") != u.Query().Get("sig") {
			t.Fatalf("%q verified with a signature the signer did not make", link)
		}
	})
}

func mustInt(s string) int64 {
	var n int64
	for _, c := range s {
		n = n*10 + int64(c-'0')
	}
	return n
}

var _ http.Handler = (*Server)(nil)
