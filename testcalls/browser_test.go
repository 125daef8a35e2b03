package testcalls

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Helpers for the browser tests of the web inbox and admin console
// (web_test.go): Debian's chromium, headless, driven with chromedp.

// browserSlots bounds the Chromium instances alive at once (the machines
// that run `make test` have few cores).
var browserSlots = make(chan struct{}, 2)

// requireChromium returns the browser's path; it skips when it is missing,
// unless CI is set: then it fails.
func requireChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const why = "chromium is not installed (apt-get install chromium)"
	if os.Getenv("CI") == "" {
		t.Skip(why)
	}
	t.Fatal(why + " (CI is set, so this is a failure)")
	return ""
}

// browser is one headless Chromium with a tab on the server under test.
type browser struct {
	t    *testing.T
	s    *server
	root context.Context // the first tab; tabs share its browser
	out  string          // screenshots
	mu   sync.Mutex
	logs []string // console messages of every tab
}

// tab is one page of a browser.
type tab struct {
	b    *browser
	ctx  context.Context
	name string
}

// outDir is testcalls/out/<test name>: screenshots for a reviewer (not
// committed).
func outDir(t *testing.T) string {
	dir := filepath.Join(testDir, "out", regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newBrowser starts Chromium (fresh profile) for s and opens a first tab.
func newBrowser(t *testing.T, s *server) *tab {
	t.Helper()
	path := requireChromium(t)
	browserSlots <- struct{}{}
	t.Cleanup(func() { <-browserSlots })
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// getUserMedia answers with Chromium's fake microphone (a beep).
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{t: t, s: s, out: outDir(t)}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		acancel()
		if t.Failed() {
			b.mu.Lock()
			t.Logf("browser console:\n%s", strings.Join(b.logs, "\n"))
			b.mu.Unlock()
		}
	})
	b.root = ctx
	tb := &tab{b: b, ctx: ctx, name: "tab1"}
	tb.follow()
	return tb
}

// newTab opens another tab in the same browser (its own sessionStorage).
func (b *browser) newTab(name string) *tab {
	ctx, cancel := chromedp.NewContext(b.root)
	b.t.Cleanup(cancel)
	tb := &tab{b: b, ctx: ctx, name: name}
	tb.follow()
	return tb
}

// follow records the tab's console; a Content-Security-Policy violation
// fails the test (the console must run under the strict policy).
func (tb *tab) follow() {
	msgs := chromedp.Console(tb.ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			line := fmt.Sprintf("[%s] %s", tb.name, m.String())
			tb.b.mu.Lock()
			tb.b.logs = append(tb.b.logs, line)
			tb.b.mu.Unlock()
			if strings.Contains(m.Text, "Content Security Policy") {
				tb.b.t.Errorf("CSP violation: %s", line)
			}
		}
	}()
}

// do runs the steps with a deadline; a failure fails the test with a
// screenshot of the page.
func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.shot("failed")
		tb.b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression (promises awaited) into out.
func (tb *tab) eval(expr string, out any) {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 45*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.shot("failed")
		tb.b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			tb.b.t.Fatalf("evaluate %s: %v (%s)", expr, err, raw)
		}
	}
}

// waitJS polls a JavaScript condition until it is truthy.
func (tb *tab) waitJS(what, cond string, timeout time.Duration) {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		tb.shot("failed")
		tb.b.t.Fatalf("waiting for %s (%s): %v", what, cond, err)
	}
}

// text returns the textContent of the first match of a CSS selector ("" if none).
func (tb *tab) text(sel string) string {
	var s string
	tb.eval(fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? "")`, sel), &s)
	return s
}

// shot saves a PNG of the whole page as <out>/<name>.png and returns its path.
func (tb *tab) shot(name string) string {
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	p := filepath.Join(tb.b.out, name+".png")
	if err := os.WriteFile(p, png, 0o640); err != nil {
		tb.b.t.Logf("screenshot %s: %v", name, err)
	}
	return p
}

// open loads a page of the console.
func (tb *tab) open(path string) {
	tb.b.t.Helper()
	tb.do("open "+path, chromedp.Navigate(tb.b.s.url(path)), chromedp.WaitReady(chromedp.CSS("body")))
}

// signIn fills the inbox sign-in form.
func (tb *tab) signIn(mailbox, pin string) {
	tb.b.t.Helper()
	tb.do("sign in as "+mailbox,
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SetValue(chromedp.CSS("#login-mailbox"), mailbox),
		chromedp.SetValue(chromedp.CSS("#login-pin"), pin),
		chromedp.Click(chromedp.CSS("#login-submit")))
}

// adminSignIn fills the admin sign-in form with a token.
func (tb *tab) adminSignIn(token, tenant string) {
	tb.b.t.Helper()
	tb.do("admin sign-in",
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SetValue(chromedp.CSS("#login-token"), token),
		setValue("#login-tenant", tenant),
		chromedp.Click(chromedp.CSS("#login-submit")))
}

// setValue sets an input's value by script (chromedp.SetValue refuses "").
func setValue(sel, v string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = %q`, sel, v))
}

// mediaResponse is one HTTP response the page's media elements received.
type mediaResponse struct {
	url, contentRange string
	status            int64
}

// mediaResponses starts recording the responses to the tab's media
// requests (<audio> and <video>); the func returns those so far.
func (tb *tab) mediaResponses() func() []mediaResponse {
	var mu sync.Mutex
	var out []mediaResponse
	evs := chromedp.Events(tb.ctx, network.ResponseReceived)
	go func() {
		for ev, err := range evs {
			if err != nil {
				return
			}
			if ev.Type != network.ResourceTypeMedia || ev.Response == nil {
				continue
			}
			r := mediaResponse{url: ev.Response.URL, status: ev.Response.Status}
			for k, v := range ev.Response.Headers {
				if strings.EqualFold(k, "Content-Range") {
					r.contentRange = fmt.Sprint(v)
				}
			}
			mu.Lock()
			out = append(out, r)
			mu.Unlock()
		}
	}()
	return func() []mediaResponse {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(out)
	}
}

// covered reports whether the responses (200, or 206 with Content-Range)
// together carry every byte of a size-byte resource.
func covered(rs []mediaResponse, size int) bool {
	have := make([]bool, size)
	for _, r := range rs {
		switch {
		case r.status == 200:
			return true
		case r.status == 206:
			var a, b, total int
			if _, err := fmt.Sscanf(r.contentRange, "bytes %d-%d/%d", &a, &b, &total); err != nil || total != size {
				continue
			}
			for i := a; i <= b && i < size; i++ {
				have[i] = true
			}
		}
	}
	return !slices.Contains(have, false)
}

// copyToDocs copies a screenshot to docs/<name> when UPDATE_DOCS is set
// (make docs-screenshots): the README's pictures come from these tests.
func copyToDocs(t *testing.T, shot, name string) {
	if os.Getenv("UPDATE_DOCS") == "" || shot == "" {
		return
	}
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repoRoot, "docs", name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
