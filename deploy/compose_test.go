// Package deploy holds the container image and the local stack; its test
// checks that docker-compose accepts the stack as ops will run it.
package deploy

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestComposeConfig(t *testing.T) {
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
		Services map[string]struct {
			Image     string         `yaml:"image"`
			Command   any            `yaml:"command"`
			DependsOn map[string]any `yaml:"depends_on"`
			Build     map[string]any `yaml:"build"`
			Health    map[string]any `yaml:"healthcheck"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("parse the effective configuration: %v", err)
	}
	for _, name := range []string{"kafka", "redis", "churnwatch"} {
		if _, ok := cfg.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	if k := cfg.Services["kafka"]; !strings.HasPrefix(k.Image, "apache/kafka") || k.Health == nil {
		t.Errorf("kafka: image %q, healthcheck %v", k.Image, k.Health)
	}
	if r := cfg.Services["redis"]; !strings.Contains(strings.Join(toStrings(r.Command), " "), "--appendonly yes") {
		t.Errorf("redis must run with AOF: %v", r.Command)
	}
	cw := cfg.Services["churnwatch"]
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
