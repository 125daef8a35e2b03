package testcalls

// GDPR tooling as the contact-center scripts use it (docs/gdpr.md): an API
// client created by the operator runs `voicemail gdpr -c ID:SECRET` (token
// by client credentials), --count simulates, forgetme needs --confirm,
// scopes and revocation are enforced; all on the format's own example.

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// contactCenterExample is the two requests of the format's own example
// (gdpr/testdata/contact-center-example.json): six contacts each, one of
// them 617 555 1313, a number without its country code.
const contactCenterExample = `{
  "requests": [
    {
      "requestcase": "97456596893834",
      "shortcodes": ["12345", "67890"],
      "accountid": "ACME01",
      "type": "FORGET",
      "contacts": [
        {"phone": "+1 781 555 1212"},
        {"phone": "617 555 1313"},
        {"email": "john.doe@example.com"},
        {"phone": "+44 20 7946 0958"},
        {"ipaddr": "192.0.2.10"},
        {"email": "jdoe@example.org"}
      ]
    },
    {
      "requestcase": "6457657657",
      "shortcodes": [],
      "accountid": "ACME01",
      "type": "FORGET",
      "contacts": [
        {"phone": "+1 617 555 1414"},
        {"email": "jane.roe@example.com"},
        {"ipaddr": "2001:db8::7"},
        {"phone": "+1 (508) 555-0199"},
        {"email": "jroe@example.net"},
        {"phone": "+33 1 70 36 99 00"}
      ]
    }
  ]
}`

// exampleResponses is what a run answers for the example when
// +1 781 555 1212 left 3 messages and +1 617 555 1414 left 1, with r the
// response of a contact that has messages (n of them).
func exampleResponses(r func(n int) string) []string {
	nf := "SUCCESS: not found"
	return []string{r(3), "ERROR: incorrect device format", nf, nf, nf, nf, r(1), nf, nf, nf, nf, nf}
}

// checkResultKeys: the result file has exactly the keys requests and
// result, in that order.
func checkResultKeys(t *testing.T, what string, b []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	var keys []string
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%s is not a JSON object: %s", what, b)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	if !slices.Equal(keys, []string{"requests", "result"}) {
		t.Errorf("%s keys %v, want exactly [requests result]", what, keys)
	}
}

type apiClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

func (c apiClient) cred() string { return c.ID + ":" + c.Secret }

// newAPIClient creates an API client of tenant with the operator token.
func (s *server) newAPIClient(t *testing.T, tenant string, scopes ...string) apiClient {
	t.Helper()
	res, b := s.call(t, "POST", "/api/v1/tenants/"+tenant+"/clients", s.token, map[string]any{"name": "cron", "scopes": scopes})
	var c apiClient
	if res.StatusCode != 201 || json.Unmarshal(b, &c) != nil || c.ID == "" || c.Secret == "" {
		t.Fatalf("create client: %d %s", res.StatusCode, b)
	}
	return c
}

// clientToken does the client-credentials grant as a script would.
func (s *server) clientToken(t *testing.T, c apiClient) (int, string) {
	t.Helper()
	res, b := s.call(t, "POST", "/api/v1/oauth/token", "", url.Values{"grant_type": {"client_credentials"},
		"client_id": {c.ID}, "client_secret": {c.Secret}}.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(b, &tok)
	return res.StatusCode, tok.AccessToken
}

// readResult reads OUTDIR/output.json and checks its keys.
func readResult(t *testing.T, dir string) gdprAPIAnswer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "output.json"))
	if err != nil {
		t.Fatal(err)
	}
	checkResultKeys(t, dir+"/output.json", b)
	var a gdprAPIAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	if len(a.Requests) != 2 || a.Requests[0].RequestCase != "97456596893834" || a.Result[1].RequestCase != "6457657657" ||
		a.Result[0].AccountID != "ACME01" || a.Result[0].Contacts[1].Phone != "617 555 1313" {
		t.Errorf("%s/output.json: %s", dir, b)
	}
	return a
}

func TestGDPRClientCredentialsCountConfirm(t *testing.T) {
	t.Parallel()
	s := mwiServer(t, "")
	var wg sync.WaitGroup
	for _, d := range [][2]string{{"1001", "+17815551212"}, {"1001", "17815551212"}, {"1002", "+17815551212"},
		{"1001", "+16175551414"}, {"1001", "+16175550000"}} {
		wg.Add(1)
		go func() { defer wg.Done(); depositFrom(t, s, d[0], d[1]) }()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	s.waitMessages(t, "1001", 4, 20*time.Second)
	s.waitMessages(t, "1002", 1, 20*time.Second)
	phone := newUDPTarget(t, 0)
	subscribeUDP(t, phone, s.sipAddr(), "1001")
	phone.wait(t, "Voice-Message: 4/0")

	req := filepath.Join(t.TempDir(), "request.json")
	if err := os.WriteFile(req, []byte(contactCenterExample), 0o600); err != nil {
		t.Fatal(err)
	}
	gd := s.newAPIClient(t, "default", "gdpr")
	ro := s.newAPIClient(t, "default", "read")
	// The scheduler has no person's token: only the client credential.
	noToken := []string{"VOICEMAIL_TOKEN="}
	gdprCLI := func(args ...string) (string, string, int, string) {
		out := filepath.Join(t.TempDir(), "out")
		stdout, stderr, rc := s.cli(t, noToken, append([]string{"gdpr", "-i", req, "-o", out}, args...)...)
		return stdout, stderr, rc, out
	}

	// Export through the CLI with -c: token by client credentials, the
	// example's structure, the WAVs; exit 3 because of 617 555 1313.
	stdout, stderr, rc, out := gdprCLI("-p", "exportme", "-c", gd.cred())
	if rc != 3 {
		t.Fatalf("exportme -c: exit %d\n%s%s", rc, stdout, stderr)
	}
	a := readResult(t, out)
	if got, want := a.responses(), exampleResponses(func(int) string { return "SUCCESS" }); !slices.Equal(got, want) {
		t.Errorf("export responses %q, want %q", got, want)
	}
	if a.Result[0].Contacts[0].Messages != 3 || a.Result[1].Contacts[0].Messages != 1 {
		t.Errorf("export counts %+v", a.Result)
	}
	wavs, _ := filepath.Glob(filepath.Join(out, "*.wav"))
	if len(wavs) != 4 {
		t.Errorf("%d WAVs exported, want 4", len(wavs))
	}

	// --count: the same format with "would" texts and the mailboxes; nothing changes.
	wouldForget := func(n int) string {
		if n == 1 {
			return "SUCCESS: would forget 1 message"
		}
		return "SUCCESS: would forget 3 messages"
	}
	stdout, stderr, rc, out = gdprCLI("-p", "forgetme", "-c", gd.cred(), "--count")
	if rc != 3 {
		t.Fatalf("forgetme --count: exit %d\n%s%s", rc, stdout, stderr)
	}
	a = readResult(t, out)
	if got, want := a.responses(), exampleResponses(wouldForget); !slices.Equal(got, want) {
		t.Errorf("--count responses %q, want %q", got, want)
	}
	if mb := a.Result[0].Contacts[0].Mailboxes; !slices.Equal(mb, []string{"1001", "1002"}) {
		t.Errorf("--count mailboxes %v", mb)
	}

	// The same simulation with the client's id and secret as an HTTP Basic credential.
	stdout, stderr, rc, out = gdprCLI("-p", "undoforget", "--user", gd.cred(), "--basic", "--count")
	if a := readResult(t, out); rc != 3 || a.Result[0].Contacts[0].Response != "SUCCESS: not found" {
		t.Errorf("undoforget --basic --count: exit %d %+v\n%s%s", rc, a.Result[0].Contacts, stdout, stderr)
	}

	// forgetme without --confirm: prints what it would do, exit 4, nothing deleted.
	stdout, stderr, rc, out = gdprCLI("-p", "forgetme", "-c", gd.cred())
	if rc != 4 || !strings.Contains(stdout, "SUCCESS: would forget 3 messages") || !strings.Contains(stderr, "--confirm") {
		t.Errorf("forgetme without --confirm: exit %d\n%s%s", rc, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "output.json")); !os.IsNotExist(err) {
		t.Errorf("an unconfirmed forgetme wrote output.json: %v", err)
	}
	if n1, n2 := len(s.messages(t, "1001")), len(s.messages(t, "1002")); n1 != 4 || n2 != 1 {
		t.Fatalf("after --count and an unconfirmed forgetme: %d and %d messages, want 4 and 1", n1, n2)
	}
	checkAudit(t, s, map[string]int{"forget:dry-run": 24, "undo:dry-run": 12, "export": 12})
	checkAuditActor(t, s, "client:default:"+gd.ID)

	// A client with only the read scope cannot forget (403): exit 1.
	stdout, stderr, rc, _ = gdprCLI("-p", "forgetme", "-c", ro.cred(), "--confirm")
	if rc != 1 || !strings.Contains(stderr, "403") || !strings.Contains(stderr, "gdpr scope") {
		t.Errorf("read-only client forgetme: exit %d\n%s%s", rc, stdout, stderr)
	}
	// A ccid naming another tenant is refused before anything runs.
	other := filepath.Join(t.TempDir(), "acme.json")
	os.WriteFile(other, []byte(strings.Replace(contactCenterExample, `"accountid": "ACME01",`, `"accountid": "ACME01", "ccid": "acme",`, 1)), 0o600)
	if stdout, stderr, rc := s.cli(t, noToken, "gdpr", "-i", other, "-o", t.TempDir(), "-p", "forgetme", "--confirm", "-c", gd.cred()); rc != 1 || !strings.Contains(stderr, "ccid") {
		t.Errorf("ccid of another tenant: exit %d\n%s%s", rc, stdout, stderr)
	}
	if n := len(s.messages(t, "1001")); n != 4 {
		t.Fatalf("refused runs changed 1001: %d messages", n)
	}

	// With --confirm the messages go, MWI follows (4/0 → 1/0).
	from := phone.count()
	stdout, stderr, rc, out = gdprCLI("-p", "forgetme", "-c", gd.cred(), "--confirm")
	if rc != 3 {
		t.Fatalf("forgetme --confirm: exit %d\n%s%s", rc, stdout, stderr)
	}
	a = readResult(t, out)
	if got, want := a.responses(), exampleResponses(func(int) string { return "SUCCESS" }); !slices.Equal(got, want) {
		t.Errorf("forget responses %q, want %q", got, want)
	}
	phone.waitAt(t, "Voice-Message: 1/0", from)
	left := s.messages(t, "1001")
	if len(left) != 1 || left[0].CallerID != "+16175550000" || len(s.messages(t, "1002")) != 0 {
		t.Errorf("after forget: 1001 %+v, 1002 %d", left, len(s.messages(t, "1002")))
	}
	// The NOTIFYs between the first subscription state and the forget all said 4/0.
	phone.mu.Lock()
	for _, m := range phone.got[:from] {
		if strings.Contains(m, "Voice-Message:") && !strings.Contains(m, "Voice-Message: 4/0") && !strings.Contains(m, "Voice-Message: 0/0") {
			t.Errorf("a NOTIFY before the confirmed forget: %q", m)
		}
	}
	phone.mu.Unlock()

	// Revoked: the CLI and a token taken before are refused (401).
	code, bearer := s.clientToken(t, gd)
	if code != 200 || bearer == "" {
		t.Fatalf("client token: %d", code)
	}
	if res, b := s.call(t, "DELETE", "/api/v1/tenants/default/clients/"+gd.ID, s.token, nil); res.StatusCode != 204 {
		t.Fatalf("revoke: %d %s", res.StatusCode, b)
	}
	if res, b := s.call(t, "POST", "/api/v1/gdpr/export", bearer, contactCenterExample); res.StatusCode != 401 {
		t.Errorf("revoked client's token: %d %s", res.StatusCode, b)
	}
	if code, _ := s.clientToken(t, gd); code != 401 {
		t.Errorf("revoked client's token request: %d", code)
	}
	if stdout, stderr, rc, _ := gdprCLI("-p", "exportme", "-c", gd.cred()); rc != 1 || !strings.Contains(stderr, "401") {
		t.Errorf("revoked client CLI: exit %d\n%s%s", rc, stdout, stderr)
	}
}

// checkAuditActor: some audit line names the actor.
func checkAuditActor(t *testing.T, s *server, actor string) {
	t.Helper()
	var n int
	if err := openDB(t, s).QueryRow(`SELECT count(*) FROM gdpr_audit WHERE actor = ?`, actor).Scan(&n); err != nil || n == 0 {
		t.Errorf("no audit line by %s (%v)", actor, err)
	}
}
