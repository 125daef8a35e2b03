package api

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vmserver/voicemail/store"
)

type clientCreated struct {
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	Tenant       string   `json:"tenant"`
	Scopes       []string `json:"scopes"`
}

func createClient(t *testing.T, f *fixture, tok, tenant, body string) clientCreated {
	t.Helper()
	res, b := f.do(t, "POST", "/api/v1/tenants/"+tenant+"/clients", tok, body)
	if res.StatusCode != 201 {
		t.Fatalf("create client: %d %s", res.StatusCode, b)
	}
	var c clientCreated
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.ClientID, "vmc_") || len(c.ClientSecret) < 64 || c.Tenant != tenant {
		t.Fatalf("created %s", b)
	}
	return c
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

// tokenRequest posts a form to the token endpoint.
func tokenRequest(t *testing.T, f *fixture, form url.Values, hdr ...string) (int, map[string]any, string) {
	t.Helper()
	res, b := f.do(t, "POST", "/api/v1/oauth/token", "", form.Encode(),
		append([]string{"Content-Type", "application/x-www-form-urlencoded"}, hdr...)...)
	var m map[string]any
	json.Unmarshal(b, &m)
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("token response without Cache-Control: no-store")
	}
	return res.StatusCode, m, res.Header.Get("WWW-Authenticate")
}

func TestAPIClientsLifecycle(t *testing.T) {
	f, _ := newGDPRFixture(t)
	acmeAdmin := tenantToken(t, f, "acme")

	// Who may manage clients.
	for _, tc := range []struct {
		name, tok, tenant, body string
		status                  int
		field                   string
	}{
		{"no scopes", token, "acme", `{"name":"x"}`, 400, "scopes"},
		{"unknown scope", token, "acme", `{"scopes":["gdpr","root"]}`, 400, "scopes"},
		{"twice", token, "acme", `{"scopes":["gdpr","gdpr"]}`, 400, "scopes"},
		{"unknown field", token, "acme", `{"scopes":["gdpr"],"secret":"x"}`, 400, "secret"},
		{"unknown tenant", token, "nope", `{"scopes":["gdpr"]}`, 404, ""},
		{"other tenant's admin", acmeAdmin, "default", `{"scopes":["gdpr"]}`, 403, ""},
		{"no token", "", "acme", `{"scopes":["gdpr"]}`, 401, ""},
	} {
		res, b := f.do(t, "POST", "/api/v1/tenants/"+tc.tenant+"/clients", tc.tok, tc.body)
		var e errBody
		json.Unmarshal(b, &e)
		if res.StatusCode != tc.status || e.Error.Field != tc.field {
			t.Errorf("%s: %d %s, want %d field %q", tc.name, res.StatusCode, b, tc.status, tc.field)
		}
	}
	gd := createClient(t, f, acmeAdmin, "acme", `{"name":"nightly","scopes":["gdpr","read"]}`)
	ro := createClient(t, f, token, "acme", `{"name":"reports","scopes":["read"]}`)

	// The secret is shown once: never in the list, never stored in clear.
	res, b := f.do(t, "GET", "/api/v1/tenants/acme/clients", acmeAdmin, "")
	if res.StatusCode != 200 || strings.Contains(string(b), gd.ClientSecret) || !strings.Contains(string(b), gd.ClientID) ||
		strings.Contains(string(b), "client_secret") {
		t.Fatalf("list: %d %s", res.StatusCode, b)
	}
	stored, err := f.st.GetAPIClient(t.Context(), gd.ClientID)
	if err != nil || stored.SecretHash == gd.ClientSecret || strings.Contains(stored.SecretHash, gd.ClientSecret[4:20]) {
		t.Fatalf("stored %+v %v", stored, err)
	}

	// Token by HTTP Basic, and by the form.
	code, tok, _ := tokenRequest(t, f, url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic(gd.ClientID, gd.ClientSecret))
	if code != 200 || tok["token_type"] != "Bearer" || tok["expires_in"].(float64) != 900 || tok["scope"] != "gdpr read" {
		t.Fatalf("token: %d %v", code, tok)
	}
	bearer := tok["access_token"].(string)
	code, tok2, _ := tokenRequest(t, f, url.Values{"grant_type": {"client_credentials"}, "client_id": {gd.ClientID},
		"client_secret": {gd.ClientSecret}, "scope": {"read"}})
	if code != 200 || tok2["scope"] != "read" {
		t.Fatalf("form token: %d %v", code, tok2)
	}
	readOnly := tok2["access_token"].(string)

	// The token endpoint's errors (RFC 6749 §5.2).
	for _, tc := range []struct {
		name   string
		form   url.Values
		hdr    []string
		status int
		code   string
	}{
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}}, []string{"Authorization", basic(gd.ClientID, gd.ClientSecret+"x")}, 401, "invalid_client"},
		{"no credentials", url.Values{"grant_type": {"client_credentials"}}, nil, 401, "invalid_client"},
		{"password grant", url.Values{"grant_type": {"password"}}, []string{"Authorization", basic(gd.ClientID, gd.ClientSecret)}, 400, "unsupported_grant_type"},
		{"no grant", url.Values{}, []string{"Authorization", basic(gd.ClientID, gd.ClientSecret)}, 400, "invalid_request"},
		{"scope not granted", url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}, []string{"Authorization", basic(gd.ClientID, gd.ClientSecret)}, 400, "invalid_scope"},
		{"two methods", url.Values{"grant_type": {"client_credentials"}, "client_secret": {gd.ClientSecret}}, []string{"Authorization", basic(gd.ClientID, gd.ClientSecret)}, 400, "invalid_request"},
		{"JSON body", url.Values{"grant_type": {"client_credentials"}}, []string{"Authorization", basic(gd.ClientID, gd.ClientSecret), "Content-Type", "application/json"}, 400, "invalid_request"},
	} {
		code, m, www := tokenRequest(t, f, tc.form, tc.hdr...)
		if code != tc.status || m["error"] != tc.code || (code == 401 && www == "") {
			t.Errorf("%s: %d %v (WWW-Authenticate %q), want %d %s", tc.name, code, m, www, tc.status, tc.code)
		}
	}

	// Scopes: gdpr runs requests in its tenant only; read reads; neither administers.
	a := gdprCall(t, f, "export", bearer, gdprRequest)
	if a.Messages != 1 || a.Result[0].Contacts[0].Messages != 1 {
		t.Errorf("client export: %+v", a)
	}
	for _, tc := range []struct {
		name, method, path, tok, body string
		hdr                           []string
		status                        int
	}{
		{"read token forgets", "POST", "/api/v1/gdpr/forget", readOnly, gdprRequest, nil, 403},
		{"read client forgets (Basic)", "POST", "/api/v1/gdpr/forget", "", gdprRequest, []string{"Authorization", basic(ro.ClientID, ro.ClientSecret)}, 403},
		{"read client lists mailboxes", "GET", "/api/v1/mailboxes", "", "", []string{"Authorization", basic(ro.ClientID, ro.ClientSecret)}, 200},
		{"gdpr client creates a mailbox", "POST", "/api/v1/mailboxes", bearer, `{"number":"2002"}`, nil, 403},
		{"gdpr client reads mailboxes", "GET", "/api/v1/mailboxes", bearer, "", nil, 200},
		{"another tenant", "GET", "/api/v1/mailboxes?tenant=default", bearer, "", nil, 403},
		{"ccid of another tenant", "POST", "/api/v1/gdpr/export", bearer,
			`{"requests":[{"requestcase":"1","type":"FORGET","ccid":"default","contacts":[{"phone":"+1 781 555 1212"}]}]}`, nil, 403},
		{"manage clients", "GET", "/api/v1/tenants/acme/clients", bearer, "", nil, 403},
		{"audit", "GET", "/api/v1/gdpr/audit", bearer, "", nil, 403},
		{"bad Basic", "GET", "/api/v1/mailboxes", "", "", []string{"Authorization", basic(ro.ClientID, "vms_nope")}, 401},
		{"made-up token", "GET", "/api/v1/mailboxes", "vma_" + strings.Repeat("0", 64), "", nil, 401},
	} {
		res, b := f.do(t, tc.method, tc.path, tc.tok, tc.body, tc.hdr...)
		if res.StatusCode != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, res.StatusCode, b, tc.status)
		}
	}
	// A dry run through Basic auth with the gdpr scope, and the audit names the client.
	res, b = f.do(t, "POST", "/api/v1/gdpr/forget?dry_run=true", "", gdprRequest, "Authorization", basic(gd.ClientID, gd.ClientSecret))
	var dry gdprAnswer
	json.Unmarshal(b, &dry)
	if res.StatusCode != 200 || !dry.DryRun || dry.Result[0].Contacts[0].Response != "SUCCESS: would forget 1 message" ||
		strings.Join(dry.Result[0].Contacts[0].Mailboxes, ",") != "2001" {
		t.Fatalf("dry run: %d %s", res.StatusCode, b)
	}
	if res, _ := f.do(t, "POST", "/api/v1/gdpr/forget?dry_run=maybe", bearer, gdprRequest); res.StatusCode != 400 {
		t.Errorf("dry_run=maybe: %d", res.StatusCode)
	}
	res, b = f.do(t, "GET", "/api/v1/gdpr/audit?limit=1000", token, "")
	if !strings.Contains(string(b), `"actor":"client:acme:`+gd.ClientID+`"`) || !strings.Contains(string(b), `"operation":"forget:dry-run"`) {
		t.Errorf("audit does not name the client or the dry run: %s", b)
	}

	// Revoked: secret and tokens stop at once (401); the record stays.
	if res, b := f.do(t, "DELETE", "/api/v1/tenants/acme/clients/"+gd.ClientID, acmeAdmin, ""); res.StatusCode != 204 {
		t.Fatalf("revoke: %d %s", res.StatusCode, b)
	}
	if res, _ := f.do(t, "POST", "/api/v1/gdpr/export", bearer, gdprRequest); res.StatusCode != 401 {
		t.Errorf("revoked client's token: %d", res.StatusCode)
	}
	if res, _ := f.do(t, "GET", "/api/v1/mailboxes", "", "", "Authorization", basic(gd.ClientID, gd.ClientSecret)); res.StatusCode != 401 {
		t.Errorf("revoked client's Basic: %d", res.StatusCode)
	}
	if code, m, _ := tokenRequest(t, f, url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic(gd.ClientID, gd.ClientSecret)); code != 401 || m["error"] != "invalid_client" {
		t.Errorf("revoked client's token request: %d %v", code, m)
	}
	res, b = f.do(t, "GET", "/api/v1/tenants/acme/clients/"+gd.ClientID, token, "")
	if res.StatusCode != 200 || !strings.Contains(string(b), "revoked_at") {
		t.Errorf("revoked client record: %d %s", res.StatusCode, b)
	}
	if res, _ := f.do(t, "DELETE", "/api/v1/tenants/default/clients/"+ro.ClientID, token, ""); res.StatusCode != 404 {
		t.Errorf("revoke through another tenant: %d", res.StatusCode)
	}

	// An expired token is refused.
	key, err := f.api.clientKey()
	if err != nil {
		t.Fatal(err)
	}
	old := "vma_" + strings.Repeat("ab", 32)
	if err := f.st.CreateClientToken(t.Context(), store.ClientToken{Hash: keyedHash(key, old), ClientID: ro.ClientID,
		Scopes: []string{"read"}, ExpiresAt: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if res, b := f.do(t, "GET", "/api/v1/mailboxes", old, ""); res.StatusCode != 401 || !strings.Contains(string(b), "expired") {
		t.Errorf("expired token: %d %s", res.StatusCode, b)
	}
}
