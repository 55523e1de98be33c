package webhook

import (
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	env := map[string]string{
		"HUBSPOT_SECRET": vectorSecret,
		"HUBSPOT_TOKEN":  "pat-na1-123",
		"SLACK_PATH":     "T000/B000/XXXX",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := LoadConfig("webhooks.yaml", []byte(`
endpoints:
  - name: hubspot
    url: https://api.hubapi.com/crm/v3/objects/tasks
    secrets: ["${HUBSPOT_SECRET}"]
    headers:
      Authorization: Bearer ${HUBSPOT_TOKEN}
    template: hubspot
    filter:
      severities: [high, critical]
      statuses: [firing]
    timeout: 5s
    rate_limit: 2.5
  - name: slack
    url: https://hooks.slack.com/services/${SLACK_PATH}
    secret: ${HUBSPOT_SECRET}
    template: slack
contact_caps:
  per_customer: 3
stall_after: 2h
`), lookup)
	if err != nil {
		t.Fatal(err)
	}
	hs, sl := cfg.Endpoints[0], cfg.Endpoints[1]
	if hs.Headers["Authorization"] != "Bearer pat-na1-123" || hs.Template.Kind() != KindHubSpot || hs.Timeout != 5*time.Second ||
		hs.RateLimit != 2.5 || hs.Burst != 3 || len(hs.Secrets) != 1 {
		t.Errorf("hubspot endpoint %+v", hs)
	}
	if !hs.Filter.Match("any", "high", "firing") || hs.Filter.Match("any", "low", "firing") || hs.Filter.Match("any", "high", "resolved") {
		t.Error("filter")
	}
	if sl.URL != "https://hooks.slack.com/services/T000/B000/XXXX" || sl.Host() != "https://hooks.slack.com" || sl.Timeout != 10*time.Second {
		t.Errorf("slack endpoint %+v (host %s)", sl, sl.Host())
	}
	if cfg.Caps != (Caps{Window: 7 * 24 * time.Hour, PerRule: 1, PerCustomer: 3}) || cfg.StallAfter != 2*time.Hour {
		t.Errorf("caps %+v, stall_after %s", cfg.Caps, cfg.StallAfter)
	}
	if err := cfg.CheckRules(func(string) bool { return false }); err != nil {
		t.Errorf("no filter names a rule, yet: %v", err)
	}
	hs.Filter.Rules = []string{"vip-no-purchase-180d", "no-such-rule"}
	if err := cfg.CheckRules(func(id string) bool { return id == "vip-no-purchase-180d" }); err == nil || !strings.Contains(err.Error(), "no-such-rule") {
		t.Errorf("unknown rule in a filter: %v", err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	lookup := func(string) (string, bool) { return "", false }
	tests := []struct{ yaml, want string }{
		{"endpoints: []", "at least one endpoint"},
		{"endpoints:\n  - name: a\n    url: ftp://x\n    secret: " + vectorSecret, "http:// or https://"},
		{"endpoints:\n  - name: a\n    url: https://x\n", "at least one whsec_ secret"},
		{"endpoints:\n  - name: a\n    url: https://x\n    secret: ${MISSING}", "environment variable MISSING is not set"},
		{"endpoints:\n  - name: a\n    url: https://x\n    secret: whsec_short", "secrets[0]"},
		{"endpoints:\n  - name: a b\n    url: https://x\n    secret: " + vectorSecret, "name must be"},
		{"endpoints:\n  - name: a\n    url: https://x\n    secret: " + vectorSecret + "\n  - name: a\n    url: https://y\n    secret: " + vectorSecret, "name used twice"},
		{"endpoints:\n  - name: a\n    url: https://x\n    secret: " + vectorSecret + "\n    template: zapier", "unknown kind"},
		{"endpoints:\n  - name: a\n    url: https://x\n    secret: " + vectorSecret + "\n    filter: {severities: [urgent]}", `"urgent" is not one of`},
		{"endpoints:\n  - name: a\n    url: https://x\n    secret: " + vectorSecret + "\n    filter: {statuses: [open]}", "not firing or resolved"},
		{"endpoints:\n  - name: a\n    url: https://x\n    secret: " + vectorSecret + "\n    timeout: forever", "timeout"},
		{"endpoints:\n  - name: a\n    url: https://x\n    secret: " + vectorSecret + "\n    headers: {webhook-id: x}", "set by churnwatch"},
		{"endpoints:\n  - name: a\n    url: https://x\n    secret: " + vectorSecret + "\n    retries: 3", "field retries not found"},
		{"endpoints:\n  - name: a\n    url: https://x\n    secret: " + vectorSecret + "\ncontact_caps: {per_rule: -1}", "must not be negative"},
	}
	for _, tt := range tests {
		_, err := LoadConfig("w.yaml", []byte(tt.yaml), lookup)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "w.yaml") {
			t.Errorf("%q: error %v, want one mentioning %q", tt.yaml, err, tt.want)
		}
	}
}

func TestLoadConfigBounds(t *testing.T) {
	lookup := func(string) (string, bool) { return "", false }
	for _, v := range []string{"rate_limit: .inf", "rate_limit: .nan", "rate_limit: 1e300", "burst: 9999999", "timeout: 1ns"} {
		_, err := LoadConfig("w.yaml", []byte("endpoints:\n  - name: a\n    url: https://x\n    secret: "+vectorSecret+"\n    "+v+"\n"), lookup)
		if err == nil {
			t.Errorf("%s accepted", v)
		}
	}
}
