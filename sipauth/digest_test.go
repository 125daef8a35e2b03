package sipauth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// RFC 7616 §3.9.1: user Mufasa, password "Circle of Life".
const (
	rfcUser   = "Mufasa"
	rfcRealm  = "http-auth@example.org"
	rfcPass   = "Circle of Life"
	rfcNonce  = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
	rfcCNonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
	rfcURI    = "/dir/index.html"
)

func TestRFC7616Example(t *testing.T) {
	for _, tc := range []struct{ alg, want string }{
		{MD5, "8ca523f5e9506fed4657c9700eebdbec"},
		{SHA256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			ha1, err := HA1(tc.alg, rfcUser, rfcRealm, rfcPass)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Response(tc.alg, ha1, "GET", rfcURI, rfcNonce, "00000001", rfcCNonce, "auth")
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("response = %s, want %s", got, tc.want)
			}
			hdr := `Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=` + tc.alg +
				`, nonce="` + rfcNonce + `", nc=00000001, cnonce="` + rfcCNonce + `", qop=auth, response="` + tc.want +
				`", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`
			c, err := ParseAuthorization(hdr)
			if err != nil {
				t.Fatal(err)
			}
			if !Verify(c, "GET", ha1) {
				t.Fatal("Verify refused the RFC example")
			}
			if Verify(c, "POST", ha1) {
				t.Fatal("Verify accepted another method")
			}
			wrong, _ := HA1(tc.alg, rfcUser, rfcRealm, "Circle of life")
			if Verify(c, "GET", wrong) {
				t.Fatal("Verify accepted another password")
			}
		})
	}
}

func TestResponseWithoutQOP(t *testing.T) {
	// RFC 2617 §3.5 style (no qop) as older SIP phones send.
	ha1, _ := HA1(MD5, "1001", "example.com", "s3cret")
	r, err := Response(MD5, ha1, "REGISTER", "sip:example.com", "abc", "", "", "")
	if err != nil || len(r) != 32 {
		t.Fatalf("Response = %q, %v", r, err)
	}
	c := Credentials{Username: "1001", Realm: "example.com", Nonce: "abc", URI: "sip:example.com", Response: r}
	if !Verify(c, "REGISTER", ha1) {
		t.Fatal("no-qop response refused")
	}
}

func TestParseAuthorization(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
		want     Credentials
	}{
		{"minimal md5", `Digest username="1001",realm="x",nonce="n",uri="sip:x",response="AB"`, true,
			Credentials{Username: "1001", Realm: "x", Nonce: "n", URI: "sip:x", Response: "ab"}},
		{"lower scheme and tokens", `digest username=1001, realm=x, nonce=n, uri="sip:x", response=ab, algorithm=sha-256`, true,
			Credentials{Username: "1001", Realm: "x", Nonce: "n", URI: "sip:x", Response: "ab", Algorithm: "sha-256"}},
		{"escaped quote", `Digest username="a\"b", realm="x", nonce="n", uri="sip:x", response="ab"`, true,
			Credentials{Username: `a"b`, Realm: "x", Nonce: "n", URI: "sip:x", Response: "ab"}},
		{"qop", `Digest username="u", realm="x", nonce="n", uri="sip:x", response="ab", qop=auth, nc=00000001, cnonce="c"`, true,
			Credentials{Username: "u", Realm: "x", Nonce: "n", URI: "sip:x", Response: "ab", QOP: "auth", NC: "00000001", CNonce: "c"}},
		{"basic", `Basic dXNlcjpwYXNz`, false, Credentials{}},
		{"no response", `Digest username="u", realm="x", nonce="n", uri="sip:x"`, false, Credentials{}},
		{"qop without cnonce", `Digest username="u", realm="x", nonce="n", uri="sip:x", response="ab", qop=auth`, false, Credentials{}},
		{"auth-int", `Digest username="u", realm="x", nonce="n", uri="sip:x", response="ab", qop=auth-int, nc=1, cnonce=c`, false, Credentials{}},
		{"unknown algorithm", `Digest username="u", realm="x", nonce="n", uri="sip:x", response="ab", algorithm=SHA-512-256`, false, Credentials{}},
		{"unterminated", `Digest username="u, realm="x`, false, Credentials{}},
		{"duplicate", `Digest username="u", username="v", realm="x", nonce="n", uri="sip:x", response="ab"`, false, Credentials{}},
		{"no value", `Digest username`, false, Credentials{}},
		{"empty", ``, false, Credentials{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAuthorization(tc.in)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, not ErrMalformed", err)
			}
			if tc.ok && got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestChallenge(t *testing.T) {
	got := Challenge(`ex"ample`, "NONCE", SHA256, true)
	want := `Digest realm="ex\"ample", nonce="NONCE", algorithm=SHA-256, qop="auth", stale=true`
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	if strings.Contains(Challenge("r", "n", MD5, false), "stale") {
		t.Fatal("stale on a fresh challenge")
	}
}

func TestNonces(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	a := NewNonces(DeriveKey([]byte("cluster secret")), 5*time.Minute)
	b := NewNonces(DeriveKey([]byte("cluster secret")), 5*time.Minute) // another instance
	other := NewNonces(DeriveKey([]byte("another secret")), 5*time.Minute)
	n := a.Issue(now, "192.0.2.1")
	if err := b.Check(n, now.Add(time.Minute), "192.0.2.1"); err != nil {
		t.Fatalf("another instance refused the nonce: %v", err)
	}
	if err := a.Check(n, now, "192.0.2.2"); !errors.Is(err, ErrBadNonce) {
		t.Fatalf("nonce from another address: %v", err)
	}
	if err := other.Check(n, now, "192.0.2.1"); !errors.Is(err, ErrBadNonce) {
		t.Fatalf("nonce under another key: %v", err)
	}
	if err := a.Check(n, now.Add(6*time.Minute), "192.0.2.1"); !errors.Is(err, ErrStale) {
		t.Fatalf("expired nonce: %v", err)
	}
	tampered := []byte(n)
	tampered[2] ^= 1
	if err := a.Check(string(tampered), now, "192.0.2.1"); !errors.Is(err, ErrBadNonce) {
		t.Fatalf("tampered nonce: %v", err)
	}
	for _, bad := range []string{"", "!!!", "AAAA"} {
		if err := a.Check(bad, now, "192.0.2.1"); !errors.Is(err, ErrBadNonce) {
			t.Fatalf("Check(%q) = %v", bad, err)
		}
	}
	if n2 := a.Issue(now, "192.0.2.1"); n2 == n {
		t.Fatal("two nonces alike")
	}
}
