package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmserver/voicemail/gdpr"
)

const gdprHelp = `usage: voicemail gdpr -p exportme|forgetme|undoforget -i REQUEST.json -o OUTDIR [-u TOKEN] [flags]

Runs a GDPR request file (docs/gdpr.md) through the server's REST API and writes
  OUTDIR/output.json     the requests echoed with a result per contact
  OUTDIR/execution.log   what was done, one line per contact
  OUTDIR/<id>.wav, OUTDIR/export.json   (exportme) the caller's messages

flags:
`

// gdprCmd is "voicemail gdpr". It exits 0 once the server has processed the
// file: per-contact errors (ERROR: …) are in output.json and execution.log.
func gdprCmd(args []string) int {
	fs := flag.NewFlagSet("gdpr", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	server := "" // resolved by client.check, as for mailbox and message
	op := fs.String("p", "", "operation: exportme, forgetme or undoforget")
	in := fs.String("i", "", "the request JSON file")
	outDir := fs.String("o", "", "output folder (created if needed)")
	tok := fs.String("u", "", "operator or tenant token; "+tokenUsage) // never the secret as a default
	fs.StringVar(tok, "token", "", "same as -u")
	fs.StringVar(&server, "server", "", serverUsage)
	tenant := fs.String("tenant", os.Getenv("VOICEMAIL_TENANT"), "operator token: only this tenant (default: every tenant)")
	usage := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "voicemail gdpr: "+format+" (voicemail gdpr -h for help)\n", a...)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stderr, gdprHelp)
			fs.SetOutput(os.Stderr)
			fs.PrintDefaults()
			return 0
		}
		return usage("%v", err)
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	if *op == "" || *in == "" || *outDir == "" {
		return usage("-p, -i and -o are required")
	}
	operation, err := gdpr.ParseOperation(*op)
	if err != nil {
		return usage("-p must be exportme, forgetme or undoforget, got %q", *op)
	}
	c := &client{server: server, token: *tok, tenant: *tenant, output: "json",
		http: &http.Client{Timeout: 10 * time.Minute}, out: os.Stdout}
	if err := c.check(); err != nil {
		if strings.Contains(err.Error(), "no token") {
			return usage("no token: pass -u TOKEN or set VOICEMAIL_TOKEN")
		}
		return usage("%v", err)
	}
	if err := runGDPR(c, *op, operation, *in, *outDir); err != nil {
		fmt.Fprintf(os.Stderr, "voicemail gdpr: %v\n", err)
		return 1
	}
	return 0
}

// execLog writes OUTDIR/execution.log.
type execLog struct{ f *os.File }

func (l *execLog) printf(level, format string, a ...any) {
	fmt.Fprintf(l.f, "%s %-5s %s\n", time.Now().UTC().Format(time.RFC3339), level, fmt.Sprintf(format, a...))
}

func runGDPR(c *client, opName string, op gdpr.Operation, in, outDir string) (err error) {
	raw, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	doc, err := gdpr.ParseDocument(raw)
	if err != nil {
		return fmt.Errorf("%s: %v", in, err)
	}
	if err := os.MkdirAll(outDir, 0o750); err != nil {
		return err
	}
	lf, err := os.Create(filepath.Join(outDir, "execution.log"))
	if err != nil {
		return err
	}
	defer lf.Close()
	log := &execLog{f: lf}
	defer func() {
		if err != nil {
			log.printf("ERROR", "%s failed: %v", opName, err)
		}
	}()
	log.printf("INFO", "%s: %d requests from %s, server %s", opName, len(doc.Requests), in, c.server)

	res, err := c.send("POST", "/api/v1/gdpr/"+string(op), bytes.NewReader(raw), "application/json", true)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return fmt.Errorf("reading the answer: %v", err)
	}
	var answer struct {
		Requests   json.RawMessage `json:"requests"`
		ArchiveURL string          `json:"archive_url"`
		Contacts   int             `json:"contacts"`
		Errors     int             `json:"errors"`
		Messages   int             `json:"messages"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.Requests == nil {
		return fmt.Errorf("the server sent an invalid answer")
	}
	result, err := gdpr.ParseDocument([]byte(`{"requests":` + string(answer.Requests) + `}`))
	if err != nil {
		return fmt.Errorf("the server sent an invalid answer: %v", err)
	}
	for _, r := range result.Requests {
		for _, x := range r.Result {
			level := "INFO"
			if strings.HasPrefix(x.Response, "ERROR") {
				level = "ERROR"
			}
			log.printf(level, "case %s %s %q: %s (%d messages)", r.RequestCase, x.Contact.Kind, x.Contact.Value, x.Response, x.Messages)
		}
	}
	var out bytes.Buffer
	out.WriteString(`{"requests":`)
	out.Write(answer.Requests)
	out.WriteString("}")
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out.Bytes(), "", "  "); err != nil {
		return fmt.Errorf("the server sent invalid JSON: %v", err)
	}
	pretty.WriteByte('\n')
	if err := os.WriteFile(filepath.Join(outDir, "output.json"), pretty.Bytes(), 0o640); err != nil {
		return err
	}
	files := 0
	if op == gdpr.OpExport {
		if answer.ArchiveURL == "" {
			return fmt.Errorf("the server sent no archive")
		}
		if files, err = fetchArchive(c, answer.ArchiveURL, outDir); err != nil {
			return fmt.Errorf("archive: %v", err)
		}
		log.printf("INFO", "archive: %d files extracted to %s", files, outDir)
	}
	log.printf("INFO", "%s done: %d contacts, %d errors, %d messages", opName, answer.Contacts, answer.Errors, answer.Messages)
	fmt.Fprintf(c.out, "%s: %d contacts, %d errors, %d messages; results in %s\n", opName, answer.Contacts, answer.Errors, answer.Messages,
		filepath.Join(outDir, "output.json"))
	return nil
}

// fetchArchive downloads the export zip and extracts its flat entries
// (<id>.wav, export.json) into dir.
func fetchArchive(c *client, url, dir string) (int, error) {
	res, err := c.send("GET", url, nil, "", false)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	tmp, err := os.CreateTemp(dir, ".archive-*.zip")
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
		if err := extract(zf, filepath.Join(dir, name)); err != nil {
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
