package archtest

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/vmserver/voicemail"

// allowed lists, for every package of the module, the packages of the
// module it may import (tests excepted). It is the picture of
// docs/architecture.md: change both together. A package missing here fails
// the test, so that a new one gets its place in the picture.
var allowed = map[string][]string{
	"cmd/voicemail":        {"api", "call", "config", "diskspace", "gdpr", "keyfile", "mail", "media", "migrate", "mwi", "prompts", "reconcile", "sip", "sipauth", "store", "store/mediastore", "web"},
	"cmd/vmload":           {"internal/siptest", "internal/udpbatch", "ivr", "media"},
	"api":                  {"diskspace", "gdpr", "keyfile", "media", "sipauth", "store"},
	"gdpr":                 {"keyfile", "phone", "store"},
	"mail":                 {"store"},
	"mwi":                  {"sip", "store"},
	"call":                 {"diskspace", "ivr", "media", "phone", "prompts", "sip", "store"},
	"sip":                  {"internal/udpbatch", "media", "sipauth", "store"},
	"sipauth":              {},
	"prompts":              {"media"},
	"ivr":                  {},
	"media":                {"internal/udpbatch"},
	"store":                {},
	"phone":                {},
	"config":               {"diskspace"},
	"diskspace":            {},
	"keyfile":              {},
	"web":                  {},
	"docs":                 {},
	"internal/pgtest":      {},
	"internal/scaleseed":   {"internal/pgtest", "store"},
	"migrate":              {"store"},
	"reconcile":            {"store"},
	"store/s3blob":         {"store"},
	"store/azureblob":      {"store"},
	"store/mediastore":     {"store", "store/azureblob", "store/s3blob"},
	"store/blobtest":       {"store"},
	"internal/toolproc":    {},
	"internal/s3test":      {"internal/toolproc"},
	"internal/azuritetest": {"internal/toolproc"},
	"internal/siptest":     {},
	"internal/udpbatch":    {},
	"internal/archtest":    {},
	"internal/testlog":     {},
	"mail/smtptest":        {},
	"testcalls":            {},
	"testcalls/mkdtmf":     {"media"},
	"testcalls/mkpcap":     {},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Module     *struct{ Path string }
}

// packages lists the module's packages with their non-test imports.
func packages(t *testing.T) []pkg {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	cmd := exec.Command(goBin, "list", "-deps", "-json", module+"/...")
	cmd.Dir = root(t)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Module != nil && p.Module.Path == module {
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no package of the module")
	}
	return pkgs
}

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func rel(path string) (string, bool) {
	if path == module {
		return ".", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

// TestImportRules fails when a package imports one of the module that
// docs/architecture.md does not allow it to.
func TestImportRules(t *testing.T) {
	for _, p := range packages(t) {
		name, _ := rel(p.ImportPath)
		ok, known := allowed[name]
		if !known {
			t.Errorf("package %s is not in docs/architecture.md and internal/archtest: give it its place", name)
			continue
		}
		for _, imp := range p.Imports {
			dep, inModule := rel(imp)
			if inModule && !slices.Contains(ok, dep) {
				t.Errorf("%s imports %s: not allowed (docs/architecture.md)", name, dep)
			}
		}
	}
}

// TestArchitectureDocNamesEveryPackage keeps docs/architecture.md true: a
// paragraph per package of the module.
func TestArchitectureDocNamesEveryPackage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for name := range allowed {
		if !strings.Contains(doc, "### `"+name+"`") {
			t.Errorf("docs/architecture.md has no section ### `%s`", name)
		}
	}
}
