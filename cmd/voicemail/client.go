package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vmserver/voicemail/config"
)

// The client subcommands talk to the REST API (docs/api.md): --server /
// VOICEMAIL_SERVER, --token / VOICEMAIL_TOKEN, table output or -o json.
// Without --server or --token they follow the local server's own
// configuration (--config / VOICEMAIL_CONFIG and the VOICEMAIL_* variables),
// as `serve` reads it. Exit codes: 0 success, 1 failure, 2 usage; one line
// on stderr per error.

// usageError is a mistake on the command line (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// client is one invocation's connection settings.
type client struct {
	server, token, tenant, output string
	configFile                    string // the server's YAML file (--config), to find it
	serverFrom                    string // where server came from, for errors: what the user typed
	http                          *http.Client
	out                           io.Writer
}

// Flag help for the connection settings. The token's value is never a flag
// default: `-h` would print the secret.
const (
	serverUsage = "API base URL (default: $VOICEMAIL_SERVER, else http://<http.listen> of the server configuration read as serve reads it, else http://127.0.0.1:8080)"
	tokenUsage  = "bearer token (default: $VOICEMAIL_TOKEN, else the server configuration's auth.admin_token or <data_dir>/admin_token)"
	configUsage = "the server's YAML configuration file, to find its address and token (default: $" + config.ConfigEnv + ")"
)

// clientFlags registers the shared flags on fs.
func clientFlags(fs *flag.FlagSet) *client {
	c := &client{http: &http.Client{Timeout: 60 * time.Second}, out: os.Stdout}
	fs.StringVar(&c.server, "server", "", serverUsage)
	fs.StringVar(&c.token, "token", "", tokenUsage)
	fs.StringVar(&c.configFile, "config", "", configUsage)
	fs.StringVar(&c.tenant, "tenant", os.Getenv("VOICEMAIL_TENANT"), "tenant to act on with the operator token (env VOICEMAIL_TENANT)")
	fs.StringVar(&c.output, "o", "table", "output: table or json")
	return c
}

// resolve fills in the server and token not given as flags: from
// VOICEMAIL_SERVER / VOICEMAIL_TOKEN, else from the local server's
// configuration (file, environment, defaults), read as `serve` reads it.
func (c *client) resolve() error {
	c.serverFrom = "--server"
	if c.server == "" {
		c.server, c.serverFrom = os.Getenv("VOICEMAIL_SERVER"), "VOICEMAIL_SERVER"
	}
	if c.token == "" {
		c.token = os.Getenv("VOICEMAIL_TOKEN")
	}
	if c.server != "" && c.token != "" {
		return nil
	}
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	config.Register(fs)
	if c.configFile != "" {
		if err := fs.Set("config", c.configFile); err != nil {
			return err
		}
	}
	cfg, err := config.Load(fs, os.LookupEnv)
	if err != nil {
		return fmt.Errorf("reading the server configuration: %w", err)
	}
	if c.server == "" {
		c.server, c.serverFrom = localURL(cfg.HTTPListen), "http.listen of the server configuration"
	}
	if c.token == "" {
		c.token = cfg.AdminToken
	}
	if c.token == "" {
		if b, err := os.ReadFile(filepath.Join(cfg.DataDir, "admin_token")); err == nil {
			c.token = strings.TrimSpace(string(b))
		}
	}
	return nil
}

// localURL is the URL a local client uses for a server listening on
// listen: an unspecified host (0.0.0.0, ::) is reached on loopback.
func localURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// parseInterspersed parses flags that may come after positional arguments
// ("mailbox add 1003 --name Carol") and returns the positionals.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (c *client) check() error {
	if c.output != "table" && c.output != "json" {
		return usagef("-o must be table or json")
	}
	if err := c.resolve(); err != nil {
		return usageError{err.Error()}
	}
	if c.token == "" {
		return usagef("no token: pass --token or set VOICEMAIL_TOKEN")
	}
	u, err := url.Parse(c.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("%s %q is not an http(s) URL", c.serverFrom, c.server)
	}
	return nil
}

// apiErr is an error answer of the API.
type apiErr struct {
	status               int
	code, message, field string
}

func (e *apiErr) Error() string {
	s := e.message
	if e.field != "" && !strings.Contains(s, e.field) {
		s += " (field " + e.field + ")"
	}
	return fmt.Sprintf("%s [HTTP %d %s]", s, e.status, e.code)
}

// do sends a request and returns the response body of a 2xx answer.
func (c *client) do(method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	res, err := c.send(method, path, rd, "application/json", body != nil)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	return io.ReadAll(res.Body)
}

// send performs the request and turns non-2xx answers into errors.
func (c *client) send(method, path string, body io.Reader, ctype string, hasBody bool) (*http.Response, error) {
	u := strings.TrimRight(c.server, "/") + path
	if c.tenant != "" {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "tenant=" + url.QueryEscape(c.tenant)
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if hasBody {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach %s: %v", c.server, err)
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

// printJSON re-indents an API answer.
func (c *client) printJSON(b []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return fmt.Errorf("the server sent invalid JSON: %v", err)
	}
	buf.WriteByte('\n')
	_, err := c.out.Write(buf.Bytes())
	return err
}

// table prints rows under a header.
func (c *client) table(header []string, rows [][]string) {
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// fields prints key/value lines.
func (c *client) fields(kv [][2]string) {
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	for _, f := range kv {
		fmt.Fprintf(tw, "%s:\t%s\n", f[0], f[1])
	}
	tw.Flush()
}

// runClient runs one client subcommand and maps errors to exit codes.
func runClient(name string, args []string, cmds map[string]func(c *client, fs *flag.FlagSet, args []string) error, help string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, help)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "voicemail %s: unknown subcommand %q\n%s", name, args[0], help)
		return 2
	}
	fs := flag.NewFlagSet(name+" "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := clientFlags(fs)
	err := cmd(c, fs, args[1:])
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(os.Stderr)
		fmt.Fprintf(os.Stderr, "%s", help)
		fs.PrintDefaults()
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "voicemail %s %s: %v (voicemail %s -h for help)\n", name, args[0], err, name)
		return 2
	case isFlagError(err):
		fmt.Fprintf(os.Stderr, "voicemail %s %s: %v (voicemail %s -h for help)\n", name, args[0], err, name)
		return 2
	}
	fmt.Fprintf(os.Stderr, "voicemail %s %s: %v\n", name, args[0], err)
	return 1
}

// flagError marks errors from flag parsing.
type flagError struct{ error }

func isFlagError(err error) bool {
	var fe flagError
	return errors.As(err, &fe)
}

// parse parses flags and positionals, checks the count and the client settings.
func parse(c *client, fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, flagError{err}
	}
	if len(pos) != len(names) {
		if len(names) == 0 {
			return nil, usagef("unexpected argument %q", pos[0])
		}
		return nil, usagef("want %s", strings.ToUpper(strings.Join(names, " ")))
	}
	return pos, c.check()
}

func boolStr(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
