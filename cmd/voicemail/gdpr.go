package main

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmserver/voicemail/gdpr"
)

// Exit codes of voicemail gdpr (docs/gdpr.md), so that scripts can tell
// what happened without reading the files.
const (
	gdprExitOK           = 0 // every contact answered SUCCESS…
	gdprExitFailed       = 1 // the file was not processed (server unreachable, credentials refused, bad answer)
	gdprExitUsage        = 2 // a mistake on the command line or in the request file
	gdprExitContactError = 3 // processed, but at least one contact answered ERROR: … (see output.json)
	gdprExitNeedsConfirm = 4 // forgetme without --confirm: nothing was changed; what it would do is printed
)

const gdprHelp = `usage: voicemail gdpr -p exportme|forgetme|undoforget -i REQUEST.json -o OUTDIR
                     (-u TOKEN [--basic] | -c CLIENT_ID:SECRET) [--count] [--confirm] [flags]

Runs a GDPR request file (docs/gdpr.md) through the server's REST API and writes
  OUTDIR/output.json     the result file: {"requests": [...], "result": [...]}
  OUTDIR/execution.log   what was done, one line per contact
  OUTDIR/<id>.wav, OUTDIR/export.json   (exportme) the caller's messages

  --count     simulation: report per contact what would be exported, forgotten
              or restored ("SUCCESS: would forget 3 messages"); change nothing
  --confirm   required by forgetme; without it forgetme only reports what it
              would forget and exits 4

Credentials: -u/--user TOKEN (env VOICEMAIL_TOKEN; --basic sends it as HTTP
Basic, "ID:SECRET" or already base64) or -c/--client ID:SECRET (env
VOICEMAIL_CLIENT), an API client: its tenant is the request's "ccid".

Exit codes: 0 done, every contact SUCCESS; 1 not processed; 2 usage error;
3 done, some contact answered ERROR; 4 forgetme refused without --confirm.

flags:
`

// gdprConn is one run's connection: the API base URL and the
// Authorization header (bearer token, HTTP Basic or a client's token).
type gdprConn struct {
	server, tenant, auth string
	http                 *http.Client
}

// call performs a request and turns non-2xx answers into *apiErr.
func (g *gdprConn) call(method, path string, body io.Reader, ctype string) (*http.Response, error) {
	u := strings.TrimRight(g.server, "/") + path
	if g.tenant != "" {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "tenant=" + url.QueryEscape(g.tenant)
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, err
	}
	if g.auth != "" {
		req.Header.Set("Authorization", g.auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := g.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach %s: %v", g.server, err)
	}
	if res.StatusCode/100 == 2 {
		return res, nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var e struct {
		Error struct{ Code, Message, Field string } `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error.Message == "" {
		return nil, &apiErr{status: res.StatusCode, code: "http_error", message: strings.TrimSpace(http.StatusText(res.StatusCode))}
	}
	return nil, &apiErr{status: res.StatusCode, code: e.Error.Code, message: e.Error.Message, field: e.Error.Field}
}

// clientToken trades an API client's id and secret for a bearer token
// (RFC 6749 §4.4) and returns it with the client's tenant.
func (g *gdprConn) clientToken(id, secret string) (token, tenant string, err error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequest("POST", strings.TrimRight(g.server, "/")+"/api/v1/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", "", err
	}
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := g.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", "", fmt.Errorf("cannot reach %s: %v", g.server, err)
	}
	defer res.Body.Close()
	var ans struct {
		AccessToken string `json:"access_token"`
		Tenant      string `json:"tenant"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&ans); err != nil && res.StatusCode == 200 {
		return "", "", errors.New("the token endpoint sent an invalid answer")
	}
	if res.StatusCode != 200 || ans.AccessToken == "" {
		return "", "", fmt.Errorf("client credentials refused: %s %s [HTTP %d]", ans.Error, ans.Description, res.StatusCode)
	}
	return ans.AccessToken, ans.Tenant, nil
}

// gdprCmd is "voicemail gdpr".
func gdprCmd(args []string) int {
	fs := flag.NewFlagSet("gdpr", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		op, in, outDir, user, clientCred, server, tenant string
		basic, count, confirm                            bool
	)
	fs.StringVar(&op, "p", "", "operation: exportme, forgetme or undoforget (undoforgot accepted)")
	fs.StringVar(&op, "operation", "", "same as -p")
	fs.StringVar(&in, "i", "", "the request JSON file")
	fs.StringVar(&in, "input", "", "same as -i")
	fs.StringVar(&outDir, "o", "", "output folder (created if needed)")
	fs.StringVar(&outDir, "output", "", "same as -o")
	// Secrets have no default shown: the environment is read after parsing.
	fs.StringVar(&user, "u", "", "operator or tenant token (env VOICEMAIL_TOKEN)")
	fs.StringVar(&user, "user", "", "same as -u")
	fs.StringVar(&user, "token", "", "same as -u")
	fs.StringVar(&clientCred, "c", "", "API client credentials ID:SECRET (env VOICEMAIL_CLIENT)")
	fs.StringVar(&clientCred, "client", "", "same as -c")
	fs.BoolVar(&basic, "basic", false, "send -u as an HTTP Basic credential")
	fs.BoolVar(&count, "count", false, "simulation: report what would be done, change nothing")
	fs.BoolVar(&confirm, "confirm", false, "required by forgetme (without it: report only, exit 4)")
	fs.StringVar(&server, "server", "", serverUsage)
	fs.StringVar(&tenant, "tenant", "", "operator token: only this tenant (env VOICEMAIL_TENANT; default every tenant)")
	usage := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "voicemail gdpr: "+format+" (voicemail gdpr -h for help)\n", a...)
		return gdprExitUsage
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stderr, gdprHelp)
			fs.SetOutput(os.Stderr)
			fs.PrintDefaults()
			return gdprExitOK
		}
		return usage("%v", err)
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	if op == "" || in == "" || outDir == "" {
		return usage("-p, -i and -o are required")
	}
	operation, err := gdpr.ParseOperation(op)
	if err != nil {
		return usage("-p must be exportme, forgetme or undoforget, got %q", op)
	}
	// The server as the other client commands find it: flag, environment,
	// then the configuration serve reads (http.listen).
	rc := &client{server: server, token: "-"}
	if err := rc.resolve(); err != nil {
		return usage("%v", err)
	}
	server = firstOf(rc.server, "http://127.0.0.1:8080")
	if u, err := url.Parse(server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usage("%s %q is not an http(s) URL", rc.serverFrom, server)
	}
	if user != "" && clientCred != "" {
		return usage("-u and -c exclude each other")
	}
	if user == "" && clientCred == "" {
		user, clientCred = os.Getenv("VOICEMAIL_TOKEN"), os.Getenv("VOICEMAIL_CLIENT")
		if user != "" && clientCred != "" {
			user = "" // both set in the environment: the client credential is the scheduler's
		}
	}
	if user == "" && clientCred == "" {
		return usage("no credentials: pass -u TOKEN or -c CLIENT_ID:SECRET (or set VOICEMAIL_TOKEN or VOICEMAIL_CLIENT)")
	}
	raw, err := os.ReadFile(in)
	if err != nil {
		return usage("%v", err)
	}
	doc, err := gdpr.ParseDocument(raw)
	if err != nil {
		return usage("%s: %v", in, err)
	}
	conn := &gdprConn{server: server, tenant: firstOf(tenant, os.Getenv("VOICEMAIL_TENANT")), http: &http.Client{Timeout: 10 * time.Minute}}
	switch {
	case clientCred != "":
		id, secret, ok := strings.Cut(clientCred, ":")
		if !ok || id == "" || secret == "" {
			return usage("-c wants CLIENT_ID:SECRET")
		}
		if tenant != "" {
			return usage("--tenant is for the operator token; an API client's tenant is the request's ccid")
		}
		conn.tenant = ""
		token, clientTenant, err := conn.clientToken(id, secret)
		if err != nil {
			fmt.Fprintf(os.Stderr, "voicemail gdpr: %v\n", err)
			return gdprExitFailed
		}
		for _, r := range doc.Requests {
			if r.CCID != "" && clientTenant != "" && r.CCID != clientTenant {
				fmt.Fprintf(os.Stderr, "voicemail gdpr: request %s: ccid %q is not the tenant of client %s (%s)\n", r.RequestCase, r.CCID, id, clientTenant)
				return gdprExitFailed
			}
		}
		conn.auth = "Bearer " + token
	case basic:
		cred := user
		if strings.Contains(cred, ":") {
			cred = base64.StdEncoding.EncodeToString([]byte(cred))
		}
		conn.auth = "Basic " + cred
	default:
		conn.auth = "Bearer " + user
	}
	run := &gdprRun{conn: conn, opName: op, op: operation, in: in, outDir: outDir, raw: raw, requests: len(doc.Requests), out: os.Stdout}
	switch {
	case count:
		return run.exec(true, false)
	case operation == gdpr.OpForget && !confirm:
		return run.exec(true, true)
	}
	return run.exec(false, false)
}

func firstOf(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// gdprRun is one invocation's work.
type gdprRun struct {
	conn       *gdprConn
	opName     string
	op         gdpr.Operation
	in, outDir string
	raw        []byte
	requests   int
	out        io.Writer
}

// execLog writes OUTDIR/execution.log.
type execLog struct{ f *os.File }

func (l *execLog) printf(level, format string, a ...any) {
	fmt.Fprintf(l.f, "%s %-5s %s\n", time.Now().UTC().Format(time.RFC3339), level, fmt.Sprintf(format, a...))
}

// exec runs the file (a dry run when dry) and returns the exit code;
// refused is forgetme without --confirm: report, write no output.json.
func (g *gdprRun) exec(dry, refused bool) int {
	if err := os.MkdirAll(g.outDir, 0o750); err != nil {
		fmt.Fprintf(os.Stderr, "voicemail gdpr: %v\n", err)
		return gdprExitFailed
	}
	lf, err := os.OpenFile(filepath.Join(g.outDir, "execution.log"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		fmt.Fprintf(os.Stderr, "voicemail gdpr: %v\n", err)
		return gdprExitFailed
	}
	defer lf.Close()
	log := &execLog{f: lf}
	mode := ""
	if dry {
		mode = " (dry run: nothing is changed)"
	}
	log.printf("INFO", "%s%s: %d requests from %s, server %s", g.opName, mode, g.requests, g.in, g.conn.server)
	ans, err := g.post(dry)
	if err != nil {
		log.printf("ERROR", "%s failed: %v", g.opName, err)
		fmt.Fprintf(os.Stderr, "voicemail gdpr: %v\n", err)
		return gdprExitFailed
	}
	result, err := gdpr.ParseResult(ans.body)
	if err != nil {
		log.printf("ERROR", "%s failed: the server sent an invalid answer: %v", g.opName, err)
		fmt.Fprintf(os.Stderr, "voicemail gdpr: the server sent an invalid answer: %v\n", err)
		return gdprExitFailed
	}
	for _, r := range result.Requests {
		for _, x := range r.Result {
			level := "INFO"
			if strings.HasPrefix(x.Response, "ERROR") {
				level = "ERROR"
			}
			line := contactLine(r.RequestCase, x)
			log.printf(level, "%s", line)
			if refused {
				fmt.Fprintf(g.out, "  %s\n", line)
			}
		}
	}
	if refused {
		log.printf("WARN", "%s not run: --confirm is required; nothing was changed", g.opName)
		fmt.Fprintf(g.out, "%s would affect %d messages (%d contacts, %d errors); nothing was changed\n", g.opName, ans.Messages, ans.Contacts, ans.Errors)
		fmt.Fprintf(os.Stderr, "voicemail gdpr: %s not run: add --confirm to forget these messages\n", g.opName)
		return gdprExitNeedsConfirm
	}
	if err := g.writeOutput(ans); err != nil {
		log.printf("ERROR", "%s failed: %v", g.opName, err)
		fmt.Fprintf(os.Stderr, "voicemail gdpr: %v\n", err)
		return gdprExitFailed
	}
	if g.op == gdpr.OpExport && !dry {
		if ans.ArchiveURL == "" {
			log.printf("ERROR", "%s failed: the server sent no archive", g.opName)
			fmt.Fprintln(os.Stderr, "voicemail gdpr: the server sent no archive")
			return gdprExitFailed
		}
		files, err := g.fetchArchive(ans.ArchiveURL)
		if err != nil {
			log.printf("ERROR", "%s failed: archive: %v", g.opName, err)
			fmt.Fprintf(os.Stderr, "voicemail gdpr: archive: %v\n", err)
			return gdprExitFailed
		}
		log.printf("INFO", "archive: %d files extracted to %s", files, g.outDir)
	}
	log.printf("INFO", "%s%s done: %d contacts, %d errors, %d messages", g.opName, mode, ans.Contacts, ans.Errors, ans.Messages)
	fmt.Fprintf(g.out, "%s%s: %d contacts, %d errors, %d messages; results in %s\n", g.opName, mode, ans.Contacts, ans.Errors, ans.Messages,
		filepath.Join(g.outDir, "output.json"))
	if ans.Errors > 0 {
		fmt.Fprintf(os.Stderr, "voicemail gdpr: %d contacts answered ERROR (see %s)\n", ans.Errors, filepath.Join(g.outDir, "output.json"))
		return gdprExitContactError
	}
	return gdprExitOK
}

func contactLine(reqCase string, x gdpr.Result) string {
	s := fmt.Sprintf("case %s %s %q: %s (%d messages", reqCase, x.Contact.Kind, x.Contact.Value, x.Response, x.Messages)
	if len(x.Mailboxes) > 0 {
		s += " in " + strings.Join(x.Mailboxes, ", ")
	}
	return s + ")"
}

// gdprAnswer is the API's answer: the result file plus the run's summary.
type gdprAnswer struct {
	Requests   json.RawMessage `json:"requests"`
	Result     json.RawMessage `json:"result"`
	ArchiveURL string          `json:"archive_url"`
	Contacts   int             `json:"contacts"`
	Errors     int             `json:"errors"`
	Messages   int             `json:"messages"`
	body       []byte
}

func (g *gdprRun) post(dry bool) (*gdprAnswer, error) {
	path := "/api/v1/gdpr/" + string(g.op)
	if dry {
		path += "?dry_run=true"
	}
	res, err := g.conn.call("POST", path, bytes.NewReader(g.raw), "application/json")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %v", err)
	}
	ans := &gdprAnswer{body: body}
	if err := json.Unmarshal(body, ans); err != nil || ans.Requests == nil || ans.Result == nil {
		return nil, errors.New("the server sent an invalid answer")
	}
	return ans, nil
}

// writeOutput writes output.json: exactly the result file of the
// contact-center format, {"requests": [...], "result": [...]}.
func (g *gdprRun) writeOutput(ans *gdprAnswer) error {
	var out bytes.Buffer
	out.WriteString(`{"requests":`)
	out.Write(ans.Requests)
	out.WriteString(`,"result":`)
	out.Write(ans.Result)
	out.WriteString("}")
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out.Bytes(), "", "  "); err != nil {
		return fmt.Errorf("the server sent invalid JSON: %v", err)
	}
	pretty.WriteByte('\n')
	return os.WriteFile(filepath.Join(g.outDir, "output.json"), pretty.Bytes(), 0o640)
}

// fetchArchive downloads the export zip and extracts its flat entries
// (<id>.wav, export.json) into the output folder.
func (g *gdprRun) fetchArchive(path string) (int, error) {
	res, err := g.conn.call("GET", path, nil, "")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	tmp, err := os.CreateTemp(g.outDir, ".archive-*.zip")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, res.Body)
	if err != nil {
		return 0, err
	}
	zr, err := zip.NewReader(tmp, n)
	if err != nil {
		return 0, err
	}
	files := 0
	for _, zf := range zr.File {
		name := zf.Name
		if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") || strings.ContainsAny(name, `/\`) {
			return files, fmt.Errorf("unexpected entry %q", name)
		}
		if err := extract(zf, filepath.Join(g.outDir, name)); err != nil {
			return files, err
		}
		files++
	}
	return files, nil
}

func extract(zf *zip.File, dst string) error {
	rc, err := zf.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
