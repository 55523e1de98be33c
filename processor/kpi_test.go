package processor

import (
	"context"
	"encoding/json"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/churnwatch/churnwatch/admin"
	"github.com/churnwatch/churnwatch/kpi"
)

func answer(c, kind string, at time.Time, score int) msg {
	return msg{"feedback", []byte(c), evt(nextID("f"), c, at, "kind", kind, "score", score)}
}

func erase(c string, at time.Time) msg {
	return msg{"customers", []byte(c), evt(nextID("c"), c, at, "deleted", true)}
}

// TestKPIs sends known customers through the whole pipeline and checks the
// retention KPIs, as /api/kpis serves them and as gauges.
func TestKPIs(t *testing.T) {
	wall := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	date := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 10, 0, 0, 0, time.UTC) }
	e := newEnvWith(t, wall, func(c *Config) { c.KPIInterval = time.Hour })
	e.produce(
		// k1: a buyer since 2025-09, active, promoter, CSAT 5.
		purchase("k1", date(2025, 9, 1), 100), purchase("k1", date(2026, 6, 10), 50),
		answer("k1", "nps", date(2026, 6, 5), 10), answer("k1", "csat", date(2026, 6, 6), 5),
		// k2: one purchase and last seen 2025-11-01: churned in the quarter and year.
		purchase("k2", date(2025, 8, 1), 30), usage("k2", date(2025, 11, 1), 1),
		// k3: joined this year, detractor (May), CES 4 (June).
		profile("k3", date(2026, 2, 1), "regular"), usage("k3", date(2026, 5, 20), 1),
		answer("k3", "nps", date(2026, 5, 20), 3), answer("k3", "ces", date(2026, 6, 2), 4),
		// k4: joined this month, three purchases, passive, CSAT 2, CES 6.
		purchase("k4", date(2026, 6, 3), 20), purchase("k4", date(2026, 6, 4), 20), purchase("k4", date(2026, 6, 5), 20),
		answer("k4", "nps", date(2026, 6, 6), 8), answer("k4", "csat", date(2026, 6, 7), 2), answer("k4", "ces", date(2026, 6, 8), 6),
		// k5: last seen 2025-12-10: active at every period start, churned since.
		usage("k5", date(2025, 12, 10), 1),
		// k6: erased.
		purchase("k6", date(2026, 1, 10), 10), answer("k6", "nps", date(2026, 2, 1), 10), erase("k6", date(2026, 3, 1)),
		// k7: a support ticket this month is its only activity.
		ticket("k7", "t-1", "opened", date(2026, 6, 12)),
	)
	r := e.start()
	asOf := wall.Add(-5 * time.Minute)
	e.waitWatermark(asOf, time.Minute)
	rep, err := r.p.refreshKPIs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.AsOf.Equal(asOf) {
		t.Errorf("as_of %s, want the watermark %s", rep.AsOf, asOf)
	}
	if got, err := r.p.KPIs(context.Background()); err != nil || got != any(rep) {
		t.Errorf("KPIs returned %v, %v; want the latest report", got, err)
	}

	// Through the admin API, as a client sees it.
	rec := httptest.NewRecorder()
	admin.API{KPIs: r.p.KPIs}.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/kpis", nil))
	var served kpi.Report
	if err := json.Unmarshal(rec.Body.Bytes(), &served); rec.Code != 200 || err != nil {
		t.Fatalf("GET /api/kpis: %d %v %s", rec.Code, err, rec.Body)
	}

	// now − 180 days = 2025-12-17T11:55Z; active now: k1 k3 k4 k7.
	if served.Customers != 6 || served.ActiveCustomers != 4 || served.InactivityDays != 180 {
		t.Errorf("customers %d, active %d, inactivity %g; want 6, 4, 180", served.Customers, served.ActiveCustomers, served.InactivityDays)
	}
	g := r.p.kpis.gauges
	near := func(what string, got *float64, want float64) {
		t.Helper()
		if got == nil || math.Abs(*got-want) > 1e-9 {
			t.Errorf("%s: %v, want %.6g", what, got, want)
		}
	}
	gauge := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("gauge %s: %g, want %.6g", what, got, want)
		}
	}
	for _, tt := range []struct {
		name                 string
		s, n, churned        int64
		crr, churn, nps      float64
		csat, satisfied, ces float64
	}{
		// S: k1 k3 k5 (first ≤ 06-01, last ≥ 2025-12-03); N: k4 k7; churned: k5.
		{"month", 3, 2, 1, 200.0 / 3, 100.0 / 3, 50, 3.5, 50, 5},
		// S: k1 k2 k3 k5 (last ≥ 2025-10-03); N: k4 k7; churned: k2 k5.
		{"quarter", 4, 2, 2, 50, 50, 0, 3.5, 50, 5},
		// S: k1 k2 k5; N: k3 k4 k7; churned: k2 k5.
		{"year", 3, 3, 2, 100.0 / 3, 200.0 / 3, 0, 3.5, 50, 5},
	} {
		p := served.Periods.ByName(tt.name)
		if p.CustomersAtStart != tt.s || p.NewCustomers != tt.n || p.ChurnedCustomers != tt.churned || p.CustomersAtEnd != 4 {
			t.Errorf("%s: S %d N %d churned %d E %d; want %d %d %d 4", tt.name, p.CustomersAtStart, p.NewCustomers, p.ChurnedCustomers, p.CustomersAtEnd, tt.s, tt.n, tt.churned)
		}
		near(tt.name+" retention", p.RetentionRate, tt.crr)
		near(tt.name+" churn", p.ChurnRate, tt.churn)
		near(tt.name+" NPS", p.NPS, tt.nps)
		near(tt.name+" CSAT", p.CSATAverage, tt.csat)
		near(tt.name+" CSAT satisfied", p.CSATSatisfied, tt.satisfied)
		near(tt.name+" CES", p.CESAverage, tt.ces)

		gauge(tt.name+" retention", testutil.ToFloat64(g.RetentionRate.WithLabelValues(tt.name)), tt.crr)
		gauge(tt.name+" churn", testutil.ToFloat64(g.ChurnRate.WithLabelValues(tt.name)), tt.churn)
		gauge(tt.name+" new", testutil.ToFloat64(g.NewCustomers.WithLabelValues(tt.name)), float64(tt.n))
		gauge(tt.name+" NPS", testutil.ToFloat64(g.NPS.WithLabelValues(tt.name)), tt.nps)
		gauge(tt.name+" CSAT", testutil.ToFloat64(g.CSATAverage.WithLabelValues(tt.name)), tt.csat)
		gauge(tt.name+" CES", testutil.ToFloat64(g.CESAverage.WithLabelValues(tt.name)), tt.ces)
	}
	// Buyers k1 k2 k4 (k6 erased); repeat k1 k4; lifetime spend 150 + 30 + 60.
	if served.Buyers != 3 || served.RepeatBuyers != 2 || served.TotalLifetimeSpend != 240 {
		t.Errorf("buyers %d, repeat %d, spend %g; want 3, 2, 240", served.Buyers, served.RepeatBuyers, served.TotalLifetimeSpend)
	}
	near("repeat purchase rate", served.RepeatPurchaseRate, 200.0/3)
	near("average lifetime value", served.AverageLifetimeValue, 80)
	// Spend ranking 150 (k1), 60 (k4), 30 (k2), 0 (k3, k5, k7).
	if served.Segments != (kpi.Segments{A: 2, B: 1, C: 3}) {
		t.Errorf("segments %+v, want A 2, B 1, C 3", served.Segments)
	}
	gauge("active", testutil.ToFloat64(g.ActiveCustomers), 4)
	gauge("repeat purchase rate", testutil.ToFloat64(g.RepeatPurchase), 200.0/3)
	gauge("average lifetime value", testutil.ToFloat64(g.AverageLTV), 80)
	for seg, want := range map[string]float64{"A": 2, "B": 1, "C": 3} {
		gauge("segment "+seg, testutil.ToFloat64(g.Segments.WithLabelValues(seg)), want)
	}

	// The gauges are in the registry /metrics serves.
	if n, err := testutil.GatherAndCount(r.p.Metrics().Registry,
		"churnwatch_kpi_retention_rate_percent", "churnwatch_kpi_churn_rate_percent", "churnwatch_kpi_new_customers",
		"churnwatch_kpi_active_customers", "churnwatch_kpi_nps", "churnwatch_kpi_csat_average", "churnwatch_kpi_ces_average",
		"churnwatch_kpi_repeat_purchase_rate_percent", "churnwatch_kpi_average_lifetime_value", "churnwatch_kpi_segment_customers",
	); err != nil || n != 6*3+1+2+3 {
		t.Errorf("KPI samples in the registry: %d %v, want %d", n, err, 6*3+1+2+3)
	}
}
