// Package web is the web inbox and admin console: static HTML, CSS and
// JavaScript modules embedded in the binary, talking to the REST API with
// the API's own bearer tokens (README, "Web inbox and admin console").
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// csp is strict: scripts and styles only from this origin as files, no
// inline code or style attributes, no framing, no plugins.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"media-src 'self' blob:; connect-src 'self'; font-src 'self'; form-action 'self'; " +
	"base-uri 'none'; frame-ancestors 'none'"

// pages maps the console's addresses to their documents.
var pages = map[string]string{
	"/":      "index.html", // the inbox; #settings shows greetings and settings
	"/admin": "admin.html",
}

// Handler serves the console: the pages above and /assets/… (GET and HEAD
// only), every answer with the security headers.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	assets := http.StripPrefix("/assets/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Permissions-Policy", "microphone=(self), camera=(), geolocation=()")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if page, ok := pages[r.URL.Path]; ok {
			h.Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, sub, page)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/assets/") && !strings.HasSuffix(r.URL.Path, "/") {
			h.Set("Cache-Control", "no-cache")
			assets.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
}
