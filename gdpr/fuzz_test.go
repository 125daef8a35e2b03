package gdpr

import (
	"encoding/json"
	"testing"
)

// FuzzGDPRRequestJSON drives a request document (the drop folder's and
// the API's input) through parsing, the echo that the result file is made
// of, and phone normalization: nothing may panic, an accepted document
// must echo to JSON that parses again into the same requests, and a
// normalized number must be a fixed point.
func FuzzGDPRRequestJSON(f *testing.F) {
	for _, s := range []string{
		`{"requests":[{"requestcase":"C-1","type":"FORGET","contacts":[{"phone":"+1 (781) 555-1212"}]}]}`,
		`{"requests":[{"requestcase":17,"type":"EXPORT","accountid":"a","contacts":[{"email":"a@b.c"},{"ipaddr":"10.0.0.1"}]}]}`,
		`{"requests":[{"RequestCase":"x","Type":"forget","Contacts":[{"phone":"0033 1 23 45 67 89","extra":[1,2]}],"result":[{"phone":"+1","response":"SUCCESS","messages":2}]}]}`,
		`{"requests":[]}`,
		`{"requests":null}`,
		`{"requests":[{"contacts":[{}]}]}`,
		`{"requests":[{"contacts":[{"phone":12345}]}]} {}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := ParseDocument(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("an accepted document does not echo: %v", err)
		}
		again, err := ParseDocument(out)
		if err != nil {
			t.Fatalf("the echo %s does not parse: %v", out, err)
		}
		if len(again.Requests) != len(doc.Requests) {
			t.Fatalf("echo has %d requests, want %d", len(again.Requests), len(doc.Requests))
		}
		for i, r := range doc.Requests {
			a := again.Requests[i]
			if a.Type != r.Type || a.RequestCase != r.RequestCase || len(a.Contacts) != len(r.Contacts) {
				t.Fatalf("request %d echoes as %+v, want %+v", i, a, r)
			}
			for j, c := range r.Contacts {
				if a.Contacts[j].Kind != c.Kind || a.Contacts[j].Value != c.Value {
					t.Fatalf("contact %d.%d echoes as %+v, want %+v", i, j, a.Contacts[j], c)
				}
				if e, ok := NormalizePhone(c.Value); ok {
					if e2, ok2 := NormalizePhone(e); !ok2 || e2 != e {
						t.Fatalf("NormalizePhone(%q) = %q, but NormalizePhone(%q) = %q, %v", c.Value, e, e, e2, ok2)
					}
				}
			}
		}
	})
}
