package alerts

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestCodecRoundTrip(t *testing.T) {
	at := time.Date(2026, 5, 4, 3, 2, 1, 123456000, time.UTC)
	nps := int64(3)
	for _, a := range []Alert{
		{AlertID: ID("r", "c", at), Rule: "r", Severity: "high", CustomerID: "c {1}", Status: Firing, Time: at,
			RiskScore: 72, Reasons: []string{"no purchase for 181 days", "tier vip"},
			Customer: Summary{Tier: "vip", Segment: "A", LastPurchaseAt: &at, TotalSpend: 1234.5, OpenTickets: 2, NPS: &nps}, Holdout: true},
		{AlertID: "x", Rule: "r", Status: Resolved, Time: at, Reasons: []string{}},
		{AlertID: "y", Rule: "r", Status: Resolved},
	} {
		b := a.AppendBinary(nil)
		back, err := Decode(a.AlertID, b)
		if err != nil {
			t.Fatalf("%s: %v", a.AlertID, err)
		}
		if !reflect.DeepEqual(back, a) {
			t.Errorf("round trip:\n got %+v\nwant %+v", back, a)
		}
		j1, _ := json.Marshal(a)
		j2, _ := json.Marshal(back)
		if string(j1) != string(j2) {
			t.Errorf("JSON differs after the round trip:\n%s\n%s", j1, j2)
		}
		if len(b) >= len(j1) {
			t.Errorf("binary %d bytes, JSON %d", len(b), len(j1))
		}
		for i := range b {
			if _, err := Decode(a.AlertID, b[:i]); err == nil {
				t.Fatalf("%s: %d of %d bytes decoded without error", a.AlertID, i, len(b))
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	at := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	a := Alert{AlertID: "a", Rule: "r", Status: Firing, Time: at, Reasons: []string{"x"}, Customer: Summary{LastPurchaseAt: &at}}
	f.Add(a.AppendBinary(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := Decode("a", b)
		if err != nil {
			return
		}
		y, err := Decode("a", x.AppendBinary(nil))
		if err != nil || !reflect.DeepEqual(x, y) {
			t.Fatalf("re-encoded alert does not decode to itself: %v", err)
		}
	})
}
