package delivery

import (
	"context"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/internal/redistest"
	"github.com/churnwatch/churnwatch/webhook"
)

// TestStoreOnRedisCluster: the multi-key scripts and transactions of the
// delivery store run on a Redis Cluster (every key carries the tag {wh}).
func TestStoreOnRedisCluster(t *testing.T) {
	s := NewStore(redistest.StartCluster(t), "")
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	notice := func(customer, rule string) *Notice {
		id := customer + "-" + rule
		return &Notice{EventID: id + "-firing", AlertID: id, Rule: rule, Customer: customer, Status: "firing", Body: []byte(`{}`)}
	}
	d, err := s.Accept(ctx, notice("c1", "ticket-surge"), []string{"crm", "slack"}, webhook.DefaultCaps, now)
	if err != nil || !d.Notify {
		t.Fatalf("accept: %+v %v", d, err)
	}
	if d, err := s.Accept(ctx, notice("c1", "usage-drop"), []string{"crm"}, webhook.DefaultCaps, now); err != nil || !d.Notify {
		t.Fatalf("second rule: %+v %v", d, err)
	}
	if d, err := s.Accept(ctx, notice("c1", "nps-detractor"), []string{"crm"}, webhook.DefaultCaps, now); err != nil || d.Reason != "cap-customer" {
		t.Fatalf("third rule: %+v %v, want the customer cap", d, err)
	}
	jobs, err := s.Claim(ctx, "crm", now, time.Minute, 10)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("claim: %d jobs, %v", len(jobs), err)
	}
	if err := s.Delivered(ctx, jobs[0]); err != nil {
		t.Fatal(err)
	}
	jobs[1].DeadReason = "refused"
	if err := s.Dead(ctx, jobs[1], now); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Replay(ctx, "crm", nil, now); n != 1 || err != nil {
		t.Fatalf("replay: %d %v", n, err)
	}
	if sup, err := s.Suppressed(ctx, 10); err != nil || len(sup) != 1 {
		t.Fatalf("suppressed: %v %v", sup, err)
	}
	sl, err := s.AddSilence(ctx, webhook.Silence{CustomerID: "c2", Until: now.Add(time.Hour), Comment: "legal hold"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ExpireSilence(ctx, sl.ID, now); err != nil {
		t.Fatal(err)
	}
	if p, dead, err := s.Counts(ctx, "crm"); p != 1 || dead != 0 || err != nil {
		t.Errorf("crm: pending %d dead %d %v", p, dead, err)
	}
}
