package redisstate

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/state"
)

// KPIFacts are what the retention KPIs need of one customer; a batch
// counts each customer's change of facts (Counters.Facts). Times are Unix
// milliseconds, 0 when none; scores are -1 when the customer never
// answered.
type KPIFacts struct {
	Deleted   bool  // erased: counted nowhere
	First     int64 // first seen
	Last      int64 // latest activity, over all event types
	Purchases int64 // lifetime purchase count, counted up to 2: all the repeat rate needs
	LTV       float64
	NPS       int
	NPSAt     int64
	CSAT      int
	CSATAt    int64
	CES       int
	CESAt     int64
}

// FactsOf returns the KPI facts of c.
func FactsOf(c *state.Customer) KPIFacts {
	if c.Deleted {
		return KPIFacts{Deleted: true, NPS: -1, CSAT: -1, CES: -1}
	}
	f := KPIFacts{
		First: ms(c.FirstSeen), Purchases: min(c.Purchases.Count, 2), LTV: c.Purchases.Total,
		NPS: c.Feedback.NPS, NPSAt: ms(c.Feedback.NPSAt),
		CSAT: c.Feedback.CSAT, CSATAt: ms(c.Feedback.CSATAt),
		CES: c.Feedback.CES, CESAt: ms(c.Feedback.CESAt),
	}
	for _, t := range c.LastSeen {
		f.Last = max(f.Last, ms(t))
	}
	return f
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// NPS categories of contract §2, as the KPI counters number them.
const (
	Promoter = iota
	Passive
	Detractor
)

// NPSCategory places an NPS score (0–10) into Promoter, Passive or
// Detractor.
func NPSCategory(score int) int {
	switch {
	case score >= 9:
		return Promoter
	case score >= 7:
		return Passive
	}
	return Detractor
}

// Counters are one batch's changes of its partition's aggregates, added
// up over the batch's customers and written as increments in the batch's
// transaction (so a replayed batch, whose states already hold its events,
// adds nothing): the KPI counters and the spend histogram. The zero value
// is ready to use; a nil *Counters changes nothing.
//
// The KPI counters of a partition are the hash "cw:{p3}:kpi":
//
//	l:<first month>:<last hour>  customers by the month of the instant (ms)
//	                             before they were first seen (MonthOf), so
//	                             that one first seen at a month's first
//	                             instant counts in the month before, and by
//	                             the hour (Unix hours) of their latest activity
//	buy, rep                     customers with at least one, two purchases
//	ltv                          their lifetime spend, summed
//	nps:<0|1|2>:<month>          customers whose latest NPS answer is a
//	                             promoter, passive, detractor one, by its month
//	csat:<1–5>:<month>, ces:<1–7>:<month>  the same for CSAT and CES scores
//
// and the spend histogram "cw:{p3}:spend" counts the ranked customers by
// SpendBucket of their trailing-365-day spend.
type Counters struct {
	kpi   map[counter]int64
	ltv   float64
	spend map[int32]int64
}

// counter names one field of the KPI counters.
type counter struct {
	kind byte // 'l', 'b' (buy), 'r' (rep), 'n' (NPS), 's' (CSAT), 'e' (CES)
	x    int32
	y    int64
}

// counterKinds names the kinds of counters that carry two numbers.
var counterKinds = map[byte]string{'l': "l", 'n': "nps", 's': "csat", 'e': "ces"}

func (c counter) field() string {
	switch c.kind {
	case 'b':
		return "buy"
	case 'r':
		return "rep"
	}
	return counterKinds[c.kind] + ":" + strconv.Itoa(int(c.x)) + ":" + strconv.FormatInt(c.y, 10)
}

// Facts counts a customer's change of facts from old to new.
func (k *Counters) Facts(old, new KPIFacts) {
	if old == new {
		return
	}
	k.facts(&old, -1)
	k.facts(&new, 1)
}

func (k *Counters) facts(f *KPIFacts, d int64) {
	if f.Deleted || f.First == 0 {
		return
	}
	if k.kpi == nil {
		k.kpi = map[counter]int64{}
	}
	k.kpi[counter{'l', MonthOf(f.First - 1), HourOf(max(f.Last, f.First))}] += d
	if f.Purchases >= 1 {
		k.kpi[counter{kind: 'b'}] += d
		k.ltv += float64(d) * f.LTV
	}
	if f.Purchases >= 2 {
		k.kpi[counter{kind: 'r'}] += d
	}
	if f.NPS >= 0 && f.NPS <= 10 {
		k.kpi[counter{'n', int32(NPSCategory(f.NPS)), int64(MonthOf(f.NPSAt))}] += d
	}
	if f.CSAT >= 1 && f.CSAT <= 5 {
		k.kpi[counter{'s', int32(f.CSAT), int64(MonthOf(f.CSATAt))}] += d
	}
	if f.CES >= 1 && f.CES <= 7 {
		k.kpi[counter{'e', int32(f.CES), int64(MonthOf(f.CESAt))}] += d
	}
}

// Spend counts a customer's move in the spend ranking: from old (when it
// was ranked) to new (when it is).
func (k *Counters) Spend(old float64, wasRanked bool, new float64, isRanked bool) {
	ob, nb := SpendBucket(old), SpendBucket(new)
	if wasRanked == isRanked && (ob == nb || !isRanked) {
		return
	}
	if k.spend == nil {
		k.spend = map[int32]int64{}
	}
	if wasRanked {
		k.spend[ob]--
	}
	if isRanked {
		k.spend[nb]++
	}
}

// write queues the non-zero changes on tx.
func (k *Counters) write(ctx context.Context, tx redis.Pipeliner, keys keys, p int) {
	if k == nil {
		return
	}
	for c, d := range k.kpi {
		if d != 0 {
			tx.HIncrBy(ctx, keys.kpi(p), c.field(), d)
		}
	}
	if k.ltv != 0 {
		tx.HIncrByFloat(ctx, keys.kpi(p), "ltv", k.ltv)
	}
	for b, d := range k.spend {
		if d != 0 {
			tx.HIncrBy(ctx, keys.spend(p), strconv.Itoa(int(b)), d)
		}
	}
}

// MonthOf is the UTC month of the Unix ms t, counted from year 0
// (12·year + month − 1).
func MonthOf(ms int64) int32 {
	y, m, _ := time.UnixMilli(ms).UTC().Date()
	return int32(y*12 + int(m) - 1)
}

// MonthStart is the first instant of month (as MonthOf counts).
func MonthStart(month int32) time.Time {
	return time.Date(int(month/12), time.Month(month%12+1), 1, 0, 0, 0, 0, time.UTC)
}

// KPICounts are the KPI counters of every partition added up.
type KPICounts struct {
	// Customers counts customers by first-seen month and latest-activity
	// hour.
	Customers map[[2]int64]int64
	Buyers    int64
	Repeat    int64
	LTV       float64
	// Answers counts latest answers by kind ("nps", "csat", "ces"), score
	// (an NPS category for "nps") and month.
	Answers map[string]map[[2]int64]int64
}

// KPICounts reads the KPI counters of every partition in one pipeline.
func (s *Store) KPICounts(ctx context.Context) (*KPICounts, error) {
	out := &KPICounts{Customers: map[[2]int64]int64{}, Answers: map[string]map[[2]int64]int64{
		"nps": {}, "csat": {}, "ces": {}}}
	err := s.perPartition(ctx, func(p redis.Pipeliner, part int) func() error {
		cmd := p.HGetAll(ctx, s.k.kpi(part))
		return func() error {
			for f, v := range cmd.Val() {
				if err := out.add(f, v); err != nil {
					return fmt.Errorf("KPI counter %s of %s: %w", f, s.k.kpi(part), err)
				}
			}
			return nil
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read KPI counters: %w", err)
	}
	return out, nil
}

func (k *KPICounts) add(field, value string) error {
	if field == "ltv" {
		v, err := strconv.ParseFloat(value, 64)
		k.LTV += v
		return err
	}
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return err
	}
	switch field {
	case "buy":
		k.Buyers += n
		return nil
	case "rep":
		k.Repeat += n
		return nil
	}
	kind, rest, _ := strings.Cut(field, ":")
	xs, ys, ok := strings.Cut(rest, ":")
	x, errX := strconv.ParseInt(xs, 10, 64)
	y, errY := strconv.ParseInt(ys, 10, 64)
	if !ok || errX != nil || errY != nil {
		return fmt.Errorf("unknown field")
	}
	if kind == "l" {
		k.Customers[[2]int64{x, y}] += n
		return nil
	}
	m, ok := k.Answers[kind]
	if !ok {
		return fmt.Errorf("unknown field")
	}
	m[[2]int64{x, y}] += n
	return nil
}

// Prefix returns the store's key prefix.
func (s *Store) Prefix() string { return s.k.prefix }

// Recount adds up the counters of states, each counted once as a
// customer written for the first time: what the stored counters hold when
// no batch was counted twice or lost.
func Recount(states []*state.Customer) *Counters {
	k := &Counters{}
	for _, c := range states {
		k.Facts(FactsOf(state.New(c.ID)), FactsOf(c))
		k.Spend(0, false, c.Spend365(), !c.Deleted)
	}
	return k
}

// CounterDiffs compares the counters stored over all partitions with want
// and describes each field that differs.
func (s *Store) CounterDiffs(ctx context.Context, want *Counters) ([]string, error) {
	got := map[string]float64{}
	err := s.perPartition(ctx, func(p redis.Pipeliner, part int) func() error {
		kpi, spend := p.HGetAll(ctx, s.k.kpi(part)), p.HGetAll(ctx, s.k.spend(part))
		return func() error {
			for prefix, cmd := range map[string]*redis.MapStringStringCmd{"kpi ": kpi, "spend ": spend} {
				for f, v := range cmd.Val() {
					n, err := strconv.ParseFloat(v, 64)
					if err != nil {
						return fmt.Errorf("counter %s%s: %q", prefix, f, v)
					}
					got[prefix+f] += n
				}
			}
			return nil
		}
	})
	if err != nil {
		return nil, err
	}
	exp := map[string]float64{}
	if want.ltv != 0 {
		exp["kpi ltv"] = want.ltv
	}
	for c, d := range want.kpi {
		exp["kpi "+c.field()] += float64(d)
	}
	for b, d := range want.spend {
		exp["spend "+strconv.Itoa(int(b))] += float64(d)
	}
	var diffs []string
	for _, m := range []map[string]float64{got, exp} {
		for f := range m {
			g, w := got[f], exp[f]
			if math.Abs(g-w) > 1e-9*max(1, math.Abs(w)) && !slices.Contains(diffs, f) {
				diffs = append(diffs, f)
			}
		}
	}
	slices.Sort(diffs)
	for i, f := range diffs {
		diffs[i] = fmt.Sprintf("counter %s: %g in Redis, %g counted from the states", f, got[f], exp[f])
	}
	return diffs, nil
}
