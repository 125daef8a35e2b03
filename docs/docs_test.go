package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// root is the repository root, seen from this package.
const root = ".."

// sourceFiles returns the repository's *.go and *.md files (relative
// paths), skipping hidden folders and testdata.
func sourceFiles(t *testing.T, exts ...string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules" || name == "bin" || name == "data") {
				return filepath.SkipDir
			}
			return nil
		}
		for _, e := range exts {
			if strings.HasSuffix(name, e) {
				rel, _ := filepath.Rel(root, p)
				out = append(out, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestNoReferencesToMissingDocuments: code and pages cite docs/ pages, not
// the specification and conformance notes the project started from, which
// do not ship with the repository. The failure lists every file and line.
func TestNoReferencesToMissingDocuments(t *testing.T) {
	// Built from parts so that this file does not match itself.
	bad := regexp.MustCompile(`SPEC` + ` ?§|\b` + `CONFORM` + `ANCE` + `\b`)
	var hits []string
	files := map[string]int{}
	for _, f := range sourceFiles(t, ".go", ".md") {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if bad.MatchString(line) {
				files[f]++
				if len(hits) < 400 {
					hits = append(hits, f+":"+strconv.Itoa(i+1)+": "+strings.TrimSpace(line))
				}
			}
		}
	}
	if len(files) == 0 {
		return
	}
	names := make([]string, 0, len(files))
	for f, n := range files {
		names = append(names, f+" ("+strconv.Itoa(n)+")")
	}
	sort.Strings(names)
	t.Errorf("%d files still cite the specification or the conformance notes; replace each with a docs/ link (docs/README.md lists the pages):\n  %s\n\nlines:\n  %s",
		len(files), strings.Join(names, "\n  "), strings.Join(hits, "\n  "))
}

// TestEveryMetricDocumented: every metric name the code registers appears
// in docs/metrics.md.
func TestEveryMetricDocumented(t *testing.T) {
	doc, err := os.ReadFile("metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`Name:\s*"(voicemail_[a-z0-9_]+)"`)
	found := 0
	for _, f := range sourceFiles(t, ".go") {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAllStringSubmatch(string(b), -1) {
			found++
			if !strings.Contains(string(doc), "`"+m[1]+"`") {
				t.Errorf("metric %s (registered in %s) is not described in docs/metrics.md", m[1], f)
			}
		}
	}
	if found < 10 {
		t.Errorf("found only %d metric registrations: has the registration style changed?", found)
	}
}

// pending are pages other changes add; a link to them is not checked until
// they exist.
var pending = map[string]bool{"docs/gdpr.md": true, "docs/architecture.md": true}

// TestLinksResolve: every relative link of the manual, the README and
// testcalls/README.md names a file or folder of the repository.
func TestLinksResolve(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	pages := []string{"README.md", "testcalls/README.md"}
	for _, f := range sourceFiles(t, ".md") {
		if strings.HasPrefix(f, "docs/") {
			pages = append(pages, f)
		}
	}
	for _, p := range pages {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			rel := filepath.ToSlash(filepath.Join(filepath.Dir(p), target))
			if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
				if pending[rel] {
					t.Logf("%s links %s, not written yet", p, rel)
					continue
				}
				t.Errorf("%s: link %s: %s does not exist", p, target, rel)
			}
		}
	}
}

// TestTestcallsReadme: testcalls/README.md lists every end-to-end test and
// every sipp scenario.
func TestTestcallsReadme(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "testcalls", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(readme)
	testFunc := regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]+)\(`)
	files, _ := filepath.Glob(filepath.Join(root, "testcalls", "*_test.go"))
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range testFunc.FindAllStringSubmatch(string(b), -1) {
			if m[1] == "TestMain" {
				continue
			}
			n++
			if !strings.Contains(doc, "`"+m[1]+"`") {
				t.Errorf("testcalls/README.md does not list %s (%s)", m[1], filepath.Base(f))
			}
		}
	}
	scenarios, _ := filepath.Glob(filepath.Join(root, "testcalls", "scenarios", "*.xml"))
	load, _ := filepath.Glob(filepath.Join(root, "testcalls", "load", "*.xml"))
	for _, f := range append(scenarios, load...) {
		n++
		if !strings.Contains(doc, filepath.Base(f)) {
			t.Errorf("testcalls/README.md does not list the scenario %s", filepath.Base(f))
		}
	}
	if n < 20 {
		t.Errorf("found only %d tests and scenarios", n)
	}
}
