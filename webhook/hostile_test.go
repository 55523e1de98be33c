package webhook

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// fuzzEnv is the environment the fuzzed configurations see.
var fuzzEnv = map[string]string{
	"SECRET":     vectorSecret,
	"OLD_SECRET": "whsec_" + strings.Repeat("QUJD", 16), // 48 bytes
	"TOKEN":      "pat-na1-0123456789",
	"SLACK_PATH": "T000/B000/XXXX",
	"HOST":       "crm.example.com",
	"EMPTY":      "",
	"REF":        "${SECRET}", // expanded once, never again
	"BAD_SECRET": "whsec_short",
}

func fuzzLookup(k string) (string, bool) { v, ok := fuzzEnv[k]; return v, ok }

// fuzzConfigs seed FuzzLoadConfig; the README's example among them.
var fuzzConfigs = []string{
	`endpoints:
  - name: hubspot
    url: https://api.hubapi.com/crm/v3/objects/tasks
    secrets: ["${SECRET}", "${OLD_SECRET}"]
    headers:
      Authorization: Bearer ${TOKEN}
    template: hubspot
    filter: {severities: [high, critical], statuses: [firing]}
    timeout: 10s
    rate_limit: 5
  - name: slack
    url: https://hooks.slack.com/services/${SLACK_PATH}
    secrets: ["${SECRET}"]
    template: slack
contact_caps: {window: 168h, per_rule: 1, per_customer: 2}
stall_after: 1h
`,
	"endpoints:\n  - name: sf\n    url: http://${HOST}:8080/x?y=1#z\n    secret: ${OLD_SECRET}\n    template: salesforce\n    burst: 3\n    rate_limit: 0.5\nstall_after: -1s\n",
	"endpoints:\n  - name: go.tmpl_1\n    url: https://${HOST}\n    secret: " + vectorSecret + "\n    template: go\n    template_text: '{\"text\": {{json .Alert.Rule}}, \"r\": {{json (join .Alert.Reasons \", \")}}}'\n",
	"endpoints:\n  - {name: a, url: 'https://h', secret: '${REF}'}\n  - {name: b, url: 'https://h', secret: '${BAD_SECRET}'}\n  - {name: a, url: 'ftp://h', secrets: []}\n",
	"endpoints:\n  - name: a\n    url: https://${EMPTY}/p\n    secret: ${MISSING}\n    headers: {Webhook-Signature: x, Content-Type: y}\n    filter: {rules: [r], severities: [urgent], statuses: [open]}\n    timeout: 6m\n    rate_limit: -1\n",
	"endpoints: []\ncontact_caps: {window: 0s, per_rule: -1}\n",
	"endpoints:\n  - name: a\n    url: https://h\n    secret: " + vectorSecret + "\n    template: go\n    template_text: '{{.Nope}}'\n",
	"endpoints:\n  - name: a\n    url: https://h\n    secret: " + vectorSecret + "\n    retries: 3\n",
	"endpoints: [null]\n",
	"endpoints: &e [{name: a, url: 'https://h', secret: '${SECRET}'}]\nstall_after: *e\n",
	"- a\n",
	"",
}

// FuzzLoadConfig gives arbitrary bytes to LoadConfig: it never panics, its
// errors name the file, an accepted configuration is one the dispatcher can
// use (at least one endpoint, each with an http(s) URL with a host and at
// least one whsec_ key of 24–64 bytes, a valid unique name, a timeout, no
// header churnwatch sets itself), and no secret read from the environment
// appears in an error.
func FuzzLoadConfig(f *testing.F) {
	for _, s := range fuzzConfigs {
		f.Add([]byte(s))
	}
	name := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := LoadConfig("fuzz.yaml", data, fuzzLookup)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "fuzz.yaml: ") {
				t.Fatalf("error without the file name: %q", msg)
			}
			for _, k := range []string{"SECRET", "OLD_SECRET", "TOKEN"} {
				if v := fuzzEnv[k]; strings.Contains(msg, v) && !strings.Contains(string(data), v) {
					t.Fatalf("error shows $%s: %q", k, msg)
				}
			}
			return
		}
		if cfg == nil || len(cfg.Endpoints) == 0 {
			t.Fatalf("accepted a configuration without endpoints: %+v", cfg)
		}
		seen := map[string]bool{}
		for i, ep := range cfg.Endpoints {
			where := fmt.Sprintf("endpoint %d (%q)", i, ep.Name)
			u, err := url.Parse(ep.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Fatalf("%s: url %q is not an http(s) URL with a host (%v)", where, ep.URL, err)
			}
			if ep.Host() != u.Scheme+"://"+u.Host {
				t.Fatalf("%s: Host() %q", where, ep.Host())
			}
			if len(ep.Secrets) == 0 {
				t.Fatalf("%s: no secret", where)
			}
			for _, s := range ep.Secrets {
				if len(s) < 24 || len(s) > 64 {
					t.Fatalf("%s: a key of %d bytes", where, len(s))
				}
			}
			if !name.MatchString(ep.Name) || seen[ep.Name] {
				t.Fatalf("%s: invalid or repeated name", where)
			}
			seen[ep.Name] = true
			if ep.Timeout <= 0 || ep.Timeout > 5*time.Minute {
				t.Fatalf("%s: timeout %s", where, ep.Timeout)
			}
			if ep.Template == nil {
				t.Fatalf("%s: no template", where)
			}
			for k := range ep.Headers {
				if slices.Contains(reserved, strings.ToLower(k)) {
					t.Fatalf("%s: header %q is churnwatch's", where, k)
				}
			}
		}
		if c := cfg.Caps; c.Window <= 0 || c.PerRule < 0 || c.PerCustomer < 0 {
			t.Fatalf("caps %+v", c)
		}
	})
}

// hostileLaughs is a billion-laughs document: nine levels of nine aliases.
var hostileLaughs = func() string {
	s := "l0: &l0 [x, x, x, x, x, x, x, x, x]\n"
	for i := 1; i <= 9; i++ {
		s += fmt.Sprintf("l%d: &l%d [%s*l%d]\n", i, i, strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 8), i-1)
	}
	return s
}()

// hostileEndpoint is a valid endpoint to append hostile keys to.
const hostileEndpoint = "endpoints:\n  - name: a\n    url: https://h\n    secret: " + vectorSecret + "\n"

// hostileConfigs are webhooks files built to hurt the loader; see
// TestLoadConfigHostile.
var hostileConfigs = []struct {
	name, src, want string
}{
	{name: "billion laughs", src: hostileLaughs + "endpoints: *l9\n", want: "w.yaml: yaml: "},
	{name: "billion laughs in headers", src: hostileLaughs + hostileEndpoint + "    headers: *l9\n", want: "w.yaml: "},
	{name: "deep nesting", src: "endpoints: " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000), want: "exceeded max depth"},
	{name: "invalid UTF-8", src: hostileEndpoint + "    template: \xff\n", want: "invalid leading UTF-8"},
	{name: "NUL", src: hostileEndpoint + "\x00", want: "control characters"},
	{name: "null endpoint", src: "endpoints: [null]\n", want: "at least one endpoint"},
	{name: "wrong types", src: "endpoints:\n  - name: [a]\n    url: {u: 1}\n    secrets: 5\n", want: "cannot unmarshal"},
	{name: "huge burst", src: hostileEndpoint + "    burst: 99999999999999999999\n", want: "cannot unmarshal"},
	{name: "secret expanding to a reference", src: "endpoints:\n  - {name: a, url: 'https://h', secret: '${REF}'}\n", want: "secrets[0]: webhook secret"},
	{name: "URL from an empty variable", src: "endpoints:\n  - {name: a, url: 'https://${EMPTY}', secret: '${SECRET}'}\n", want: "url must be"},
	{name: "URL with a space", src: "endpoints:\n  - {name: a, url: 'https://a b', secret: '${SECRET}'}\n", want: "url must be"},
	{name: "10,000 endpoints, one bad", src: "endpoints:\n" + strings.Repeat("  - {name: a, url: 'https://h', secret: '"+vectorSecret+"'}\n", 10000), want: "name used twice"},
	{name: "recursive template", src: hostileEndpoint + "    template: go\n    template_text: '{{define \"x\"}}{{template \"x\" .}}{{end}}{{template \"x\" .}}'\n", want: "exceeded maximum template depth"},
	{name: "template looping 2^63 times", src: hostileEndpoint + "    template: go\n    template_text: '{{range 9223372036854775807}}{{end}}{}'\n",
		want: "may loop more than 100000 times"},
	{name: "nested loops", src: hostileEndpoint + "    template: go\n    template_text: '{{range 1000}}{{range .Alert.Reasons}}{{range 1000}}{{end}}{{end}}{{end}}{}'\n",
		want: "may loop more than 100000 times"},
	{name: "loops through template calls", src: hostileEndpoint + "    template: go\n    template_text: '{{define \"a\"}}{{range 1000}}{{end}}{{end}}{{range 1000}}{{template \"a\"}}{{end}}{}'\n",
		want: "may loop more than 100000 times"},
	{name: "loop over a variable", src: hostileEndpoint + "    template: go\n    template_text: '{{$n := 9223372036854775807}}{{range $n}}{{end}}{}'\n",
		want: "a range may go over the alert's data"},
	{name: "100 MB of output", src: hostileEndpoint + "    template: go\n    template_text: '{{range 100000}}{{$.CloudEvent}}{{end}}'\n",
		want: "the output exceeds 1048576 bytes"},
}

// TestLoadConfigHostile: LoadConfig neither panics nor hangs on hostile
// files; each is refused with an error naming the file.
func TestLoadConfigHostile(t *testing.T) {
	for _, tt := range hostileConfigs {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := LoadConfig("w.yaml", []byte(tt.src), fuzzLookup)
			if d := time.Since(start); d > 30*time.Second { // a hang guard only, loose enough for -race on a busy machine
				t.Errorf("LoadConfig took %s", d)
			}
			if err == nil || !strings.HasPrefix(err.Error(), "w.yaml: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %.300v, want one naming the file and mentioning %q", err, tt.want)
			}
		})
	}
}
