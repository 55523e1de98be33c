// Package kpi computes churnwatch's retention KPIs from the counters the
// processor keeps in Redis (redisstate.Counters): customer retention rate,
// churn rate, new and active customers, NPS, CSAT and CES for the current
// calendar month, quarter and year (UTC), and, over all time, repeat
// purchase rate, average lifetime value and segment sizes. A report reads
// one hash per internal partition; it costs the same for ten customers as
// for ten million, and the processor keeps nothing per customer for it.
//
// A customer is active at an instant when its latest activity (any event)
// is at most the inactivity (default 180 days) before it, and churned once
// it is not. Latest activity is counted to the hour: a customer whose
// latest activity falls in the hour that holds such a boundary counts as
// active at it. Customers are counted by the month they were first seen
// and feedback answers by their month, which the period starts (months,
// quarters, years) divide exactly. The counters hold only the latest
// activity, not the whole history, so "active at the period start" is
// approximated: a customer first seen before the period whose latest
// activity is at most the inactivity before the start counts as active
// then, including one that was inactive at the start and came back after
// it.
package kpi

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/state"
)

// DefaultInactivity is how long without any event makes a customer churned.
const DefaultInactivity = 180 * state.Day

// Report is one computation of the KPIs. Ratios that are undefined (no
// customers or answers to divide by) are null.
type Report struct {
	// AsOf is the instant the report describes ("now"): the processor's
	// event-time watermark.
	AsOf           time.Time `json:"as_of"`
	InactivityDays float64   `json:"inactivity_days"`
	Periods        Periods   `json:"periods"`
	// Customers is every customer seen and not erased; ActiveCustomers
	// those active at AsOf.
	Customers       int64 `json:"customers"`
	ActiveCustomers int64 `json:"active_customers"`
	// Buyers have at least one purchase, RepeatBuyers at least two;
	// RepeatPurchaseRate = RepeatBuyers / Buyers × 100.
	Buyers             int64    `json:"buyers"`
	RepeatBuyers       int64    `json:"repeat_buyers"`
	RepeatPurchaseRate *float64 `json:"repeat_purchase_rate"`
	// TotalLifetimeSpend sums every customer's lifetime spend;
	// AverageLifetimeValue divides it by the customers with at least one
	// purchase (not by all customers).
	TotalLifetimeSpend   float64  `json:"total_lifetime_spend"`
	AverageLifetimeValue *float64 `json:"average_lifetime_value"`
	Segments             Segments `json:"segments"`
}

// Periods are the current calendar periods (UTC) containing AsOf.
type Periods struct {
	Month   Period `json:"month"`
	Quarter Period `json:"quarter"`
	Year    Period `json:"year"`
}

// PeriodNames are the names of the periods, as in JSON and metric labels.
var PeriodNames = [3]string{"month", "quarter", "year"}

// ByName returns the period named name (see PeriodNames), nil if none.
func (ps *Periods) ByName(name string) *Period {
	switch name {
	case "month":
		return &ps.Month
	case "quarter":
		return &ps.Quarter
	case "year":
		return &ps.Year
	}
	return nil
}

// Period holds the KPIs of one period, from Start to the report's AsOf.
type Period struct {
	Start time.Time `json:"start"`
	// CustomersAtStart (S) were active at Start (see the package
	// documentation for the approximation); CustomersAtEnd (E) are active
	// at AsOf; NewCustomers (N) were first seen after Start.
	CustomersAtStart int64 `json:"customers_at_start"`
	CustomersAtEnd   int64 `json:"customers_at_end"`
	NewCustomers     int64 `json:"new_customers"`
	// ChurnedCustomers were first seen at or before Start, active at some
	// point of the period or at Start, and have churned by AsOf.
	ChurnedCustomers int64 `json:"churned_customers"`
	// RetentionRate is (E − N) / S × 100; ChurnRate is ChurnedCustomers /
	// S × 100. Both are null when S is 0.
	RetentionRate *float64 `json:"retention_rate_percent"`
	ChurnRate     *float64 `json:"churn_rate_percent"`

	// Feedback counts each customer's latest answer of a kind once, when
	// that answer falls in the period. NPS = % promoters (9–10) −
	// % detractors (0–6); CSATSatisfied is the share of CSAT answers of 4
	// or 5.
	NPS           *float64 `json:"nps"`
	Promoters     int64    `json:"nps_promoters"`
	Passives      int64    `json:"nps_passives"`
	Detractors    int64    `json:"nps_detractors"`
	CSATAverage   *float64 `json:"csat_average"`
	CSATSatisfied *float64 `json:"csat_satisfied_percent"`
	CSATResponses int64    `json:"csat_responses"`
	CESAverage    *float64 `json:"ces_average"`
	CESResponses  int64    `json:"ces_responses"`
}

// Segments counts the customers of the spend ranking per segment.
type Segments struct {
	A int64 `json:"A"`
	B int64 `json:"B"`
	C int64 `json:"C"`
}

// PeriodStarts returns the UTC starts of the month, quarter and year that
// contain t, in the order of PeriodNames.
func PeriodStarts(t time.Time) [3]time.Time {
	t = t.UTC()
	y, m, _ := t.Date()
	q := time.Month((int(m)-1)/3*3 + 1)
	return [3]time.Time{
		time.Date(y, m, 1, 0, 0, 0, 0, time.UTC),
		time.Date(y, q, 1, 0, 0, 0, 0, time.UTC),
		time.Date(y, time.January, 1, 0, 0, 0, 0, time.UTC),
	}
}

// Compute reads the counters under prefix (default "cw") and returns the
// KPIs as of now, with customers churned after inactivity without an event
// (DefaultInactivity when not positive).
func Compute(ctx context.Context, rdb redis.UniversalClient, prefix string, now time.Time, inactivity time.Duration) (*Report, error) {
	if inactivity <= 0 {
		inactivity = DefaultInactivity
	}
	store := redisstate.New(rdb, prefix)
	k, err := store.KPICounts(ctx)
	if err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Millisecond)
	nowMS, iv := now.UnixMilli(), inactivity.Milliseconds()
	starts := PeriodStarts(now)
	r := &Report{AsOf: now, InactivityDays: inactivity.Hours() / 24}

	// Latest activity counts to the hour: a customer active in the hour
	// that holds a boundary counts as active at it.
	churnHour := redisstate.HourOf(nowMS - iv)
	var startHour, startMonth [3]int64
	for i, st := range starts {
		startHour[i] = redisstate.HourOf(st.UnixMilli() - iv)
		startMonth[i] = int64(redisstate.MonthOf(st.UnixMilli()))
	}
	var activeFrom, firstAfter, lapsed, joinedAndChurned [3]int64
	for fl, n := range k.Customers {
		first, last := fl[0], fl[1]
		r.Customers += n
		if last >= churnHour {
			r.ActiveCustomers += n
		}
		for i := range starts {
			if last >= startHour[i] {
				activeFrom[i] += n
				if last < churnHour {
					lapsed[i] += n
				}
			}
			if first >= startMonth[i] {
				firstAfter[i] += n
				if last < churnHour {
					joinedAndChurned[i] += n
				}
			}
		}
	}
	r.Buyers, r.RepeatBuyers = k.Buyers, k.Repeat
	r.RepeatPurchaseRate = percent(r.RepeatBuyers, r.Buyers)
	r.TotalLifetimeSpend = k.LTV
	if k.Buyers > 0 {
		v := k.LTV / float64(k.Buyers)
		r.AverageLifetimeValue = &v
	}

	for i, name := range PeriodNames {
		per := r.Periods.ByName(name)
		per.Start = starts[i]
		per.CustomersAtStart = max(0, activeFrom[i]-firstAfter[i])
		per.CustomersAtEnd = r.ActiveCustomers
		per.NewCustomers = firstAfter[i]
		per.ChurnedCustomers = max(0, lapsed[i]-joinedAndChurned[i])
		per.RetentionRate = percent(per.CustomersAtEnd-per.NewCustomers, per.CustomersAtStart)
		per.ChurnRate = percent(per.ChurnedCustomers, per.CustomersAtStart)

		var nps [3]int64
		csat, ces := make([]int64, 5), make([]int64, 7)
		for kind, counts := range k.Answers {
			for sm, n := range counts {
				score, month := sm[0], sm[1]
				if month < startMonth[i] {
					continue
				}
				switch {
				case kind == "nps" && score >= 0 && score < 3:
					nps[score] += n
				case kind == "csat" && score >= 1 && score <= 5:
					csat[score-1] += n
				case kind == "ces" && score >= 1 && score <= 7:
					ces[score-1] += n
				}
			}
		}
		per.Promoters = nps[redisstate.Promoter]
		per.Passives = nps[redisstate.Passive]
		per.Detractors = nps[redisstate.Detractor]
		if n := per.Promoters + per.Passives + per.Detractors; n > 0 {
			v := float64(per.Promoters-per.Detractors) / float64(n) * 100
			per.NPS = &v
		}
		per.CSATAverage, per.CSATResponses = average(csat)
		per.CSATSatisfied = percent(csat[3]+csat[4], per.CSATResponses)
		per.CESAverage, per.CESResponses = average(ces)
	}

	g, err := store.Segments(ctx)
	if err != nil {
		return nil, err
	}
	r.Segments = Segments{A: g.Sizes[0], B: g.Sizes[1], C: g.Sizes[2]}
	return r, nil
}

// average is the mean score of answers counted per score (counts[i] holds
// score i+1) and how many there are.
func average(counts []int64) (*float64, int64) {
	var n, total int64
	for i, c := range counts {
		n += c
		total += int64(i+1) * c
	}
	if n == 0 {
		return nil, 0
	}
	v := float64(total) / float64(n)
	return &v, n
}

// percent is a / b × 100, nil when b is 0.
func percent(a, b int64) *float64 {
	if b == 0 {
		return nil
	}
	v := float64(a) / float64(b) * 100
	return &v
}
