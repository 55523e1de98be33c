package redisstate

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/state"
)

// KPIFacts are what the retention KPIs need of one customer, as absolute
// values: writing the same facts twice changes nothing, so a batch replayed
// after a crash is harmless. Times are Unix milliseconds, 0 when none;
// scores are -1 when the customer never answered.
type KPIFacts struct {
	Deleted   bool  // erased: in none of the KPI sets
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

// KPIChange is a customer's facts before and after a batch: what differs
// is written, as New has it (and a customer that changed its answer of a
// kind leaves the set of its Old answer).
type KPIChange struct{ Old, New KPIFacts }

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

// NPS categories of contract §2, in the order of KPIKeys.NPS.
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

// KPIKeys names the sorted sets of the KPI facts, all hash-tagged {kpi}
// ("cw:{kpi}:first"). Members are customer ids. First and Last score the
// first-seen and latest-activity times (Unix ms), Purchases the lifetime
// purchase count up to 2 (so it changes at most twice), LTV the lifetime
// spend (customers with a purchase only).
// NPS (promoter, passive, detractor), CSAT (scores 1–5) and CES (1–7) hold
// each answering customer in the set of its latest answer only, scored by
// that answer's time.
type KPIKeys struct {
	First, Last, Purchases, LTV string
	NPS                         [3]string
	CSAT                        [5]string // CSAT[i] holds score i+1
	CES                         [7]string // CES[i] holds score i+1
}

// NewKPIKeys returns the KPI keys under prefix (default "cw").
func NewKPIKeys(prefix string) KPIKeys {
	if prefix == "" {
		prefix = "cw"
	}
	p := prefix + ":{kpi}:"
	k := KPIKeys{First: p + "first", Last: p + "last", Purchases: p + "purchases", LTV: p + "ltv",
		NPS: [3]string{p + "nps:promoter", p + "nps:passive", p + "nps:detractor"}}
	for i := range k.CSAT {
		k.CSAT[i] = p + "csat:" + strconv.Itoa(i+1)
	}
	for i := range k.CES {
		k.CES[i] = p + "ces:" + strconv.Itoa(i+1)
	}
	return k
}

// all lists every KPI key.
func (k *KPIKeys) all() []string {
	out := []string{k.First, k.Last, k.Purchases, k.LTV}
	out = append(out, k.NPS[:]...)
	out = append(out, k.CSAT[:]...)
	return append(out, k.CES[:]...)
}

// Prefix returns the store's key prefix.
func (s *Store) Prefix() string { return s.k.prefix }

// writeKPI queues the changed facts of ch. It runs first in Write's
// pipeline, so on one Redis node a customer's state is never written
// without its facts.
func (s *Store) writeKPI(ctx context.Context, p redis.Pipeliner, ch map[string]KPIChange) {
	if len(ch) == 0 {
		return
	}
	k := NewKPIKeys(s.k.prefix)
	for id, c := range ch {
		o, n := &c.Old, &c.New
		if n.Deleted {
			for _, key := range k.all() {
				p.ZRem(ctx, key, id)
			}
			continue
		}
		set := func(key string, v float64, has bool) {
			if has {
				p.ZAdd(ctx, key, redis.Z{Score: v, Member: id})
			} else {
				p.ZRem(ctx, key, id)
			}
		}
		if n.First != o.First {
			set(k.First, float64(n.First), n.First != 0)
		}
		if n.Last != o.Last {
			set(k.Last, float64(n.Last), n.Last != 0)
		}
		if n.Purchases != o.Purchases {
			set(k.Purchases, float64(n.Purchases), n.Purchases > 0)
		}
		if n.LTV != o.LTV || (n.Purchases > 0) != (o.Purchases > 0) {
			set(k.LTV, n.LTV, n.Purchases > 0)
		}
		if n.NPS != o.NPS || n.NPSAt != o.NPSAt {
			answer(ctx, p, k.NPS[:], npsIndex(o.NPS), npsIndex(n.NPS), n.NPSAt, id)
		}
		if n.CSAT != o.CSAT || n.CSATAt != o.CSATAt {
			answer(ctx, p, k.CSAT[:], o.CSAT-1, n.CSAT-1, n.CSATAt, id)
		}
		if n.CES != o.CES || n.CESAt != o.CESAt {
			answer(ctx, p, k.CES[:], o.CES-1, n.CES-1, n.CESAt, id)
		}
	}
}

func npsIndex(score int) int {
	if score < 0 {
		return -1
	}
	return NPSCategory(score)
}

// answer moves id from keys[old] to keys[i], scored at; an index out of
// range means no answer. Facts of a customer are written before its state
// in the same pipeline, so the old facts are the ones in Redis.
func answer(ctx context.Context, p redis.Pipeliner, keys []string, old, i int, at int64, id string) {
	if old != i && old >= 0 && old < len(keys) {
		p.ZRem(ctx, keys[old], id)
	}
	if i >= 0 && i < len(keys) {
		p.ZAdd(ctx, keys[i], redis.Z{Score: float64(at), Member: id})
	}
}

// SegmentSizes counts the customers of the spend ranking in segments A, B
// and C, with the thresholds and rule the processor assigns segments by
// (A and B need a positive spend; everyone else ranked is C).
func (s *Store) SegmentSizes(ctx context.Context) (a, b, c int64, err error) {
	ta, tb, err := s.SegmentThresholds(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	key := s.k.spend()
	var total, atLeastA, atLeastB *redis.IntCmd
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		total = p.ZCard(ctx, key)
		atLeastA = p.ZCount(ctx, key, positiveFrom(ta), "+inf")
		atLeastB = p.ZCount(ctx, key, positiveFrom(tb), "+inf")
		return nil
	}); err != nil {
		return 0, 0, 0, fmt.Errorf("count segments: %w", err)
	}
	a = atLeastA.Val()
	b = atLeastB.Val() - a
	return a, b, total.Val() - a - b, nil
}

// positiveFrom is the ZCOUNT lower bound "at least t and above zero".
func positiveFrom(t float64) string {
	if t <= 0 {
		return "(0"
	}
	return strconv.FormatFloat(t, 'g', -1, 64)
}
