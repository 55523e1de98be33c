package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/delivery"
	"github.com/churnwatch/churnwatch/internal/redistest"
	"github.com/churnwatch/churnwatch/webhook"
)

// TestWebhooksDeadLetters lists, replays and enables through the command
// line against a real Redis holding one dead letter.
func TestWebhooksDeadLetters(t *testing.T) {
	rdb, _ := redistest.Start(t)
	ctx := context.Background()
	secret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	file := filepath.Join(t.TempDir(), "webhooks.yaml")
	if err := os.WriteFile(file, []byte("endpoints:\n  - name: crm\n    url: https://crm.example/hooks\n    secret: ${CRM_SECRET}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CRM_SECRET", secret)
	t.Setenv("CHURNWATCH_REDIS", "redis://"+rdb.Options().Addr+"/0")
	t.Setenv("CHURNWATCH_WEBHOOKS", file)

	store := delivery.NewStore(rdb, "")
	now := time.Now()
	n := &delivery.Notice{EventID: "abc-firing", AlertID: "abc", Rule: "ticket-surge", Customer: "c1", Status: "firing", Body: []byte(`{}`)}
	if _, err := store.Accept(ctx, n, []string{"crm"}, webhook.DefaultCaps, now); err != nil {
		t.Fatal(err)
	}
	jobs, err := store.Claim(ctx, "crm", now, time.Minute, 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v %v", jobs, err)
	}
	jobs[0].DeadReason = "refused by the endpoint (HTTP 400)"
	if err := store.Dead(ctx, jobs[0], now); err != nil {
		t.Fatal(err)
	}
	if err := store.Disable(ctx, "crm", "answered 410 Gone"); err != nil {
		t.Fatal(err)
	}

	code, out, errs := run(t, "webhooks", "dlq", "list")
	if code != 0 || !strings.Contains(out, "abc-firing") || !strings.Contains(out, "HTTP 400") {
		t.Fatalf("dlq list: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = run(t, "webhooks", "endpoints")
	if code != 0 || !strings.Contains(out, "answered 410 Gone") {
		t.Fatalf("endpoints: exit %d\n%s", code, out)
	}
	if code, out, errs = run(t, "webhooks", "dlq", "replay", "nope"); code != 1 || !strings.Contains(errs, `endpoint "nope"`) {
		t.Fatalf("replay of an unknown endpoint: exit %d %s %s", code, out, errs)
	}
	if code, out, _ = run(t, "webhooks", "dlq", "replay", "crm"); code != 0 || !strings.Contains(out, "1 dead letter(s)") {
		t.Fatalf("replay: exit %d %s", code, out)
	}
	if code, out, _ = run(t, "webhooks", "enable", "crm"); code != 0 || !strings.Contains(out, "crm enabled") {
		t.Fatalf("enable: exit %d %s", code, out)
	}
	code, out, _ = run(t, "webhooks", "endpoints")
	if code != 0 || strings.Contains(out, "410") || !strings.Contains(out, "crm") {
		t.Fatalf("endpoints after enable: exit %d\n%s", code, out)
	}
	if p, d, _ := store.Counts(ctx, "crm"); p != 1 || d != 0 {
		t.Errorf("after replay: pending %d, dead %d", p, d)
	}
}
