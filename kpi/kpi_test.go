package kpi

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/internal/redistest"
	"github.com/churnwatch/churnwatch/redisstate"
)

func at(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

// facts are a customer first seen and last active at the given days (UTC
// midnight unless a time is given), without purchases or answers.
func facts(first, last string) redisstate.KPIFacts {
	day := func(s string) int64 {
		if !strings.Contains(s, "T") {
			s += "T00:00:00Z"
		}
		return at(s)
	}
	return redisstate.KPIFacts{First: day(first), Last: day(last), NPS: -1, CSAT: -1, CES: -1}
}

func buy(n int64, total float64) func(*redisstate.KPIFacts) {
	return func(f *redisstate.KPIFacts) { f.Purchases, f.LTV = n, total }
}

func nps(score int, when string) func(*redisstate.KPIFacts) {
	return func(f *redisstate.KPIFacts) { f.NPS, f.NPSAt = score, at(when+"T12:00:00Z") }
}

func csat(score int, when string) func(*redisstate.KPIFacts) {
	return func(f *redisstate.KPIFacts) { f.CSAT, f.CSATAt = score, at(when+"T12:00:00Z") }
}

func ces(score int, when string) func(*redisstate.KPIFacts) {
	return func(f *redisstate.KPIFacts) { f.CES, f.CESAt = score, at(when+"T12:00:00Z") }
}

// writer writes facts through the store's batch write, as the processor
// does, remembering each customer's facts as the old ones of its next
// change.
type writer struct {
	t     *testing.T
	store *redisstate.Store
	cur   map[string]redisstate.KPIFacts
}

func (w *writer) set(id string, f redisstate.KPIFacts, edits ...func(*redisstate.KPIFacts)) {
	w.t.Helper()
	for _, e := range edits {
		e(&f)
	}
	old, ok := w.cur[id]
	if !ok {
		old = redisstate.KPIFacts{NPS: -1, CSAT: -1, CES: -1}
	}
	w.cur[id] = f
	var k redisstate.Counters
	k.Facts(old, f)
	if err := w.store.Partition(0).Write(context.Background(), &redisstate.Batch{Counters: &k}); err != nil {
		w.t.Fatal(err)
	}
}

// edit changes a customer's current facts.
func (w *writer) edit(id string, edits ...func(*redisstate.KPIFacts)) {
	w.t.Helper()
	w.set(id, w.cur[id], edits...)
}

func approx(t *testing.T, what string, got *float64, want float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: null, want %.6g", what, want)
		return
	}
	if math.Abs(*got-want) > 1e-9 {
		t.Errorf("%s: %.10g, want %.10g", what, *got, want)
	}
}

func TestCompute(t *testing.T) {
	rdb, _ := redistest.Start(t)
	ctx := context.Background()
	store := redisstate.New(rdb, "")
	if err := store.Init(ctx, 1); err != nil {
		t.Fatal(err)
	}
	w := &writer{t: t, store: store, cur: map[string]redisstate.KPIFacts{}}

	// now − 180 days = 2026-02-16T12:00Z. Period starts and start − 180 days:
	// month 2026-08-01 (2026-02-02), quarter 2026-07-01 (2026-01-02),
	// year 2026-01-01 (2025-07-05).
	now := time.Date(2026, 8, 15, 12, 0, 0, 0, time.UTC)

	w.set("c1", facts("2025-01-10", "2026-08-10"), buy(5, 500), nps(10, "2026-08-03"), csat(5, "2026-08-02"), ces(2, "2026-08-05"))
	w.set("c2", facts("2025-03-01", "2026-01-20"), buy(1, 50), nps(3, "2026-01-15"), csat(2, "2026-03-01"))
	w.set("c3", facts("2024-06-01", "2025-06-01"))
	w.set("c4", facts("2026-03-10", "2026-03-20"), buy(1, 10), nps(2, "2026-03-15"), csat(4, "2026-07-10"), ces(5, "2026-07-02"))
	w.edit("c4", buy(2, 30.5), nps(8, "2026-07-20"), ces(6, "2026-08-06")) // detractor → passive, CES 5 → 6
	w.set("c5", facts("2026-01-05", "2026-02-01"), buy(1, 0))
	w.set("c6", facts("2026-08-05", "2026-08-14"), nps(9, "2026-08-12"), csat(3, "2026-06-30"))
	w.set("c7", facts("2026-07-15", "2026-07-15"), nps(6, "2026-08-10"), csat(1, "2026-08-09"))
	w.set("c8", facts("2025-12-01", "2026-02-10"), buy(3, 120), nps(9, "2026-02-05"), ces(7, "2026-02-01"))
	w.set("c10", facts("2026-08-01", "2026-08-01")) // first seen exactly at the month's start
	// An erased customer leaves every set.
	w.set("c9", facts("2025-01-01", "2026-08-14"), buy(4, 1000), nps(10, "2026-08-02"), csat(5, "2026-08-02"), ces(1, "2026-08-02"))
	w.set("c9", redisstate.KPIFacts{Deleted: true, NPS: -1, CSAT: -1, CES: -1})

	var spend redisstate.Counters
	for _, v := range []float64{500, 0, 0, 30, 0, 0, 0, 120, 0} {
		spend.Spend(0, false, v, true)
	}
	if err := store.Partition(0).Write(ctx, &redisstate.Batch{Counters: &spend}); err != nil {
		t.Fatal(err)
	}

	r, err := Compute(ctx, rdb, "", now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !r.AsOf.Equal(now) || r.InactivityDays != 180 {
		t.Errorf("as_of %s, inactivity %g days", r.AsOf, r.InactivityDays)
	}
	// Active now (last ≥ 2026-02-16T12:00Z): c1, c4, c6, c7, c10.
	if r.Customers != 9 || r.ActiveCustomers != 5 {
		t.Errorf("customers %d, active %d; want 9, 5", r.Customers, r.ActiveCustomers)
	}
	type counts struct{ S, E, N, Churned int64 }
	for _, tt := range []struct {
		name                string
		start               time.Time
		c                   counts
		crr, churn          float64
		prom, pass, det     int64
		nps                 float64
		csatN               int64
		csat, csatSatisfied float64
		cesN                int64
		ces                 float64
	}{
		// S: c1 c4 c7 c8 c10; N: c6; churned: c8.
		{"month", time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC), counts{5, 5, 1, 1}, 80, 20,
			2, 0, 1, 100.0 / 3, 2, 3, 50, 2, 4},
		// S: c1 c2 c4 c5 c8; N: c6 c7 c10; churned: c2 c5 c8.
		{"quarter", time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), counts{5, 5, 3, 3}, 40, 60,
			2, 1, 1, 25, 3, 10.0 / 3, 200.0 / 3, 2, 4},
		// S: c1 c2 c8; N: c4 c5 c6 c7 c10; churned: c2 c8 (c5 joined in the year).
		{"year", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), counts{3, 5, 5, 2}, 0, 200.0 / 3,
			3, 1, 2, 100.0 / 6, 5, 3, 40, 3, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := r.Periods.ByName(tt.name)
			if !p.Start.Equal(tt.start) {
				t.Errorf("start %s, want %s", p.Start, tt.start)
			}
			if g := (counts{p.CustomersAtStart, p.CustomersAtEnd, p.NewCustomers, p.ChurnedCustomers}); g != tt.c {
				t.Errorf("S, E, N, churned = %+v, want %+v", g, tt.c)
			}
			approx(t, "retention rate", p.RetentionRate, tt.crr)
			approx(t, "churn rate", p.ChurnRate, tt.churn)
			if p.Promoters != tt.prom || p.Passives != tt.pass || p.Detractors != tt.det {
				t.Errorf("NPS answers %d/%d/%d, want %d/%d/%d", p.Promoters, p.Passives, p.Detractors, tt.prom, tt.pass, tt.det)
			}
			approx(t, "NPS", p.NPS, tt.nps)
			if p.CSATResponses != tt.csatN || p.CESResponses != tt.cesN {
				t.Errorf("CSAT/CES answers %d/%d, want %d/%d", p.CSATResponses, p.CESResponses, tt.csatN, tt.cesN)
			}
			approx(t, "CSAT", p.CSATAverage, tt.csat)
			approx(t, "CSAT satisfied", p.CSATSatisfied, tt.csatSatisfied)
			approx(t, "CES", p.CESAverage, tt.ces)
		})
	}
	// Buyers c1 c2 c4 c5 c8; repeat c1 c4 c8; spend 500+50+30.5+0+120.
	if r.Buyers != 5 || r.RepeatBuyers != 3 {
		t.Errorf("buyers %d, repeat %d; want 5, 3", r.Buyers, r.RepeatBuyers)
	}
	approx(t, "repeat purchase rate", r.RepeatPurchaseRate, 60)
	if r.TotalLifetimeSpend != 700.5 {
		t.Errorf("total lifetime spend %g, want 700.5", r.TotalLifetimeSpend)
	}
	approx(t, "average lifetime value", r.AverageLifetimeValue, 140.1)
	// 9 ranked: A is the top ceil(20 %) = 2 (≥ 120), B down to rank 5
	// (threshold 0, so spend > 0): c4; C the other 6.
	if r.Segments != (Segments{A: 2, B: 1, C: 6}) {
		t.Errorf("segments %+v, want A 2, B 1, C 6", r.Segments)
	}

	// A short inactivity with a month that began before now − inactivity:
	// a customer who joined in the month and lapsed is not churned of S.
	r2, err := Compute(ctx, rdb, "", now, 10*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// now − 10 days = 2026-08-05T12:00Z, month start − 10 days = 2026-07-22.
	// Active now: c1 (08-10), c6 (08-14). S (first ≤ 08-01, last ≥ 07-22):
	// c1, c10. N: c6. Lapsed in [07-22, 08-05T12:00): c10 → churned 1.
	m := r2.Periods.Month
	if m.CustomersAtStart != 2 || m.CustomersAtEnd != 2 || m.NewCustomers != 1 || m.ChurnedCustomers != 1 {
		t.Errorf("10-day month: S %d E %d N %d churned %d; want 2 2 1 1", m.CustomersAtStart, m.CustomersAtEnd, m.NewCustomers, m.ChurnedCustomers)
	}
	approx(t, "10-day month retention", m.RetentionRate, 50)
	approx(t, "10-day month churn", m.ChurnRate, 50)
}

func TestComputeEmpty(t *testing.T) {
	rdb, _ := redistest.Start(t)
	r, err := Compute(context.Background(), rdb, "x", time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"as_of", "inactivity_days", "periods", "repeat_purchase_rate", "average_lifetime_value", "segments", "customers"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report has no %q: %s", k, b)
		}
	}
	if m["repeat_purchase_rate"] != nil || m["average_lifetime_value"] != nil {
		t.Errorf("undefined ratios should be null: %s", b)
	}
	month := m["periods"].(map[string]any)["month"].(map[string]any)
	if month["retention_rate_percent"] != nil || month["nps"] != nil || month["start"] != "2026-02-01T00:00:00Z" {
		t.Errorf("empty month: %v", month)
	}
	if q := m["periods"].(map[string]any)["quarter"].(map[string]any); q["start"] != "2026-01-01T00:00:00Z" {
		t.Errorf("quarter start %v", q["start"])
	}
	if s := m["segments"].(map[string]any); s["A"] != 0.0 || s["B"] != 0.0 || s["C"] != 0.0 {
		t.Errorf("segments %v", s)
	}
}

func TestPeriodStarts(t *testing.T) {
	for _, tt := range []struct{ at, q string }{
		{"2026-01-01T00:00:00Z", "2026-01-01"}, {"2026-03-31T23:59:59Z", "2026-01-01"},
		{"2026-04-01T00:00:00Z", "2026-04-01"}, {"2026-09-30T10:00:00+05:00", "2026-07-01"},
		{"2026-12-31T23:00:00-05:00", "2027-01-01"},
	} {
		tm, _ := time.Parse(time.RFC3339, tt.at)
		s := PeriodStarts(tm)
		if got := s[1].Format(time.DateOnly); got != tt.q {
			t.Errorf("%s: quarter starts %s, want %s", tt.at, got, tt.q)
		}
		u := tm.UTC()
		if s[0].Month() != u.Month() || s[0].Day() != 1 || s[2].Year() != u.Year() || s[2].YearDay() != 1 {
			t.Errorf("%s: starts %v", tt.at, s)
		}
	}
}
