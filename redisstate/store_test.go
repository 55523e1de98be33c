package redisstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/internal/redistest"
	"github.com/churnwatch/churnwatch/state"
)

// idsOf returns n customer ids owned by partition p of parts.
func idsOf(p, parts, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		if id := fmt.Sprintf("c {%d}: x", i); state.Partition(id, parts) == p {
			out = append(out, id)
		}
	}
	return out
}

func TestStore(t *testing.T) {
	rdb, _ := redistest.Start(t)
	s := New(rdb, "")
	ctx := context.Background()
	if c, err := s.Customer(ctx, "x"); c != nil || err != nil {
		t.Fatalf("customer before any processor: %v %v", c, err)
	}
	if err := s.Init(ctx, 4); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ids := idsOf(3, 4, 2)
	pt := s.Partition(3)

	got, err := pt.Load(ctx, ids)
	if err != nil || got[ids[0]].Offset != -1 || got[ids[1]].ID != ids[1] {
		t.Fatalf("load unknown: %+v %v", got, err)
	}
	c := got[ids[0]]
	c.AsOf, c.Offset, c.Profile.Tier = t0, 7, "vip"
	fire := alerts.Alert{AlertID: "x1", Rule: "r", CustomerID: c.ID, Status: alerts.Firing, Time: t0}
	later := alerts.Alert{AlertID: "x2", Rule: "r", CustomerID: ids[1], Status: alerts.Firing, Time: t0.Add(time.Hour)}
	if err := pt.Write(ctx, &Batch{States: []*state.Customer{c},
		Timers: []TimerMove{{c.ID, 0, t0.Add(time.Hour).UnixMilli()}, {ids[1], 0, t0.Add(2 * time.Hour).UnixMilli()}},
		Alerts: []alerts.Alert{fire, later}, Watermark: []byte("wm"), Clock: t0}); err != nil {
		t.Fatal(err)
	}
	back, err := s.Customer(ctx, c.ID)
	if err != nil || back == nil || back.Offset != 7 || back.Profile.Tier != "vip" {
		t.Fatalf("read back: %+v %v", back, err)
	}
	if n, err := rdb.Exists(ctx, "cw:{p3}:c:"+c.ID).Result(); err != nil || n != 1 {
		t.Errorf("state not at its documented key: %d %v", n, err)
	}
	due, err := s.Due(ctx, 3, t0.Add(90*time.Minute), 10)
	if err != nil || len(due) != 1 || due[0] != c.ID {
		t.Fatalf("due: %v %v", due, err)
	}
	if wm, _ := s.Watermark(ctx, 3); string(wm) != "wm" {
		t.Fatalf("watermark %q", wm)
	}
	if clock, err := s.Clock(ctx); err != nil || !clock.Equal(t0) {
		t.Errorf("clock %s %v, want %s", clock, err, t0)
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
	if err := pt.Write(ctx, &Batch{Alerts: []alerts.Alert{fire}, Timers: []TimerMove{{c.ID, t0.Add(time.Hour).UnixMilli(), 0}}}); err != nil {
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
	if err := rdb.Set(ctx, "cw:{p3}:c:bad", "garbage", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := pt.Load(ctx, []string{"bad"}); err == nil {
		t.Error("a corrupt state loaded without error")
	}
}

// TestInit: the partition count is recorded once; another count, or
// state of the earlier layout, is refused with the way out.
func TestInit(t *testing.T) {
	rdb, _ := redistest.Start(t)
	ctx := context.Background()
	if err := New(rdb, "").Init(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if err := New(rdb, "").Init(ctx, 4); err != nil {
		t.Errorf("same count again: %v", err)
	}
	err := New(rdb, "").Init(ctx, 6)
	if !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), "written for 4 internal partitions, the internal topic has 6") {
		t.Errorf("another partition count: %v", err)
	}
	if n, err := New(rdb, "").Partitions(ctx); n != 4 || err != nil {
		t.Errorf("partitions %d %v", n, err)
	}
	if err := rdb.ZAdd(ctx, "old:{segments}:spend365", redis.Z{Score: 1, Member: "c"}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := New(rdb, "old").Init(ctx, 4); !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), "earlier churnwatch") {
		t.Errorf("earlier layout: %v", err)
	}
}

func TestSegments(t *testing.T) {
	rdb, _ := redistest.Start(t)
	s := New(rdb, "")
	ctx := context.Background()
	if err := s.Init(ctx, 2); err != nil {
		t.Fatal(err)
	}
	g, err := s.Segments(ctx)
	if err != nil || g.Sizes != [3]int64{} || g.Of(5) != "A" || g.Of(0) != "C" {
		t.Fatalf("empty ranking: %+v %v", g, err)
	}
	// Spends 0, 10, …, 90 spread over both partitions.
	for i := range 10 {
		var k Counters
		k.Spend(0, false, float64(i*10), true)
		if err := s.Partition(i%2).Write(ctx, &Batch{Counters: &k}); err != nil {
			t.Fatal(err)
		}
	}
	// Top 20 % of 10: 90, 80 (A); next 30 %: 70, 60, 50 (B); rest C. A
	// spend within the bucket of a boundary goes with it (79.9 with 80).
	g, err = s.Segments(ctx)
	if err != nil || g.Sizes != [3]int64{2, 3, 5} {
		t.Fatalf("sizes %v %v, want 2 3 5", g.Sizes, err)
	}
	for spend, want := range map[float64]string{90: "A", 80: "A", 79.9: "A", 70: "B", 50: "B", 40: "C", 0: "C", 1e6: "A", -1: "C"} {
		if got := g.Of(spend); got != want {
			t.Errorf("segment of %g: %s, want %s", spend, got, want)
		}
	}
	// A customer moving from 0 to 200 and one leaving the ranking.
	var k Counters
	k.Spend(0, true, 200, true)
	k.Spend(10, true, 10, false)
	k.Spend(20, true, 20, true) // no change
	if err := s.Partition(0).Write(ctx, &Batch{Counters: &k}); err != nil {
		t.Fatal(err)
	}
	// 9 ranked: 200, 90 A; 80, 70, 60 B (ranks up to 5); 50, 40, 30, 20 C.
	if g, err = s.Segments(ctx); err != nil || g.Sizes != [3]int64{2, 3, 4} || g.Of(80) != "B" || g.Of(50) != "C" {
		t.Errorf("after moves: %+v %v", g, err)
	}
}

// TestSpendBucket: buckets are ordered and narrow.
func TestSpendBucket(t *testing.T) {
	prev := SpendBucket(0.001)
	for v := 0.001; v < 1e9; v *= 1.01 {
		b := SpendBucket(v)
		if b < prev {
			t.Fatalf("bucket of %g (%d) below the bucket of a smaller spend (%d)", v, b, prev)
		}
		if lo := SpendBucketFloor(b); !(lo < v && v <= lo*1.0409) {
			t.Fatalf("spend %g in bucket %d of floor %g", v, b, lo)
		}
		prev = b
	}
}

func TestIndexMember(t *testing.T) {
	id := alerts.ID("r", "c", time.Unix(0, 0))
	if m := indexMember(id); len(m) != 17 || alertID(m) != id {
		t.Errorf("alert id %s: member %q, back %s", id, m, alertID(indexMember(id)))
	}
	for _, other := range []string{"x1", "", "ABCDEF0123456789ABCDEF0123456789", "zzcdef0123456789abcdef0123456789", "\x00abc"} {
		if m := indexMember(other); m != other || alertID(m) != other {
			t.Errorf("id %q: member %q, back %q", other, m, alertID(m))
		}
	}
}
