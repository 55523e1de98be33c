package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRulesCheck(t *testing.T) {
	code, out, _ := run(t, "rules", "check", "../rules/builtin.yaml")
	if code != 0 || !strings.Contains(out, "7 rules ok") {
		t.Fatalf("check builtin: %d %q", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("rules:\n  - id: x\n    severity: low\n    when: tickets.nope > 1\n"), 0o644) //nolint:errcheck // read next
	code, _, errs := run(t, "rules", "check", bad)
	if code != 1 || !strings.Contains(errs, "bad.yaml:4:") {
		t.Fatalf("check bad file: %d %q", code, errs)
	}
}

func TestRulesTest(t *testing.T) {
	code, out, errs := run(t, "rules", "test", "--until", "2026-09-01T00:00:00Z", "../rules/builtin.yaml", "../examples/events.jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"2026-03-04T08:00:00Z  FIRING    ticket-surge            bob",
		"2026-03-31T08:00:00Z  RESOLVED  ticket-surge            bob",
		"2026-03-10T12:00:00Z  FIRING    nps-detractor           bob",
		"2026-04-15T00:00:00Z  FIRING    onboarding-stalled      cem",
		"2026-03-26T22:00:00Z  FIRING    purchase-overdue        ada", // 3 × 16.5 days after 5 Feb
		"2026-08-04T10:00:00Z  FIRING    vip-no-purchase-180d    ada",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestUsage(t *testing.T) {
	if code, _, errs := run(t, "nope"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Errorf("unknown command: %d %q", code, errs)
	}
}

func TestWebhooksCheck(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"webhooks", "check", "../examples/webhooks.yaml"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "HUBSPOT_WEBHOOK_SECRET is not set") {
		t.Fatalf("without the environment: exit %d, %q", code, errb.String())
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	t.Setenv("HUBSPOT_WEBHOOK_SECRET", secret)
	t.Setenv("HUBSPOT_TOKEN", "pat-na1-secret-token")
	t.Setenv("SLACK_WEBHOOK_PATH", "T000/B000/secretpath")
	t.Setenv("SLACK_SIGNING_SECRET", secret)
	out.Reset()
	errb.Reset()
	if code := Main(context.Background(), []string{"webhooks", "check", "../examples/webhooks.yaml"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	text := out.String()
	if !strings.Contains(text, "hubspot: https://api.hubapi.com, template hubspot") || !strings.Contains(text, "2 endpoint(s) OK") {
		t.Errorf("output %q", text)
	}
	for _, s := range []string{"secretpath", "pat-na1", strings.TrimPrefix(secret, "whsec_")} {
		if strings.Contains(text, s) {
			t.Errorf("check printed the secret %q", s)
		}
	}
}
