package redisstate

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/internal/redistest"
	"github.com/churnwatch/churnwatch/state"
)

func TestStore(t *testing.T) {
	rdb, _ := redistest.Start(t)
	s := New(rdb, "")
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	got, err := s.Load(ctx, []string{"a {1}: b", "c2"})
	if err != nil || got["a {1}: b"].Offset != -1 || got["c2"].ID != "c2" {
		t.Fatalf("load unknown: %+v %v", got, err)
	}
	c := got["a {1}: b"]
	c.AsOf, c.Offset, c.Profile.Tier = t0, 7, "vip"
	fire := alerts.Alert{AlertID: "x1", Rule: "r", CustomerID: c.ID, Status: alerts.Firing, Time: t0}
	later := alerts.Alert{AlertID: "x2", Rule: "r", CustomerID: "c2", Status: alerts.Firing, Time: t0.Add(time.Hour)}
	if err := s.Write(ctx, &Batch{Partition: 3, States: []*state.Customer{c},
		Timers: map[string]time.Time{c.ID: t0.Add(time.Hour), "c2": t0.Add(2 * time.Hour)},
		Alerts: []alerts.Alert{fire, later}, Watermark: []byte("wm"), Spend: map[string]float64{c.ID: 10}}); err != nil {
		t.Fatal(err)
	}
	back, err := s.Customer(ctx, c.ID)
	if err != nil || back == nil || back.Offset != 7 || back.Profile.Tier != "vip" {
		t.Fatalf("read back: %+v %v", back, err)
	}
	due, err := s.Due(ctx, 3, t0.Add(90*time.Minute), 10)
	if err != nil || len(due) != 1 || due[0] != c.ID {
		t.Fatalf("due: %v %v", due, err)
	}
	if wm, _ := s.Watermark(ctx, 3); string(wm) != "wm" {
		t.Fatalf("watermark %q", wm)
	}
	list, err := s.Alerts(ctx, alerts.Firing, 10)
	if err != nil || len(list) != 2 {
		t.Fatalf("firing alerts: %s %v", list, err)
	}
	var first alerts.Alert
	json.Unmarshal(list[0], &first) //nolint:errcheck // checked next
	if first.AlertID != "x2" {
		t.Errorf("newest first: got %s", first.AlertID)
	}
	fire.Status, fire.Time = alerts.Resolved, t0.Add(3*time.Hour)
	if err := s.Write(ctx, &Batch{Partition: 3, Alerts: []alerts.Alert{fire}, Timers: map[string]time.Time{c.ID: {}}}); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.Alerts(ctx, alerts.Firing, 10); len(list) != 1 {
		t.Errorf("resolved alert still firing: %s", list)
	}
	if list, _ := s.Alerts(ctx, alerts.Resolved, 10); len(list) != 1 {
		t.Errorf("resolved list: %s", list)
	}
	if n, _ := s.PendingTimers(ctx, 3); n != 1 {
		t.Errorf("%d timers, want 1 after removing one", n)
	}
	if err := rdb.Set(ctx, s.k.customer("bad"), "garbage", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, []string{"bad"}); err == nil {
		t.Error("a corrupt state loaded without error")
	}
}

func TestSegmentThresholds(t *testing.T) {
	rdb, _ := redistest.Start(t)
	s := New(rdb, "")
	ctx := context.Background()
	spend := map[string]float64{}
	for i := range 10 {
		spend["c"+strconv.Itoa(i)] = float64(i * 10) // 0, 10, …, 90
	}
	if err := s.Write(ctx, &Batch{Spend: spend}); err != nil {
		t.Fatal(err)
	}
	a, b, err := s.SegmentThresholds(ctx)
	if err != nil || a != 80 || b != 50 {
		t.Fatalf("thresholds %g %g %v, want 80 (top 20 %%) and 50 (next 30 %%)", a, b, err)
	}
}
