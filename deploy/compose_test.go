// Package deploy holds the container image and the local stack; its test
// checks that docker-compose accepts the stack as ops will run it.
package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/churnwatch/churnwatch/rules"
	"github.com/churnwatch/churnwatch/webhook"
)

// composeService is a service of the effective configuration that
// `docker-compose config` prints.
type composeService struct {
	Image       string         `yaml:"image"`
	Command     any            `yaml:"command"`
	DependsOn   map[string]any `yaml:"depends_on"`
	Build       map[string]any `yaml:"build"`
	Health      map[string]any `yaml:"healthcheck"`
	Environment map[string]any `yaml:"environment"`
	Volumes     []any          `yaml:"volumes"`
	Ports       []any          `yaml:"ports"`
	ReadOnly    bool           `yaml:"read_only"`
}

// composeConfig returns the effective configuration of ../docker-compose.yml.
func composeConfig(t *testing.T) map[string]composeService {
	t.Helper()
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		if os.Getenv("CHURNWATCH_CI") != "" {
			t.Fatal("docker-compose not installed; .ci/run installs it (apt-get install docker-compose)")
		}
		t.Skip("docker-compose not installed (apt-get install docker-compose)")
	}
	out, err := exec.Command(bin, "-f", "../docker-compose.yml", "config").CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	var cfg struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("parse the effective configuration: %v", err)
	}
	return cfg.Services
}

func TestComposeConfig(t *testing.T) {
	services := composeConfig(t)
	for _, name := range []string{"kafka", "redis", "churnwatch"} {
		if _, ok := services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	if k := services["kafka"]; !strings.HasPrefix(k.Image, "apache/kafka") || k.Health == nil {
		t.Errorf("kafka: image %q, healthcheck %v", k.Image, k.Health)
	}
	if r := services["redis"]; !strings.Contains(strings.Join(toStrings(r.Command), " "), "--appendonly yes") {
		t.Errorf("redis must run with AOF: %v", r.Command)
	}
	cw := services["churnwatch"]
	if cw.Build["dockerfile"] != "deploy/Dockerfile" {
		t.Errorf("churnwatch build %v", cw.Build)
	}
	for _, dep := range []string{"kafka", "redis"} {
		if _, ok := cw.DependsOn[dep]; !ok {
			t.Errorf("churnwatch does not wait for %s", dep)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	if list, ok := v.([]any); ok {
		for _, x := range list {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// mount is a volume of a service: a bind mount of a file or directory of
// the repository, or a named volume.
type mount struct {
	source, target string
	bind, readOnly bool
}

// mounts reads the short ("src:dst:ro") and long forms of volumes.
func (s composeService) mounts() []mount {
	var out []mount
	for _, v := range s.Volumes {
		switch x := v.(type) {
		case string:
			parts := strings.Split(x, ":")
			m := mount{source: parts[0]}
			if len(parts) > 1 {
				m.target = parts[1]
			}
			m.readOnly = len(parts) > 2 && strings.Contains(parts[2], "ro")
			m.bind = strings.HasPrefix(m.source, "/") || strings.HasPrefix(m.source, ".")
			out = append(out, m)
		case map[string]any:
			m := mount{source: fmt.Sprint(x["source"]), target: fmt.Sprint(x["target"])}
			m.bind = x["type"] == "bind"
			m.readOnly = x["read_only"] == true
			out = append(out, m)
		}
	}
	return out
}

// file returns the host path mounted at target, or "".
func (s composeService) file(target string) string {
	for _, m := range s.mounts() {
		if m.bind && m.target == target {
			return m.source
		}
	}
	return ""
}

func (s composeService) env(name string) string {
	if v, ok := s.Environment[name]; ok && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

func (s composeService) publishes(port string) bool {
	for _, p := range s.Ports {
		switch x := p.(type) {
		case string:
			if strings.HasPrefix(x, port+":") || strings.Contains(x, ":"+port+":") {
				return true
			}
		case map[string]any:
			if fmt.Sprint(x["published"]) == port {
				return true
			}
		}
	}
	return false
}

// TestComposeStack checks the whole local stack: every service is there,
// waits for what it needs in a way compose can honour, mounts files that
// exist, read-only, and is wired to the others.
func TestComposeStack(t *testing.T) {
	services := composeConfig(t)
	for _, name := range []string{"kafka", "redis", "churnwatch", "webhook-sink", "loadgen", "prometheus", "grafana"} {
		if _, ok := services[name]; !ok {
			t.Fatalf("service %s missing", name)
		}
	}

	// The churnwatch image is distroless (no shell, no HTTP client): its
	// services cannot run a healthcheck; every other service has one.
	ours := func(s composeService) bool { return s.Build["dockerfile"] == "deploy/Dockerfile" }
	for name, s := range services {
		hasCheck := s.Health != nil && s.Health["test"] != nil && s.Health["disable"] != true
		switch {
		case ours(s) && hasCheck:
			t.Errorf("%s runs the distroless churnwatch image, which cannot run a healthcheck: %v", name, s.Health)
		case !ours(s) && !hasCheck:
			t.Errorf("%s has no healthcheck", name)
		}
		if ours(s) && !s.ReadOnly {
			t.Errorf("%s: the churnwatch image needs no writable root filesystem; set read_only: true", name)
		}
		// A condition compose can satisfy: service_healthy needs a healthcheck.
		for dep, v := range s.DependsOn {
			target, ok := services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
				continue
			}
			cond, _ := v.(map[string]any)["condition"].(string)
			switch {
			case cond == "":
				t.Errorf("%s: depends_on %s without a condition", name, dep)
			case cond == "service_healthy" && target.Health == nil:
				t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			}
		}
		// Bind mounts are files of the repository, mounted read-only.
		for _, m := range s.mounts() {
			if !m.bind {
				continue
			}
			if _, err := os.Stat(m.source); err != nil {
				t.Errorf("%s mounts a missing file: %v", name, err)
			}
			if !m.readOnly {
				t.Errorf("%s: bind mount %s is not read-only", name, m.target)
			}
		}
	}

	wantDeps := map[string]map[string]string{
		"churnwatch": {"kafka": "service_healthy", "redis": "service_healthy", "webhook-sink": "service_started"},
		"loadgen":    {"kafka": "service_healthy", "churnwatch": "service_started"},
		"prometheus": {"churnwatch": "service_started"},
		"grafana":    {"prometheus": "service_healthy"},
	}
	for name, deps := range wantDeps {
		for dep, cond := range deps {
			v, _ := services[name].DependsOn[dep].(map[string]any)
			if v["condition"] != cond {
				t.Errorf("%s: depends_on %s %v, want condition %s", name, dep, services[name].DependsOn[dep], cond)
			}
		}
	}

	cw, sink, lg := services["churnwatch"], services["webhook-sink"], services["loadgen"]
	t.Run("webhooks", func(t *testing.T) {
		if got := strings.Join(toStrings(sink.Command), " "); got != "webhook-sink --listen :9000" || !ours(sink) {
			t.Errorf("webhook-sink: command %q, build %v", got, sink.Build)
		}
		secret := sink.env("CHURNWATCH_SINK_SECRET")
		if _, err := webhook.ParseSecret(secret); err != nil {
			t.Errorf("webhook-sink: CHURNWATCH_SINK_SECRET: %v", err)
		}
		whPath := cw.env("CHURNWATCH_WEBHOOKS")
		host := cw.file(whPath)
		if whPath == "" || host == "" {
			t.Fatalf("churnwatch: CHURNWATCH_WEBHOOKS %q is not a mounted file", whPath)
		}
		b, err := os.ReadFile(host)
		if err != nil {
			t.Fatal(err)
		}
		lookup := func(name string) (string, bool) {
			v, ok := cw.Environment[name]
			if !ok || v == nil {
				return "", false
			}
			return fmt.Sprint(v), true
		}
		cfg, err := webhook.LoadConfig(host, b, lookup)
		if err != nil {
			t.Fatalf("the webhooks file does not load with churnwatch's environment: %v", err)
		}
		if err := cfg.CheckRules(func(id string) bool { return rules.Builtin().Get(id) != nil }); err != nil {
			t.Error(err)
		}
		want, _ := webhook.ParseSecret(secret)
		if len(cfg.Endpoints) != 1 || cfg.Endpoints[0].URL != "http://webhook-sink:9000/" {
			t.Fatalf("want one endpoint, http://webhook-sink:9000/: %+v", cfg.Endpoints)
		}
		if ep := cfg.Endpoints[0]; len(ep.Secrets) == 0 || !bytes.Equal(ep.Secrets[0], want) {
			t.Error("churnwatch signs with another secret than the sink verifies")
		}
	})

	t.Run("loadgen", func(t *testing.T) {
		if got := strings.Join(toStrings(lg.Command), " "); got != "loadgen --rate 200 --customers 5000 --history-days 30" || !ours(lg) {
			t.Errorf("loadgen: command %q, build %v", got, lg.Build)
		}
		if b := lg.env("CHURNWATCH_BROKERS"); b != "kafka:9092" {
			t.Errorf("loadgen: CHURNWATCH_BROKERS %q", b)
		}
	})

	t.Run("prometheus", func(t *testing.T) {
		p := services["prometheus"]
		if !strings.HasPrefix(p.Image, "prom/prometheus") {
			t.Errorf("prometheus image %q", p.Image)
		}
		cfgPath := "/etc/prometheus/prometheus.yml"
		for _, a := range toStrings(p.Command) {
			if v, ok := strings.CutPrefix(a, "--config.file="); ok {
				cfgPath = v
			}
		}
		host := p.file(cfgPath)
		if host == "" {
			t.Fatalf("prometheus: %s is not mounted", cfgPath)
		}
		docs := decodeAll(t, host)
		for _, rf := range list(docs[0], "rule_files") {
			target := path.Join(path.Dir(cfgPath), fmt.Sprint(rf))
			if p.file(target) == "" {
				t.Errorf("prometheus: rule file %s is not mounted", target)
			}
		}
		var targets []string
		for _, sc := range list(docs[0], "scrape_configs") {
			for _, s := range list(sc, "static_configs") {
				targets = append(targets, toStrings(get(s, "targets"))...)
			}
		}
		if !slices.Contains(targets, "churnwatch:8080") {
			t.Errorf("prometheus scrapes %v, not churnwatch:8080", targets)
		}
		if !p.publishes("9090") {
			t.Error("prometheus: port 9090 not published")
		}
	})

	t.Run("grafana", func(t *testing.T) {
		g := services["grafana"]
		if !strings.HasPrefix(g.Image, "grafana/grafana") {
			t.Errorf("grafana image %q", g.Image)
		}
		if g.env("GF_AUTH_ANONYMOUS_ENABLED") != "true" || g.env("GF_AUTH_ANONYMOUS_ORG_ROLE") != "Viewer" {
			t.Errorf("grafana: anonymous viewer access not enabled: %v", g.Environment)
		}
		if !g.publishes("3000") {
			t.Error("grafana: port 3000 not published")
		}
		prov := g.file("/etc/grafana/provisioning")
		if prov == "" {
			t.Fatal("grafana: /etc/grafana/provisioning is not mounted")
		}
		ds := decodeAll(t, filepath.Join(prov, "datasources", "prometheus.yml"))
		if u := str(ds[0], "datasources", 0, "url"); u != "http://prometheus:9090" {
			t.Errorf("grafana datasource url %q, want http://prometheus:9090", u)
		}
		dp := decodeAll(t, filepath.Join(prov, "dashboards", "churnwatch.yml"))
		dir := g.file(str(dp[0], "providers", 0, "options", "path"))
		if dir == "" {
			t.Fatalf("grafana: the dashboards path %q of the provider is not mounted", str(dp[0], "providers", 0, "options", "path"))
		}
		if _, err := os.Stat(filepath.Join(dir, "churnwatch.json")); err != nil {
			t.Errorf("grafana: %v", err)
		}
	})
}
