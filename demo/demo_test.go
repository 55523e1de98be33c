package demo

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/internal/syncbuf"
)

// TestDemoDeliversSignedWebhooks runs the demo on a small population until
// its sink has verified signed deliveries, then stops it with the context,
// as Ctrl-C does.
func TestDemoDeliversSignedWebhooks(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	out := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{KafkaPort: port, HTTPAddr: "127.0.0.1:0", Customers: 300, Days: 120, Rate: 50,
			Out: out, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	deadline := time.Now().Add(90 * time.Second)
	for strings.Count(out.String(), "✓ signed") < 5 {
		select {
		case err := <-done:
			t.Fatalf("demo stopped early: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no signed deliveries at the sink within 90s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkAdminAPI(t, out.String())
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v", err)
	}
	text := out.String()
	for _, want := range []string{"webhook http://127.0.0.1:", "FIRING", "webhook deliveries verified by the sink"} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(text, "whsec_") {
		t.Error("the demo printed its webhook secret")
	}
}

// checkAdminAPI: the demo's admin API listens on loopback, and its
// customer data needs the token the demo printed, used as printed.
func checkAdminAPI(t *testing.T, text string) {
	t.Helper()
	m := regexp.MustCompile(`export CHURNWATCH_ADMIN_TOKEN=([0-9a-f]{48})\n\s+curl -s -H "Authorization: Bearer \$CHURNWATCH_ADMIN_TOKEN" '(http://127\.0\.0\.1:\d+/api/alerts\?status=firing)'`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("the demo did not print the admin token and a curl example on 127.0.0.1:\n%s", text)
	}
	token, alertsURL := m[1], m[2]
	get := func(auth string) int {
		req, _ := http.NewRequest("GET", alertsURL, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(""); code != http.StatusUnauthorized {
		t.Errorf("alerts without the token: %d, want 401", code)
	}
	if code := get("Bearer " + token); code != http.StatusOK {
		t.Errorf("alerts with the printed token: %d, want 200", code)
	}
}
