package demo

import (
	"context"
	"io"
	"log/slog"
	"net"
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
