package alerts

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

func TestIDStable(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a := ID("vip-no-purchase-180d", "c1", at)
	if a != ID("vip-no-purchase-180d", "c1", at.In(time.FixedZone("x", 3600))) {
		t.Error("the same instant in another zone gives another id")
	}
	for _, other := range []string{ID("ticket-surge", "c1", at), ID("vip-no-purchase-180d", "c2", at), ID("vip-no-purchase-180d", "c1", at.Add(time.Microsecond))} {
		if other == a {
			t.Errorf("distinct episodes share id %s", a)
		}
	}
	if len(a) != 32 {
		t.Errorf("id %q: want 32 hex characters", a)
	}
}

func TestCloudEvent(t *testing.T) {
	last := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	a := Alert{AlertID: "abc", Rule: "vip-no-purchase-180d", Severity: "high", CustomerID: "c1", Status: Firing,
		Time: time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC), RiskScore: 45, Reasons: []string{"no purchase for 180 days"},
		Customer: Summary{Tier: "vip", Segment: "A", LastPurchaseAt: &last, TotalSpend: 12.5}}
	b, err := a.MarshalCloudEvent()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"specversion": "1.0", "id": "abc-firing", "source": "churnwatch", "type": "churnwatch.alert.firing",
		"subject": "c1", "time": "2026-02-28T00:00:00Z", "datacontenttype": "application/json"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	data := m["data"].(map[string]any)
	for _, k := range []string{"alert_id", "rule", "severity", "customer_id", "status", "risk_score", "reasons", "customer"} {
		if _, ok := data[k]; !ok {
			t.Errorf("data lacks %s", k)
		}
	}
	if data["customer"].(map[string]any)["last_purchase_at"] != "2025-09-01T00:00:00Z" {
		t.Errorf("customer summary %v", data["customer"])
	}
	ce, err := ParseCloudEvent(b)
	if err != nil || !ce.Data.Time.Equal(a.Time) || ce.Data.AlertID != "abc" {
		t.Fatalf("parse back: %+v %v", ce, err)
	}
	a.Status, a.Reasons = Resolved, nil
	b, _ = a.MarshalCloudEvent()
	json.Unmarshal(b, &m) //nolint:errcheck // checked above
	if m["id"] != "abc-resolved" || m["type"] != "churnwatch.alert.resolved" || m["data"].(map[string]any)["reasons"] == nil {
		t.Errorf("resolved event: %v", m)
	}
}

func TestInHoldout(t *testing.T) {
	const n = 20000
	in10, in20 := 0, 0
	for i := range n {
		id := "c" + strconv.Itoa(i)
		a, b := InHoldout(id, 0.1), InHoldout(id, 0.2)
		if a != InHoldout(id, 0.1) {
			t.Fatalf("%s: not stable", id)
		}
		if a && !b {
			t.Fatalf("%s: held out at 10 %% but not at 20 %%", id)
		}
		if a {
			in10++
		}
		if b {
			in20++
		}
	}
	if in10 < n*9/100 || in10 > n*11/100 || in20 < n*19/100 || in20 > n*21/100 {
		t.Errorf("held out %d and %d of %d at 10 %% and 20 %%", in10, in20, n)
	}
	if InHoldout("c1", 0) || !InHoldout("c1", 1) {
		t.Error("share 0 must hold out nobody and share 1 everybody")
	}
}
