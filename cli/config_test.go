package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigPrecedence: a flag beats the environment, which beats the
// file, which beats the default; config print says where each value came
// from and masks the Redis password.
func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, "churnwatch.yaml", `
brokers: [k1:9092, k2:9092]
redis: redis://:hunter2@redis:6379/0
lateness: 10m
group: from-file
log_format: json
`)
	t.Setenv("CHURNWATCH_CONFIG", file)
	t.Setenv("CHURNWATCH_LATENESS", "7m")
	t.Setenv("CHURNWATCH_GROUP", "from-env")
	code, out, errs := run(t, "config", "print", "--group", "from-flag")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 3 {
			lines[f[0]] = strings.Join(f[1:], " ")
		}
	}
	want := map[string]string{
		"brokers":    "k1:9092,k2:9092 file " + file + ":2",
		"lateness":   "7m env CHURNWATCH_LATENESS",
		"group":      "from-flag flag --group",
		"log_format": "json file " + file + ":6",
		"http":       ":8080 default",
		"redis":      "redis://:****@redis:6379/0 file " + file + ":3",
	}
	for k, w := range want {
		if lines[k] != w {
			t.Errorf("%s: %q, want %q", k, lines[k], w)
		}
	}
	if strings.Contains(out, "hunter2") {
		t.Error("config print shows the Redis password")
	}
}

func TestConfigErrors(t *testing.T) {
	file := writeFile(t, "bad.yaml", "brokers: k:9092\nlatenes: 5m\n")
	t.Setenv("CHURNWATCH_HOLDOUT", "ten percent")
	code, _, errs := run(t, "config", "print", "--config", file, "--lateness", "5 minutes", "--log-format", "xml", "--redis", "http://x")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{
		file + `:2: unknown key "latenes"`,
		`lateness "5 minutes" (flag --lateness): want a non-negative duration such as 5m`,
		`holdout "ten percent" (env CHURNWATCH_HOLDOUT): want a share between 0 and 1`,
		`log_format "xml" (flag --log-format): want one of text, json`,
		`redis "http://x" (flag --redis): not a Redis URL`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("errors lack %q:\n%s", want, errs)
		}
	}
	// run refuses to start with the same message.
	if code, _, errs := run(t, "run", "--lateness", "-5m"); code != 1 || !strings.Contains(errs, `lateness "-5m" (flag --lateness)`) {
		t.Errorf("run with a negative lateness: exit %d %q", code, errs)
	}
}

// TestREADMEConfigTable: the README's table lists every setting with its
// env variable, flag and default.
func TestREADMEConfigTable(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		def := s.def
		if def == "" {
			def = "(none)"
		}
		row := "| `" + s.key + "` | `" + envName(s.key) + "` | `--" + flagName(s.key) + "` | `" + def + "` |"
		if !strings.Contains(string(b), row) {
			t.Errorf("README lacks the row %s", row)
		}
	}
}
