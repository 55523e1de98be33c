package processor

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/churnwatch/churnwatch/internal/syncbuf"
	"github.com/churnwatch/churnwatch/metrics"
	"github.com/churnwatch/churnwatch/topics"
)

func TestCheckStalls(t *testing.T) {
	logs := &syncbuf.Buffer{}
	cfg := &Config{Group: "cw", Metrics: metrics.New(), Logger: slog.New(slog.NewTextHandler(logs, nil))}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	r := &repartitioner{cfg: cfg, assigned: map[source]*progress{
		{"usage", 0}:     {lastRecord: now.Add(-2 * time.Minute)},             // unread messages, nothing read: stalled
		{"usage", 1}:     {lastRecord: now.Add(-2 * time.Minute)},             // nothing to read: idle, not stalled
		{"purchases", 0}: {lastRecord: now.Add(-2 * time.Minute), held: true}, // held back by the read-ahead bound
		{"purchases", 1}: {lastRecord: now.Add(-10 * time.Second)},            // reading
	}}
	lags := []topics.Lag{
		{Group: "cw-source", Topic: "usage", Partition: 0, Lag: 40},
		{Group: "cw-source", Topic: "usage", Partition: 1, Lag: 0},
		{Group: "cw-source", Topic: "purchases", Partition: 0, Lag: 7},
		{Group: "cw-source", Topic: "purchases", Partition: 1, Lag: 3},
		{Group: "cw", Topic: "churnwatch-events", Partition: 0, Lag: 99},
	}
	r.checkStalls(lags, now, time.Minute)
	want := map[source]float64{{"usage", 0}: 1, {"usage", 1}: 0, {"purchases", 0}: 0, {"purchases", 1}: 0}
	for s, v := range want {
		if got := testutil.ToFloat64(cfg.Metrics.SourceStalled.WithLabelValues(s.Topic, strconv.Itoa(int(s.Partition)))); got != v {
			t.Errorf("%s/%d stalled = %g, want %g", s.Topic, s.Partition, got, v)
		}
	}
	if !strings.Contains(logs.String(), "source partition stalled") || strings.Count(logs.String(), "stalled") != 1 {
		t.Errorf("log: %s", logs.String())
	}
	r.checkStalls(lags, now, time.Minute) // no change: no new log line
	r.assigned[source{"usage", 0}].lastRecord = now
	r.checkStalls(lags, now, time.Minute)
	if got := testutil.ToFloat64(cfg.Metrics.SourceStalled.WithLabelValues("usage", "0")); got != 0 {
		t.Errorf("after records arrived: stalled = %g", got)
	}
	if strings.Count(logs.String(), "source partition stalled") != 1 || !strings.Contains(logs.String(), "reads again") {
		t.Errorf("log: %s", logs.String())
	}
}

// TestLagAndTimerMetrics: after a backlog is processed, the lag gauges
// cover every partition of both groups and read 0, and the pending-timer
// gauges equal the timer sets in Redis.
func TestLagAndTimerMetrics(t *testing.T) {
	msgs, _ := backfillHistory()
	e := newEnvWith(t, end, func(c *Config) {
		c.LagInterval = 50 * time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	})
	e.produce(msgs...)
	r := e.start()
	e.waitWatermark(end.Add(-5*time.Minute), 2*time.Minute)
	m := r.p.Metrics()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := testutil.CollectAndCount(m.ConsumerLag)
		total := 0.0
		for _, topic := range []string{"purchases", "usage", "customers", "feedback", "support-tickets"} {
			for part := range 2 {
				total += testutil.ToFloat64(m.ConsumerLag.WithLabelValues("churnwatch-source", topic, strconv.Itoa(part)))
			}
		}
		for part := range 4 {
			total += testutil.ToFloat64(m.ConsumerLag.WithLabelValues("churnwatch", "churnwatch-events", strconv.Itoa(part)))
		}
		if n == 14 && total == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag gauges: %d series, total lag %g; want 14 series (10 source, 4 internal partitions) at 0", n, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	timers := 0.0
	for part := range 4 {
		want, err := e.store.PendingTimers(ctx, part)
		if err != nil {
			t.Fatal(err)
		}
		if got := testutil.ToFloat64(m.TimersPending.WithLabelValues(strconv.Itoa(part))); got != float64(want) {
			t.Errorf("partition %d: timers pending gauge %g, Redis holds %d", part, got, want)
		}
		timers += float64(want)
	}
	if timers == 0 {
		t.Error("no timers pending at all: the history leaves absence deadlines")
	}
	if got := testutil.ToFloat64(m.SourceStalled.WithLabelValues("usage", "0")); got != 0 {
		t.Errorf("usage/0 reported stalled (%g) though caught up", got)
	}
}
