package api

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 document of the API, kept in the repository as
// api/openapi.json and served at /api/v1/openapi.json.
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
