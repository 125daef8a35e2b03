package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		method, path string
		status       int
		ctype        string
	}{
		{"GET", "/", 200, "text/html"},
		{"GET", "/admin", 200, "text/html"},
		{"HEAD", "/admin", 200, "text/html"},
		{"GET", "/settings", 404, ""},
		{"GET", "/assets/js/inbox.js", 200, "text/javascript"},
		{"GET", "/assets/app.css", 200, "text/css"},
		{"GET", "/assets/icon.svg", 200, "image/svg+xml"},
		{"GET", "/assets/", 404, ""},
		{"GET", "/assets/../web.go", 404, ""},
		{"GET", "/index.html", 404, ""},
		{"GET", "/nope", 404, ""},
		{"POST", "/", 405, ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, rec.Code, tc.status)
		}
		if tc.ctype != "" && !strings.HasPrefix(rec.Header().Get("Content-Type"), tc.ctype) {
			t.Errorf("%s %s: Content-Type %q, want %s", tc.method, tc.path, rec.Header().Get("Content-Type"), tc.ctype)
		}
		csp := rec.Header().Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s %s: CSP %q lacks %s", tc.method, tc.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("CSP allows unsafe sources: %q", csp)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: no nosniff", tc.method, tc.path)
		}
	}
}

// The pages hold no inline script, style or event handler, which the CSP
// would refuse: all behaviour lives in the modules.
func TestNoInlineCode(t *testing.T) {
	inline := []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`javascript:`),
	}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".html") {
			return err
		}
		b, err := fs.ReadFile(static, p)
		if err != nil {
			return err
		}
		for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAll(b, -1) {
			if !strings.Contains(string(tag), " src=") {
				t.Errorf("%s: script without src: %s", p, tag)
			}
		}
		for _, re := range inline {
			if loc := re.FindIndex(b); loc != nil {
				t.Errorf("%s: inline code %q", p, b[loc[0]:min(loc[1]+30, len(b))])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The modules never write markup from strings.
	_ = fs.WalkDir(static, "static/js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(static, p)
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s", p, bad)
			}
		}
		return nil
	})
}

var _ http.Handler = Handler()
