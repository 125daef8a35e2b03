// Package charttest renders the Helm chart in deploy/helm/voicemail with
// the real helm binary and checks what Kubernetes and `voicemail serve`
// would make of it. It is its own module so that the Kubernetes API types
// stay out of the server's dependencies.
package charttest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/vmserver/voicemail/config"
)

const chart = "../voicemail"

// variants are the values files rendered; "" is the chart's defaults.
var variants = []string{"", "values/s3.yaml", "values/pvc.yaml", "values/kamailio.yaml", "values/single.yaml"}

func helm(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		if p := filepath.Join(home, "go", "bin", "helm"); fileExists(p) {
			return p
		}
	}
	const hint = "helm not found: go install helm.sh/helm/v3/cmd/helm@v3.22.0 (.ci/run does)"
	if os.Getenv("CI") != "" {
		t.Fatal(hint)
	}
	t.Skip(hint)
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.Bytes()
}

func valuesArgs(v string) []string {
	if v == "" {
		return nil
	}
	return []string{"-f", v}
}

func TestLint(t *testing.T) {
	h := helm(t)
	for _, v := range variants {
		run(t, h, append([]string{"lint", "--strict", chart}, valuesArgs(v)...)...)
	}
}

// rendered is one manifest of `helm template`, decoded strictly.
type rendered struct {
	kind string
	obj  any
}

// serviceMonitor is the part of the Prometheus operator's CRD the chart
// sets; decoding strictly into it catches misspelt fields.
type serviceMonitor struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Metadata   map[string]any     `json:"metadata"`
	Spec       serviceMonitorSpec `json:"spec"`
}

type serviceMonitorSpec struct {
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	Endpoints []struct {
		Port     string `json:"port"`
		Path     string `json:"path"`
		Interval string `json:"interval"`
	} `json:"endpoints"`
}

func template(t *testing.T, values string) []rendered {
	t.Helper()
	out := run(t, helm(t), append([]string{"template", "vm", chart, "--namespace", "voice"}, valuesArgs(values)...)...)
	var docs []rendered
	for _, doc := range strings.Split(string(out), "\n---") {
		doc = strings.TrimSpace(doc)
		if doc == "" || strings.Trim(doc, "-# \n") == "" {
			continue
		}
		var head struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%s: not YAML: %v\n%s", values, err, doc)
		}
		var obj any
		switch head.Kind {
		case "Deployment":
			obj = &appsv1.Deployment{}
		case "Service":
			obj = &corev1.Service{}
		case "Secret":
			obj = &corev1.Secret{}
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		case "PersistentVolumeClaim":
			obj = &corev1.PersistentVolumeClaim{}
		case "PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		case "ServiceMonitor":
			obj = &serviceMonitor{}
		default:
			t.Fatalf("%s: no strict type for kind %q; add one to the test", values, head.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s: %s does not decode strictly: %v\n%s", values, head.Kind, err, doc)
		}
		docs = append(docs, rendered{head.Kind, obj})
	}
	return docs
}

// TestTemplateDecodesStrictly renders every variant and decodes each
// manifest into its Kubernetes type with unknown fields rejected.
func TestTemplateDecodesStrictly(t *testing.T) {
	for _, v := range variants {
		docs := template(t, v)
		kinds := map[string]int{}
		for _, d := range docs {
			kinds[d.kind]++
		}
		if kinds["Deployment"] < 1 || kinds["Service"] < 2 || kinds["Secret"] != 1 {
			t.Errorf("%s: unexpected set of manifests %v", v, kinds)
		}
		for _, d := range docs {
			if dep, ok := d.obj.(*appsv1.Deployment); ok && dep.Name == "vm-voicemail" {
				checkVoicemailPod(t, v, dep)
			}
		}
	}
}

func checkVoicemailPod(t *testing.T, v string, dep *appsv1.Deployment) {
	t.Helper()
	spec := dep.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: want one container, got %d", v, len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("%s: readiness probe must be GET /readyz", v)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("%s: liveness probe must be GET /healthz", v)
	}
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: pod must run as non-root", v)
	}
	grace := int64(0)
	if spec.TerminationGracePeriodSeconds != nil {
		grace = *spec.TerminationGracePeriodSeconds
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "10.0.0.7" // status.podIP
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = secretPlaceholder(e.ValueFrom.SecretKeyRef.Key)
		}
	}
	cfg := checkServeAccepts(t, v, c.Args, env)
	if cfg == nil {
		return
	}
	// Replicas share the keys: a webhook secret one sealed, another opens;
	// the GDPR audit one signed, another verifies.
	mounted := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounted[m.MountPath] = true
	}
	for _, k := range []string{"gdpr_key", "webhook_key"} {
		if !mounted[cfg.DataDir+"/"+k] {
			t.Errorf("%s: %s is not mounted from the Secret at %s/%s: each replica would make its own", v, k, cfg.DataDir, k)
		}
	}
	if strings.Contains(v, "kamailio") && len(cfg.SIPTrustedProxies) == 0 {
		t.Errorf("%s: with Kamailio in front, sip.trusted_proxies must name its network", v)
	}
	// The drain must outlast the longest message, and the grace the drain.
	if cfg.ShutdownDrainTimeout.Seconds() <= float64(cfg.RecordingMaxSeconds) {
		t.Errorf("%s: drain %s is not longer than recording.max_seconds %d", v, cfg.ShutdownDrainTimeout, cfg.RecordingMaxSeconds)
	}
	if float64(grace) <= cfg.ShutdownDrainTimeout.Seconds() {
		t.Errorf("%s: terminationGracePeriodSeconds %d is not longer than the drain %s", v, grace, cfg.ShutdownDrainTimeout)
	}
}

func secretPlaceholder(key string) string {
	switch key {
	case "url":
		return "postgres://voicemail@postgresql:5432/voicemail"
	case "token":
		return "0123456789abcdef0123456789abcdef"
	default:
		return "secret-" + key
	}
}

// checkServeAccepts feeds the container's arguments and environment to the
// server's own configuration loader, as `voicemail serve` would, and fails
// on any variable or flag it would not take.
func checkServeAccepts(t *testing.T, v string, args []string, env map[string]string) *config.Config {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Errorf("%s: container args %q do not start with serve", v, args)
		return nil
	}
	known := map[string]bool{}
	for _, k := range config.Keys() {
		known[k.Env] = true
	}
	for name := range env {
		if strings.HasPrefix(name, "VOICEMAIL_") && !known[name] {
			t.Errorf("%s: the chart sets %s, which voicemail serve does not read", v, name)
		}
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	config.Register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		t.Errorf("%s: serve flags %q: %v", v, args[1:], err)
		return nil
	}
	cfg, err := config.Load(fs, func(k string) (string, bool) { s, ok := env[k]; return s, ok })
	if err != nil {
		t.Errorf("%s: voicemail serve would refuse the chart's configuration: %v", v, err)
		return nil
	}
	return cfg
}

// TestKamailioConfigInSync checks that the chart ships the same Kamailio
// configuration as deploy/kamailio (`make chart` copies it).
func TestKamailioConfigInSync(t *testing.T) {
	a, err := os.ReadFile("../../kamailio/kamailio.cfg")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(chart, "files", "kamailio.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal(fmt.Sprintf("%s/files/kamailio.cfg differs from deploy/kamailio/kamailio.cfg: run make chart", chart))
	}
}
