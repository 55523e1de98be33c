// Package kpi computes churnwatch's retention KPIs from the per-customer
// facts the processor keeps in Redis (redisstate.KPIKeys): customer
// retention rate, churn rate, new and active customers, NPS, CSAT and CES
// for the current calendar month, quarter and year (UTC), and, over all
// time, repeat purchase rate, average lifetime value and segment sizes.
//
// Almost everything is a ZCOUNT over a sorted set scored by time or count,
// so a report costs O(log n) per figure in one pipeline. Two figures read
// members: the lifetime value sum (the LTV set, in chunks of 10,000) and,
// when a period is longer than the inactivity, the customers who joined in
// the period and churned already.
//
// A customer is active at an instant when its latest activity (any event)
// is at most the inactivity (default 180 days) before it, and churned once
// it is not. Facts hold only the latest activity, not the whole history, so
// "active at the period start" is approximated: a customer first seen at or
// before the start whose latest activity is at most the inactivity before
// the start counts as active then, including one that was inactive at the
// start and came back after it.
package kpi

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/state"
)

// DefaultInactivity is how long without any event makes a customer churned.
const DefaultInactivity = 180 * state.Day

// chunk is how many members one read of a sorted set returns.
const chunk = 10000

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

// periodCounts are one period's ZCOUNT replies.
type periodCounts struct {
	activeFrom, firstAfter, lapsed *redis.IntCmd
	nps                            [3]*redis.IntCmd
	csat                           [5]*redis.IntCmd
	ces                            [7]*redis.IntCmd
}

// Compute reads the facts under prefix (default "cw") and returns the
// KPIs as of now, with customers churned after inactivity without an event
// (DefaultInactivity when not positive).
func Compute(ctx context.Context, rdb redis.UniversalClient, prefix string, now time.Time, inactivity time.Duration) (*Report, error) {
	if inactivity <= 0 {
		inactivity = DefaultInactivity
	}
	k := redisstate.NewKPIKeys(prefix)
	now = now.UTC().Truncate(time.Millisecond)
	nowMS, iv := now.UnixMilli(), inactivity.Milliseconds()
	starts := PeriodStarts(now)
	r := &Report{AsOf: now, InactivityDays: inactivity.Hours() / 24}

	var pc [3]periodCounts
	var customers, active, buyers, repeat *redis.IntCmd
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		customers = p.ZCard(ctx, k.First)
		active = p.ZCount(ctx, k.Last, num(nowMS-iv), "+inf")
		buyers = p.ZCount(ctx, k.Purchases, "1", "+inf")
		repeat = p.ZCount(ctx, k.Purchases, "2", "+inf")
		for i, st := range starts {
			p0 := st.UnixMilli()
			c := &pc[i]
			c.activeFrom = p.ZCount(ctx, k.Last, num(p0-iv), "+inf")
			c.firstAfter = p.ZCount(ctx, k.First, "("+num(p0), "+inf")
			c.lapsed = p.ZCount(ctx, k.Last, num(p0-iv), "("+num(nowMS-iv))
			for j, key := range k.NPS {
				c.nps[j] = p.ZCount(ctx, key, num(p0), "+inf")
			}
			for j, key := range k.CSAT {
				c.csat[j] = p.ZCount(ctx, key, num(p0), "+inf")
			}
			for j, key := range k.CES {
				c.ces[j] = p.ZCount(ctx, key, num(p0), "+inf")
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count KPI facts: %w", err)
	}
	r.Customers, r.ActiveCustomers = customers.Val(), active.Val()
	r.Buyers, r.RepeatBuyers = buyers.Val(), repeat.Val()
	r.RepeatPurchaseRate = percent(r.RepeatBuyers, r.Buyers)

	joinedAndChurned, err := newChurned(ctx, rdb, &k, starts, nowMS-iv)
	if err != nil {
		return nil, err
	}
	for i, name := range PeriodNames {
		c, per := &pc[i], r.Periods.ByName(name)
		per.Start = starts[i]
		per.CustomersAtStart = max(0, c.activeFrom.Val()-c.firstAfter.Val())
		per.CustomersAtEnd = r.ActiveCustomers
		per.NewCustomers = c.firstAfter.Val()
		per.ChurnedCustomers = max(0, c.lapsed.Val()-joinedAndChurned[i])
		per.RetentionRate = percent(per.CustomersAtEnd-per.NewCustomers, per.CustomersAtStart)
		per.ChurnRate = percent(per.ChurnedCustomers, per.CustomersAtStart)

		per.Promoters, per.Passives, per.Detractors = c.nps[0].Val(), c.nps[1].Val(), c.nps[2].Val()
		if n := per.Promoters + per.Passives + per.Detractors; n > 0 {
			v := float64(per.Promoters-per.Detractors) / float64(n) * 100
			per.NPS = &v
		}
		per.CSATAverage, per.CSATResponses = average(c.csat[:])
		per.CSATSatisfied = percent(c.csat[3].Val()+c.csat[4].Val(), per.CSATResponses)
		per.CESAverage, per.CESResponses = average(c.ces[:])
	}

	n, total, err := sum(ctx, rdb, k.LTV)
	if err != nil {
		return nil, err
	}
	r.TotalLifetimeSpend = total
	if n > 0 {
		v := total / float64(n)
		r.AverageLifetimeValue = &v
	}

	a, b, c, err := redisstate.New(rdb, prefix).SegmentSizes(ctx)
	if err != nil {
		return nil, err
	}
	r.Segments = Segments{A: a, B: b, C: c}
	return r, nil
}

// newChurned counts, per period, the customers first seen after its start
// whose latest activity is before churnedBefore (now − inactivity). They
// are among those whose activity lapsed in the period but were not there
// at its start. Only periods that began before churnedBefore can have any.
func newChurned(ctx context.Context, rdb redis.UniversalClient, k *redisstate.KPIKeys, starts [3]time.Time, churnedBefore int64) ([3]int64, error) {
	var out [3]int64
	earliest := starts[0].UnixMilli()
	for _, st := range starts {
		earliest = min(earliest, st.UnixMilli())
	}
	if earliest >= churnedBefore {
		return out, nil
	}
	// Members of the first-seen set in (earliest, churnedBefore), by rank.
	from, err := rdb.ZCount(ctx, k.First, "-inf", num(earliest)).Result()
	if err != nil {
		return out, fmt.Errorf("count KPI facts: %w", err)
	}
	for at := from; ; at += chunk {
		zs, err := rdb.ZRangeWithScores(ctx, k.First, at, at+chunk-1).Result()
		if err != nil {
			return out, fmt.Errorf("read first-seen facts: %w", err)
		}
		ids := make([]string, 0, len(zs))
		firsts := make([]int64, 0, len(zs))
		done := len(zs) < chunk
		for _, z := range zs {
			f := int64(z.Score)
			if f >= churnedBefore {
				done = true
				break
			}
			if f > earliest {
				ids = append(ids, z.Member.(string))
				firsts = append(firsts, f)
			}
		}
		if len(ids) > 0 {
			lasts, err := rdb.ZMScore(ctx, k.Last, ids...).Result()
			if err != nil {
				return out, fmt.Errorf("read last-activity facts: %w", err)
			}
			for j, l := range lasts {
				if l == 0 || int64(l) >= churnedBefore {
					continue // no activity recorded (written meanwhile) or still active
				}
				for i, st := range starts {
					if firsts[j] > st.UnixMilli() {
						out[i]++
					}
				}
			}
		}
		if done {
			return out, nil
		}
	}
}

// sum adds up the scores of key, reading chunk members at a time.
func sum(ctx context.Context, rdb redis.UniversalClient, key string) (n int64, total float64, err error) {
	for at := int64(0); ; at += chunk {
		zs, err := rdb.ZRangeWithScores(ctx, key, at, at+chunk-1).Result()
		if err != nil {
			return 0, 0, fmt.Errorf("read %s: %w", key, err)
		}
		for _, z := range zs {
			total += z.Score
		}
		n += int64(len(zs))
		if len(zs) < chunk {
			return n, total, nil
		}
	}
}

// average is the mean score of answers counted per score (counts[i] holds
// score i+1) and how many there are.
func average(counts []*redis.IntCmd) (*float64, int64) {
	var n, total int64
	for i, c := range counts {
		n += c.Val()
		total += int64(i+1) * c.Val()
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

func num(ms int64) string { return strconv.FormatInt(ms, 10) }
