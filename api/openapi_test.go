package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestOpenAPICoversRoutes: every route the server registers is in the
// committed OpenAPI document, and the document names no route the server lacks.
func TestOpenAPICoversRoutes(t *testing.T) {
	f := newFixture(t)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	registered := map[string]bool{}
	for _, r := range f.api.Routes() {
		method, path, _ := strings.Cut(r, " ")
		registered[strings.ToLower(method)+" "+path] = true
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("route %s is not in api/openapi.json", r)
		}
	}
	for path, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			if !registered[m+" "+path] {
				t.Errorf("api/openapi.json documents %s %s, which the server does not register", strings.ToUpper(m), path)
			}
		}
	}
	res, b := f.do(t, "GET", "/api/v1/openapi.json", "", "")
	if res.StatusCode != 200 || string(b) != string(openAPI) {
		t.Errorf("served document: %d, %d bytes", res.StatusCode, len(b))
	}
}
