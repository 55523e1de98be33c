package cli

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/internal/syncbuf"
	"github.com/churnwatch/churnwatch/webhook"
)

const (
	sinkSecretOld = "whsec_QUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJD"
	sinkSecretNew = "whsec_REVGREVGREVGREVGREVGREVGREVGREVG"
)

func TestWebhookSink(t *testing.T) {
	t.Setenv("CHURNWATCH_SINK_SECRET", sinkSecretOld+", "+sinkSecretNew)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	done := make(chan int, 1)
	go func() { done <- Main(ctx, []string{"webhook-sink", "--listen", "127.0.0.1:0"}, &stdout, &stderr) }()

	var addr string
	for deadline := time.Now().Add(5 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no listening line; stdout %q stderr %q", stdout.String(), stderr.String())
		}
		line, _, _ := strings.Cut(stdout.String(), "\n")
		if rest, ok := strings.CutPrefix(line, "webhook-sink listening on http://"); ok {
			a, tail, _ := strings.Cut(rest, " ")
			if tail != "(verifying 2 secrets)" {
				t.Errorf("listening line %q", line)
			}
			addr = a
		}
	}

	at := time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)
	a := alerts.Alert{AlertID: alerts.ID("ticket-surge", "bob", at), Rule: "ticket-surge", Severity: "medium",
		CustomerID: "bob", Status: alerts.Firing, Time: at, RiskScore: 40, Reasons: []string{"3 tickets in 30 days"}}
	ce, err := a.MarshalCloudEvent()
	if err != nil {
		t.Fatal(err)
	}
	key, err := webhook.ParseSecret(sinkSecretNew)
	if err != nil {
		t.Fatal(err)
	}
	post := func(signed bool) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/", bytes.NewReader(ce))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		req.Header.Set(webhook.HeaderID, a.EventID())
		req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		if signed {
			req.Header.Set(webhook.HeaderSignature, webhook.Sign(a.EventID(), now.Unix(), ce, key))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(true); code != http.StatusNoContent {
		t.Errorf("signed POST: %d", code)
	}
	if code := post(false); code != http.StatusUnauthorized {
		t.Errorf("unsigned POST: %d", code)
	}
	if code := post(true); code != http.StatusNoContent {
		t.Errorf("signed POST again: %d", code)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("webhook-sink did not stop")
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("stdout:\n%s", stdout.String())
	}
	want := "  ✓ signed  " + a.EventID() + "  ticket-surge bob firing"
	if !strings.HasSuffix(lines[1], want) || !strings.HasSuffix(lines[2], want+"  (duplicate)") {
		t.Errorf("delivery lines:\n%s\nwant suffix %q", strings.Join(lines[1:], "\n"), want)
	}
	if e := stderr.String(); !strings.Contains(e, "refused POST / from 127.0.0.1:") || !strings.Contains(e, "401 missing") {
		t.Errorf("stderr %q", e)
	}
}

func TestWebhookSinkFlags(t *testing.T) {
	t.Setenv("CHURNWATCH_SINK_SECRET", "")
	code, _, errs := run(t, "webhook-sink", "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errs, "--secret (or CHURNWATCH_SINK_SECRET) is required") {
		t.Errorf("no secret: %d %q", code, errs)
	}
	code, _, errs = run(t, "webhook-sink", "--listen", "127.0.0.1:0", "--secret", sinkSecretOld+",whsec_short")
	if code != 1 || !strings.Contains(errs, "--secret: secret 2 of 2") {
		t.Errorf("bad secret: %d %q", code, errs)
	}
	if code, _, _ := run(t, "webhook-sink", "--nope"); code != 2 {
		t.Errorf("unknown flag: exit %d", code)
	}
	if code, out, _ := run(t, "help"); code != 0 || !strings.Contains(out, "churnwatch webhook-sink [flags]") {
		t.Errorf("usage lacks webhook-sink:\n%s", out)
	}
}
