package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func TestBounds(t *testing.T) {
	f := newFixture(t)
	for _, n := range []string{"1001", "1002"} {
		if res, b := f.do(t, "POST", "/api/v1/mailboxes", token, `{"number":"`+n+`"}`); res.StatusCode != 201 {
			t.Fatalf("create %s: %d %s", n, res.StatusCode, b)
		}
	}
	if res, b := f.do(t, "POST", "/api/v1/mailboxes", token, `{"number":"8000","type":"group","members":["1001"]}`); res.StatusCode != 201 {
		t.Fatalf("create group: %d %s", res.StatusCode, b)
	}
	many := make([]string, 501)
	for i := range many {
		many[i] = fmt.Sprint(10000 + i)
	}
	manyJSON, _ := json.Marshal(many)
	cases := []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"huge max_seconds", "PATCH", "/api/v1/mailboxes/1001", `{"max_seconds":9300000000}`, 400, "max_seconds"},
		{"max_seconds over an hour", "PATCH", "/api/v1/mailboxes/1001", `{"max_seconds":3601}`, 400, "max_seconds"},
		{"negative max_seconds", "PATCH", "/api/v1/mailboxes/1001", `{"max_seconds":-1}`, 400, "max_seconds"},
		{"float max_seconds", "PATCH", "/api/v1/mailboxes/1001", `{"max_seconds":1e10}`, 400, "max_seconds"},
		{"huge max_messages", "PATCH", "/api/v1/mailboxes/1001", `{"max_messages":100001}`, 400, "max_messages"},
		{"huge retention", "PATCH", "/api/v1/mailboxes/1001", `{"retention_days":36501}`, 400, "retention_days"},
		{"long name", "PATCH", "/api/v1/mailboxes/1001", `{"name":"` + strings.Repeat("a", 129) + `"}`, 400, "name"},
		{"long timezone", "PATCH", "/api/v1/mailboxes/1001", `{"timezone":"` + strings.Repeat("a", 65) + `"}`, 400, "timezone"},
		{"duplicate mwi target", "PATCH", "/api/v1/mailboxes/1001", `{"mwi_targets":["sip:a@b","sip:a@b"]}`, 400, "mwi_targets"},
		{"duplicate email", "PATCH", "/api/v1/mailboxes/1001", `{"email":"a@example.com, A@example.com"}`, 400, "email"},
		{"duplicate members", "PATCH", "/api/v1/mailboxes/8000", `{"members":["1001","1002","1001"]}`, 400, "members"},
		{"too many members", "PATCH", "/api/v1/mailboxes/8000", `{"members":` + string(manyJSON) + `}`, 400, "members"},
		{"duplicate webhook events", "POST", "/api/v1/webhooks", `{"url":"https://93.184.215.14/h","events":["message_created","message_created"]}`, 400, "events"},
		{"long webhook secret", "POST", "/api/v1/webhooks", `{"url":"https://93.184.215.14/h","secret":"` + strings.Repeat("s", 257) + `"}`, 400, "secret"},
		{"long webhook url", "POST", "/api/v1/webhooks", `{"url":"https://93.184.215.14/` + strings.Repeat("u", 2048) + `"}`, 400, "url"},
		{"duplicate domains", "POST", "/api/v1/tenants", `{"name":"t1","domains":["a.example","A.example"]}`, 400, "domains"},
		{"limit 0", "GET", "/api/v1/mailboxes?limit=0", "", 400, "limit"},
		{"limit huge", "GET", "/api/v1/mailboxes?limit=99999999999999999999", "", 400, "limit"},
		{"long cursor", "GET", "/api/v1/mailboxes?cursor=" + strings.Repeat("c", 129), "", 400, "cursor"},
		{"garbage tenant", "GET", "/api/v1/mailboxes?tenant=garbage", "", 404, ""},
		{"invalid tenant", "GET", "/api/v1/mailboxes?tenant=%2e%2e%2f", "", 400, "tenant"},
		{"garbage X-Tenant", "GET", "/api/v1/mailboxes", "", 404, ""},
	}
	for _, c := range cases {
		var hdr []string
		if c.name == "garbage X-Tenant" {
			hdr = []string{"X-Tenant", "nope"}
		}
		res, b := f.do(t, c.method, c.path, token, c.body, hdr...)
		var e errBody
		if err := json.Unmarshal(b, &e); err != nil || res.StatusCode != c.status || e.Error.Field != c.field {
			t.Errorf("%s: %d %s (want %d field %q)", c.name, res.StatusCode, b, c.status, c.field)
		}
	}
	// The edges themselves are accepted.
	for _, body := range []string{`{"max_seconds":3600,"max_messages":100000,"retention_days":36500}`, `{"max_seconds":0}`} {
		if res, b := f.do(t, "PATCH", "/api/v1/mailboxes/1001", token, body); res.StatusCode != 200 {
			t.Errorf("PATCH %s: %d %s", body, res.StatusCode, b)
		}
	}
	if res, b := f.do(t, "GET", "/api/v1/mailboxes?tenant=acme", token, ""); res.StatusCode != 200 {
		t.Errorf("existing tenant: %d %s", res.StatusCode, b)
	}
	mb, err := f.st.GetMailbox(t.Context(), "default", "8000")
	if err != nil || len(mb.Members) != 1 {
		t.Errorf("group changed by refused PATCHes: %+v %v", mb, err)
	}
}

// TestRangeRFC9110 checks every edge of RFC 9110 §14.1.1/§14.2 on the
// served audio path.
func TestRangeRFC9110(t *testing.T) {
	body := []byte("0123456789")
	cases := []struct {
		rng          string
		status       int
		want         string // body of a 206/200
		contentRange string
	}{
		{"bytes=-0", 416, "", "bytes */10"},
		{"bytes=10-", 416, "", "bytes */10"},
		{"bytes=10-20", 416, "", "bytes */10"},
		{"bytes=5-2", 416, "", "bytes */10"},
		{"bytes=", 416, "", "bytes */10"},
		{"bytes=,", 416, "", "bytes */10"},
		{"bytes=+1-2", 416, "", "bytes */10"},
		{"bytes=a-b", 416, "", "bytes */10"},
		{"bytes=1", 416, "", "bytes */10"},
		{"bytes=0-0", 206, "0", "bytes 0-0/10"},
		{"bytes=-1", 206, "9", "bytes 9-9/10"},
		{"bytes=-20", 206, "0123456789", "bytes 0-9/10"},
		{"bytes=8-", 206, "89", "bytes 8-9/10"},
		{"bytes=8-100", 206, "89", "bytes 8-9/10"},
		{"bytes=99999999999999999999999-", 416, "", "bytes */10"},
		{"BYTES=2-3", 206, "23", "bytes 2-3/10"},
		{"bytes= 2-3 ,", 206, "23", "bytes 2-3/10"},
		{"bytes=20-30,2-3", 206, "23", "bytes 2-3/10"},
		{"bytes=-0,2-3", 206, "23", "bytes 2-3/10"},
		{"items=0-1", 200, "0123456789", ""},
		{"garbage", 200, "0123456789", ""},
		{"bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8,9-9,0-0,1-1,2-2,3-3,4-4,5-5,6-6", 200, "0123456789", ""},
	}
	for _, c := range cases {
		req := httptest.NewRequest("GET", "/a.wav", nil)
		req.Header.Set("Range", c.rng)
		rec := httptest.NewRecorder()
		serveRanged(rec, req, "a.wav", time.Time{}, bytes.NewReader(body))
		if rec.Code != c.status || rec.Header().Get("Content-Range") != c.contentRange {
			t.Errorf("Range %q: %d Content-Range %q, want %d %q", c.rng, rec.Code, rec.Header().Get("Content-Range"), c.status, c.contentRange)
			continue
		}
		if c.status != 416 && rec.Body.String() != c.want {
			t.Errorf("Range %q: body %q, want %q", c.rng, rec.Body.String(), c.want)
		}
	}
	// An empty representation satisfies no range.
	req := httptest.NewRequest("GET", "/a.wav", nil)
	req.Header.Set("Range", "bytes=0-")
	rec := httptest.NewRecorder()
	serveRanged(rec, req, "a.wav", time.Time{}, bytes.NewReader(nil))
	if rec.Code != 416 {
		t.Errorf("empty body: %d", rec.Code)
	}
	// If-Range that does not match: the whole body, whatever the range.
	mod := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	req = httptest.NewRequest("GET", "/a.wav", nil)
	req.Header.Set("Range", "bytes=-0")
	req.Header.Set("If-Range", mod.Add(-time.Hour).Format(http.TimeFormat))
	rec = httptest.NewRecorder()
	serveRanged(rec, req, "a.wav", mod, bytes.NewReader(body))
	if rec.Code != 200 || rec.Body.String() != string(body) {
		t.Errorf("stale If-Range: %d %q", rec.Code, rec.Body.String())
	}
}

// TestLimitsDocumented: docs/api-limits.md lists every limit of Limits()
// as a table row "| field | kind | min | max |".
func TestLimitsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/api-limits.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range Limits() {
		row := fmt.Sprintf("| `%s` | %s | %d | %d |", l.Field, l.Kind, l.Min, l.Max)
		if !bytes.Contains(doc, []byte(row)) {
			t.Errorf("docs/api-limits.md lacks the row %q", row)
		}
	}
}
