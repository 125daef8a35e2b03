package sipauth

import "testing"

// FuzzParseAuthorization: any header value parses or fails with
// ErrMalformed, never panics, and what parses has every required field.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		`Digest username="1001", realm="example.com", nonce="abc", uri="sip:example.com", response="00", algorithm=MD5`,
		`Digest username="a\"b", realm="x", nonce="n", uri="sip:x", response="ab", qop=auth, nc=00000001, cnonce="c"`,
		`Digest username=`, `Digest ,,,`, `Digest a="\`, `Basic x`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseAuthorization(s)
		if err != nil {
			return
		}
		if c.Username == "" || c.Realm == "" || c.Nonce == "" || c.URI == "" || c.Response == "" {
			t.Fatalf("parsed without a required field: %+v", c)
		}
		_ = Verify(c, "INVITE", "00")
	})
}
