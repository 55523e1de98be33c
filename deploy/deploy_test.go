package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/churnwatch/churnwatch/rules"
	"github.com/churnwatch/churnwatch/webhook"
)

// pendingMetrics are metrics being added to churnwatch alongside these
// manifests; dashboards and alerts may use them before metrics/metrics.go
// (or the package that registers them) defines them.
var (
	pendingMetrics      = []string{"churnwatch_consumer_lag", "churnwatch_source_stalled", "churnwatch_timers_pending"}
	pendingMetricPrefix = "churnwatch_kpi_"
)

// testSecret is a valid whsec_ secret for the placeholders of the manifests.
const testSecret = "whsec_MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="

// object is one Kubernetes manifest.
type object struct {
	file string
	doc  map[string]any
}

func (o object) kind() string { return str(o.doc, "kind") }
func (o object) name() string { return str(o.doc, "metadata", "name") }

// decodeAll decodes every YAML document of a file.
func decodeAll(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

// yamlFiles lists the .yaml and .yml files of dir.
func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatalf("no YAML files in %s", dir)
	}
	return out
}

// get walks maps and lists (by index) of a decoded document.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	s, _ := get(v, path...).(string)
	return s
}

func list(v any, path ...any) []any {
	l, _ := get(v, path...).([]any)
	return l
}

func dict(v any, path ...any) map[string]any {
	m, _ := get(v, path...).(map[string]any)
	return m
}

// stringMap converts a decoded map of scalars to strings.
func stringMap(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if v == nil {
			out[k] = ""
		} else {
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestKubernetes(t *testing.T) {
	const dir = "kubernetes"
	var objs []object
	files := yamlFiles(t, dir)
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		for _, d := range decodeAll(t, f) {
			o := object{file: f, doc: d}
			if o.kind() == "" || o.name() == "" || str(d, "apiVersion") == "" {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name", f)
			}
			objs = append(objs, o)
		}
	}
	byKind := map[string][]object{}
	find := func(kind, name string) (object, bool) {
		for _, o := range byKind[kind] {
			if o.name() == name {
				return o, true
			}
		}
		return object{}, false
	}
	for _, o := range objs {
		if _, dup := find(o.kind(), o.name()); dup {
			t.Errorf("%s %s defined twice", o.kind(), o.name())
		}
		byKind[o.kind()] = append(byKind[o.kind()], o)
	}
	for _, k := range []string{"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"} {
		if len(byKind[k]) == 0 {
			t.Errorf("no %s in %s", k, dir)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	t.Run("kustomization", func(t *testing.T) {
		docs := decodeAll(t, filepath.Join(dir, "kustomization.yaml"))
		if len(docs) != 1 || str(docs[0], "kind") != "Kustomization" {
			t.Fatalf("kustomization.yaml: want one Kustomization, got %v", docs)
		}
		var listed []string
		for _, r := range list(docs[0], "resources") {
			listed = append(listed, filepath.Join(dir, fmt.Sprint(r)))
		}
		var want []string
		for _, f := range files {
			if filepath.Base(f) != "kustomization.yaml" {
				want = append(want, f)
			}
		}
		sort.Strings(listed)
		if !slices.Equal(listed, want) {
			t.Errorf("kustomization resources %v, want every manifest %v", listed, want)
		}
	})

	dep := byKind["Deployment"][0]
	pod := dict(dep.doc, "spec", "template", "spec")
	podLabels := stringMap(dict(dep.doc, "spec", "template", "metadata", "labels"))
	envFromCM := map[string]string{}     // env from ConfigMaps
	envFromSecret := map[string]string{} // env from Secrets

	t.Run("Deployment", func(t *testing.T) {
		if n, _ := get(dep.doc, "spec", "replicas").(int); n != 3 {
			t.Errorf("replicas %v, want 3", get(dep.doc, "spec", "replicas"))
		}
		if !subset(stringMap(dict(dep.doc, "spec", "selector", "matchLabels")), podLabels) {
			t.Errorf("selector %v does not match the pod labels %v", get(dep.doc, "spec", "selector"), podLabels)
		}
		if g, _ := get(pod, "terminationGracePeriodSeconds").(int); g != 30 {
			t.Errorf("terminationGracePeriodSeconds %v, want 30", get(pod, "terminationGracePeriodSeconds"))
		}
		var err error
		containers := list(pod, "containers")
		if len(containers) != 1 {
			t.Fatalf("%d containers, want 1", len(containers))
		}
		c := containers[0]
		if args := fmt.Sprint(list(c, "args")); args != "[run]" {
			t.Errorf("args %s, want [run]", args)
		}
		ports := map[string]int{}
		for _, p := range list(c, "ports") {
			n, _ := get(p, "containerPort").(int)
			ports[str(p, "name")] = n
		}
		if ports["http"] != 8080 {
			t.Errorf("container ports %v, want http 8080", ports)
		}
		for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
			h := dict(c, probe, "httpGet")
			if h == nil {
				t.Errorf("%s: no httpGet", probe)
				continue
			}
			port := fmt.Sprint(h["port"])
			if str(h, "path") != path || (port != "8080" && ports[port] != 8080) {
				t.Errorf("%s: GET %v on port %s, want %s on 8080", probe, h["path"], port, path)
			}
		}
		for _, kind := range []string{"requests", "limits"} {
			for _, res := range []string{"cpu", "memory"} {
				if get(c, "resources", kind, res) == nil {
					t.Errorf("resources.%s.%s missing", kind, res)
				}
			}
		}
		if get(pod, "securityContext", "runAsNonRoot") != true && get(c, "securityContext", "runAsNonRoot") != true {
			t.Error("runAsNonRoot is not set")
		}
		if get(c, "securityContext", "readOnlyRootFilesystem") != true {
			t.Error("readOnlyRootFilesystem is not set")
		}
		if get(c, "securityContext", "allowPrivilegeEscalation") != false {
			t.Error("allowPrivilegeEscalation is not false")
		}

		// env from the ConfigMap and the Secret, both defined here
		for _, ef := range list(c, "envFrom") {
			if name := str(ef, "configMapRef", "name"); name != "" {
				cm, ok := find("ConfigMap", name)
				if !ok {
					t.Errorf("envFrom: ConfigMap %s not defined", name)
				}
				for k, v := range stringMap(dict(cm.doc, "data")) {
					envFromCM[k] = v
				}
			}
			if name := str(ef, "secretRef", "name"); name != "" {
				s, ok := find("Secret", name)
				if !ok {
					t.Errorf("envFrom: Secret %s not defined", name)
				}
				for k, v := range stringMap(dict(s.doc, "stringData")) {
					envFromSecret[k] = v
				}
			}
		}
		if len(envFromCM) == 0 || len(envFromSecret) == 0 {
			t.Errorf("env must come from a ConfigMap and a Secret: %v", list(c, "envFrom"))
		}

		// the files under the mounts, from ConfigMaps defined here
		files := mountedFiles(t, c, pod, find)
		env := func(name string) string {
			for _, e := range list(c, "env") {
				if str(e, "name") == name {
					return str(e, "value")
				}
			}
			return envFromCM[name]
		}
		rulesPath, whPath := env("CHURNWATCH_RULES"), env("CHURNWATCH_WEBHOOKS")
		if rulesPath != "/etc/churnwatch/rules.yaml" {
			t.Errorf("CHURNWATCH_RULES %q, want /etc/churnwatch/rules.yaml", rulesPath)
		}
		set := rules.Builtin()
		if src, ok := files[rulesPath]; !ok {
			t.Errorf("CHURNWATCH_RULES %s is not a mounted file (mounted: %v)", rulesPath, keys(files))
		} else if set, err = rules.Load("rules.yaml", []byte(src)); err != nil {
			t.Errorf("the rules ConfigMap does not load: %v", err)
		} else if len(set.Rules) == 0 {
			t.Error("the rules ConfigMap has no rules")
		}
		src, ok := files[whPath]
		if !ok {
			t.Fatalf("CHURNWATCH_WEBHOOKS %q is not a mounted file (mounted: %v)", whPath, keys(files))
		}
		// ${NAME} must come from the Secret (or the ConfigMap); the
		// placeholders stand for valid values.
		lookup := func(name string) (string, bool) {
			v, ok := envFromSecret[name]
			if !ok {
				v, ok = envFromCM[name]
			}
			if strings.HasPrefix(v, "whsec_") {
				v = testSecret
			}
			return v, ok
		}
		cfg, err := webhook.LoadConfig("webhooks.yaml", []byte(src), lookup)
		if err != nil {
			t.Fatalf("the webhooks ConfigMap does not load with the Secret's keys: %v", err)
		}
		if len(cfg.Endpoints) == 0 {
			t.Error("the webhooks ConfigMap has no endpoints")
		}
		if err := cfg.CheckRules(func(id string) bool { return set.Get(id) != nil }); err != nil {
			t.Errorf("the webhooks ConfigMap names rules the rules ConfigMap lacks: %v", err)
		}
	})

	t.Run("Secret", func(t *testing.T) {
		for _, s := range byKind["Secret"] {
			if dict(s.doc, "data") != nil {
				t.Errorf("Secret %s: use stringData placeholders, not data", s.name())
			}
			if len(dict(s.doc, "stringData")) == 0 {
				t.Errorf("Secret %s: no stringData", s.name())
			}
			for k, v := range stringMap(dict(s.doc, "stringData")) {
				if !strings.Contains(v, "CHANGE_ME") {
					t.Errorf("Secret %s: %s is not a CHANGE_ME placeholder", s.name(), k)
				}
			}
		}
		if _, ok := envFromSecret["CHURNWATCH_REDIS"]; !ok {
			t.Error("CHURNWATCH_REDIS (which may carry a password) is not in the Secret")
		}
	})

	t.Run("Service", func(t *testing.T) {
		svc := byKind["Service"][0]
		if !subset(stringMap(dict(svc.doc, "spec", "selector")), podLabels) {
			t.Errorf("selector %v does not select the pods %v", get(svc.doc, "spec", "selector"), podLabels)
		}
		ok := false
		for _, p := range list(svc.doc, "spec", "ports") {
			if str(p, "name") == "http" && fmt.Sprint(get(p, "port")) == "8080" {
				ok = true
			}
		}
		if !ok {
			t.Errorf("no port 8080 named http: %v", get(svc.doc, "spec", "ports"))
		}
		ann := stringMap(dict(svc.doc, "metadata", "annotations"))
		if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != "8080" || ann["prometheus.io/path"] != "/metrics" {
			t.Errorf("scrape annotations %v", ann)
		}
	})

	t.Run("PodDisruptionBudget", func(t *testing.T) {
		pdb := byKind["PodDisruptionBudget"][0]
		if !subset(stringMap(dict(pdb.doc, "spec", "selector", "matchLabels")), podLabels) {
			t.Errorf("selector %v does not select the pods %v", get(pdb.doc, "spec", "selector"), podLabels)
		}
		minA, hasMin := get(pdb.doc, "spec", "minAvailable").(int)
		maxU, hasMax := get(pdb.doc, "spec", "maxUnavailable").(int)
		switch {
		case hasMin == hasMax:
			t.Error("set exactly one of minAvailable and maxUnavailable (as a number)")
		case hasMin && (minA < 1 || minA >= 3):
			t.Errorf("minAvailable %d with 3 replicas", minA)
		case hasMax && (maxU < 1 || maxU >= 3):
			t.Errorf("maxUnavailable %d with 3 replicas", maxU)
		}
	})
}

// mountedFiles returns the files a container sees under its volume mounts
// of ConfigMaps (directly or projected), by path, with their content.
func mountedFiles(t *testing.T, c any, pod map[string]any, find func(kind, name string) (object, bool)) map[string]string {
	t.Helper()
	volumes := map[string]any{}
	for _, v := range list(pod, "volumes") {
		volumes[str(v, "name")] = v
	}
	out := map[string]string{}
	for _, m := range list(c, "volumeMounts") {
		if get(m, "readOnly") != true {
			t.Errorf("volume mount %s is not readOnly", str(m, "name"))
		}
		v, ok := volumes[str(m, "name")]
		if !ok {
			t.Errorf("volume mount %s: no such volume", str(m, "name"))
			continue
		}
		var sources []any
		if cm := dict(v, "configMap"); cm != nil {
			sources = append(sources, cm)
		}
		for _, s := range list(v, "projected", "sources") {
			if cm := dict(s, "configMap"); cm != nil {
				sources = append(sources, cm)
			}
		}
		for _, src := range sources {
			cm, ok := find("ConfigMap", str(src, "name"))
			if !ok {
				t.Errorf("volume %s: ConfigMap %s not defined", str(m, "name"), str(src, "name"))
				continue
			}
			data := stringMap(dict(cm.doc, "data"))
			items := list(src, "items")
			if items == nil {
				for k := range data {
					items = append(items, map[string]any{"key": k, "path": k})
				}
			}
			for _, it := range items {
				content, ok := data[str(it, "key")]
				if !ok {
					t.Errorf("volume %s: ConfigMap %s has no key %s", str(m, "name"), cm.name(), str(it, "key"))
				}
				out[filepath.Join(str(m, "mountPath"), str(it, "path"))] = content
			}
		}
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// alertRule is one rule of a Prometheus rule file.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadAlertRules(t *testing.T) []alertRule {
	t.Helper()
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string      `yaml:"name"`
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var out []alertRule
	for _, g := range f.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("alerts.yml: group %q without a name or rules", g.Name)
		}
		out = append(out, g.Rules...)
	}
	return out
}

func TestPrometheus(t *testing.T) {
	// every YAML file parses
	for _, f := range yamlFiles(t, "prometheus") {
		if len(decodeAll(t, f)) == 0 {
			t.Errorf("%s is empty", f)
		}
	}

	t.Run("alerts", func(t *testing.T) {
		seen := map[string]bool{}
		for _, r := range loadAlertRules(t) {
			if r.Alert == "" {
				t.Errorf("a rule without alert: %+v", r)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("%s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: no expr", r.Alert)
			} else if err := balanced(r.Expr); err != nil {
				t.Errorf("%s: expr: %v", r.Alert, err)
			}
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("%s: labels.severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: annotations.summary and annotations.description are required", r.Alert)
			}
			for k, v := range r.Annotations {
				if err := balancedTemplate(v); err != nil {
					t.Errorf("%s: annotations.%s: %v", r.Alert, k, err)
				}
			}
		}
		// what each alert watches: a metric its expression must read
		for metric, what := range map[string]string{
			"churnwatch_consumer_lag":            "consumer lag",
			"churnwatch_source_stalled":          "stalled source partitions",
			"churnwatch_watermark_delay_seconds": "watermark delay",
			"churnwatch_dead_letters_total":      "dead-letter rate",
			"churnwatch_webhook_attempts_total":  "webhook failures",
			"churnwatch_webhook_dead_letters":    "webhook dead letters",
			"churnwatch_errors_total":            "errors",
			"up":                                 "instance down",
		} {
			found := false
			for _, r := range loadAlertRules(t) {
				if slices.Contains(metricNames(r.Expr, ""), metric) {
					found = true
				}
			}
			if !found {
				t.Errorf("no alert on %s (%s)", what, metric)
			}
		}
	})

	t.Run("config", func(t *testing.T) {
		docs := decodeAll(t, "prometheus/prometheus.yml")
		if len(docs) != 1 {
			t.Fatalf("prometheus.yml: %d documents", len(docs))
		}
		for _, rf := range list(docs[0], "rule_files") {
			if _, err := os.Stat(filepath.Join("prometheus", fmt.Sprint(rf))); err != nil {
				t.Errorf("rule_files: %v", err)
			}
		}
		var targets []string
		for _, sc := range list(docs[0], "scrape_configs") {
			if str(sc, "job_name") != "churnwatch" {
				continue
			}
			if p := str(sc, "metrics_path"); p != "" && p != "/metrics" {
				t.Errorf("churnwatch metrics_path %q", p)
			}
			for _, s := range list(sc, "static_configs") {
				for _, tg := range list(s, "targets") {
					targets = append(targets, fmt.Sprint(tg))
				}
			}
		}
		if !slices.Contains(targets, "churnwatch:8080") {
			t.Errorf("job churnwatch scrapes %v, want churnwatch:8080", targets)
		}
	})

	// promtool is not required; where it is installed it has the last word.
	if promtool, err := exec.LookPath("promtool"); err == nil {
		for _, args := range [][]string{{"check", "rules", "prometheus/alerts.yml"}, {"check", "config", "--syntax-only", "prometheus/prometheus.yml"}} {
			if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
				t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	}
}

// balanced checks that brackets and quotes of a PromQL expression pair up.
func balanced(expr string) error {
	var stack []rune
	pair := map[rune]rune{')': '(', ']': '[', '}': '{'}
	var quote rune
	for i, r := range expr {
		switch {
		case quote != 0:
			if r == quote && (i == 0 || expr[i-1] != '\\') {
				quote = 0
			}
		case r == '"' || r == '\'' || r == '`':
			quote = r
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case r == ')' || r == ']' || r == '}':
			if len(stack) == 0 || stack[len(stack)-1] != pair[r] {
				return fmt.Errorf("unbalanced %q at %d", r, i)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if quote != 0 || len(stack) > 0 {
		return fmt.Errorf("unclosed %q", append(stack, quote))
	}
	return nil
}

func balancedTemplate(s string) error {
	if strings.Count(s, "{{") != strings.Count(s, "}}") {
		return fmt.Errorf("unbalanced {{ }} in %q", s)
	}
	return nil
}

// dashboardExprs returns every PromQL expression of a Grafana dashboard:
// panel targets (in rows too) and query variables, by where they are.
func dashboardExprs(t *testing.T, path string) (map[string]string, map[string]any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]string{}
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && (k == "expr" || k == "query" || k == "definition") {
					out[where+"."+k] = s
				}
				walk(where+"."+k, e)
			}
		case []any:
			for i, e := range x {
				if title := str(e, "title"); title != "" {
					walk(fmt.Sprintf("%s[%q]", where, title), e)
				} else {
					walk(fmt.Sprintf("%s[%d]", where, i), e)
				}
			}
		}
	}
	walk("", d)
	return out, d
}

func TestGrafanaDashboard(t *testing.T) {
	const path = "grafana/dashboards/churnwatch.json"
	exprs, d := dashboardExprs(t, path)
	if v, _ := d["schemaVersion"].(float64); v < 36 {
		t.Errorf("schemaVersion %v, want a current one (≥ 36)", d["schemaVersion"])
	}
	if str(d, "uid") == "" || str(d, "title") == "" {
		t.Error("uid and title are required")
	}
	ids := map[float64]string{}
	var all []string
	var panels []any
	for _, p := range list(d, "panels") {
		panels = append(panels, p)
		panels = append(panels, list(p, "panels")...) // collapsed rows
	}
	for _, p := range panels {
		title := str(p, "title")
		id, _ := get(p, "id").(float64)
		if other, dup := ids[id]; dup {
			t.Errorf("panels %q and %q share id %v", other, title, id)
		}
		ids[id] = title
		x, _ := get(p, "gridPos", "x").(float64)
		w, _ := get(p, "gridPos", "w").(float64)
		if w <= 0 || x+w > 24 {
			t.Errorf("panel %q: gridPos %v", title, get(p, "gridPos"))
		}
		if str(p, "type") == "row" {
			continue
		}
		targets := list(p, "targets")
		if title == "" || len(targets) == 0 {
			t.Errorf("panel %v has no title or no targets", get(p, "gridPos"))
		}
		for _, tg := range targets {
			e := str(tg, "expr")
			if e == "" {
				t.Errorf("panel %q: a target without expr", title)
			}
			if err := balanced(e); err != nil {
				t.Errorf("panel %q: %s: %v", title, e, err)
			}
			all = append(all, e)
		}
	}
	// a panel for each of these metrics
	for _, m := range []string{
		"churnwatch_events_in_total", "churnwatch_dead_letters_total", "churnwatch_alerts_total",
		"churnwatch_batch_duration_seconds_bucket", "churnwatch_watermark_delay_seconds",
		"churnwatch_event_to_alert_seconds_bucket", "churnwatch_timers_fired_total", "churnwatch_errors_total",
		"churnwatch_webhook_attempts_total", "churnwatch_webhook_pending", "churnwatch_webhook_dead_letters",
		"churnwatch_webhook_suppressed_total", "churnwatch_consumer_lag", "churnwatch_source_stalled",
		"churnwatch_timers_pending", "churnwatch_kpi_retention_rate_percent", "churnwatch_kpi_churn_rate_percent",
		"churnwatch_kpi_nps",
	} {
		found := false
		for _, e := range all {
			if slices.Contains(metricNames(e, ""), m) {
				found = true
			}
		}
		if !found {
			t.Errorf("no panel reads %s", m)
		}
	}
	if len(exprs) < len(all) {
		t.Errorf("found %d expressions walking the JSON, %d in the panels", len(exprs), len(all))
	}

	t.Run("provisioning", func(t *testing.T) {
		ds := decodeAll(t, "grafana/provisioning/datasources/prometheus.yml")
		if len(ds) != 1 || str(ds[0], "datasources", 0, "type") != "prometheus" || str(ds[0], "datasources", 0, "url") == "" {
			t.Errorf("datasources: want one of type prometheus with a url: %v", ds)
		}
		dp := decodeAll(t, "grafana/provisioning/dashboards/churnwatch.yml")
		if len(dp) != 1 || str(dp[0], "providers", 0, "options", "path") == "" {
			t.Errorf("dashboards: want one provider with options.path: %v", dp)
		}
	})
}

// TestMetricNames: every churnwatch_ metric an alert or a dashboard reads
// is one churnwatch exports (or one being added now), so that a misspelt
// name fails here rather than showing an empty panel or a silent alert.
func TestMetricNames(t *testing.T) {
	known, histograms := definedMetrics(t, "../metrics")
	for _, want := range []string{"churnwatch_events_in_total", "churnwatch_batch_duration_seconds", "churnwatch_webhook_dead_letters"} {
		if !known[want] {
			t.Fatalf("reading ../metrics found %d names, not %s: %v", len(known), want, keys(known))
		}
	}
	if !histograms["churnwatch_batch_duration_seconds"] || histograms["churnwatch_events_in_total"] {
		t.Fatalf("histograms found in ../metrics: %v", keys(histograms))
	}
	check := func(name string) bool {
		if known[name] || slices.Contains(pendingMetrics, name) || strings.HasPrefix(name, pendingMetricPrefix) {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && histograms[base] {
				return true
			}
		}
		return false
	}
	// the check itself
	for name, ok := range map[string]bool{
		"churnwatch_events_in_total": true, "churnwatch_events_in_totl": false,
		"churnwatch_batch_duration_seconds_bucket": true, "churnwatch_events_in_total_bucket": false,
		"churnwatch_consumer_lag": true, "churnwatch_kpi_nps": true, "churnwatch_consumer_lags": false,
	} {
		if check(name) != ok {
			t.Fatalf("check(%s) = %v", name, !ok)
		}
	}
	if got := metricNames(`sum(rate(churnwatch_a_total{job="churnwatch_b"}[1m])) / churnwatch_c`, "churnwatch_"); !slices.Equal(got, []string{"churnwatch_a_total", "churnwatch_c"}) {
		t.Fatalf("metricNames: %v", got)
	}

	used := map[string][]string{} // name → where
	for _, r := range loadAlertRules(t) {
		for _, n := range metricNames(r.Expr, "churnwatch_") {
			used[n] = append(used[n], "alert "+r.Alert)
		}
	}
	exprs, _ := dashboardExprs(t, "grafana/dashboards/churnwatch.json")
	for where, e := range exprs {
		for _, n := range metricNames(e, "churnwatch_") {
			used[n] = append(used[n], "dashboard "+where)
		}
	}
	if len(used) < 10 {
		t.Errorf("only %d metric names found in the alerts and the dashboard", len(used))
	}
	for _, n := range keys(used) {
		if !check(n) {
			t.Errorf("%s is not a churnwatch metric (used by %s)", n, strings.Join(used[n], ", "))
		}
	}
}

var (
	promString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promIdent  = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
)

// metricNames returns the identifiers of a PromQL expression that start
// with prefix, string literals (label values) left out, in order, once.
func metricNames(expr, prefix string) []string {
	expr = promString.ReplaceAllString(expr, `""`)
	var out []string
	for _, id := range promIdent.FindAllString(expr, -1) {
		if strings.HasPrefix(id, prefix) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// definedMetrics reads the metric names registered by the Go files of dir:
// the Name of every prometheus.{Counter,Gauge,Histogram,Summary}Opts
// literal (with Namespace and Subsystem when set) and the first argument of
// prometheus.NewDesc. It also returns which are histograms or summaries,
// whose series carry the _bucket, _sum and _count suffixes.
func definedMetrics(t *testing.T, dir string) (names, histograms map[string]bool) {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	names, histograms = map[string]bool{}, map[string]bool{}
	lit := func(e ast.Expr) string {
		if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.STRING {
			if s, err := strconv.Unquote(b.Value); err == nil {
				return s
			}
		}
		return ""
	}
	isPrometheus := func(e ast.Expr, names ...string) (string, bool) {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return "", false
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "prometheus" || !slices.Contains(names, sel.Sel.Name) {
			return "", false
		}
		return sel.Sel.Name, true
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.CompositeLit:
				kind, ok := isPrometheus(x.Type, "CounterOpts", "GaugeOpts", "HistogramOpts", "SummaryOpts")
				if !ok {
					return true
				}
				var parts [3]string // namespace, subsystem, name
				for _, el := range x.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					if k, ok := kv.Key.(*ast.Ident); ok {
						if i := slices.Index([]string{"Namespace", "Subsystem", "Name"}, k.Name); i >= 0 {
							parts[i] = lit(kv.Value)
						}
					}
				}
				var nonEmpty []string
				for _, p := range parts {
					if p != "" {
						nonEmpty = append(nonEmpty, p)
					}
				}
				if parts[2] != "" {
					name := strings.Join(nonEmpty, "_")
					names[name] = true
					if kind == "HistogramOpts" || kind == "SummaryOpts" {
						histograms[name] = true
					}
				}
			case *ast.CallExpr:
				if _, ok := isPrometheus(x.Fun, "NewDesc"); ok && len(x.Args) > 0 {
					if name := lit(x.Args[0]); name != "" {
						names[name] = true
					}
				}
			}
			return true
		})
	}
	return names, histograms
}
