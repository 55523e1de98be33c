package redisstate

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The spend ranking behind segments is a histogram per partition, not a
// list of customers: SpendBucket places a trailing-365-day spend in a
// bucket of logarithmic width (as DDSketch does), so two spends in one
// bucket differ by at most 4 %, whatever their size, and a customer costs
// the ranking nothing. Bucket i holds the spends in (γ^(i−1), γ^i] with
// γ = 1.02/0.98; spends of zero or less share bucket ZeroSpend.

// ZeroSpend is the bucket of a spend of zero (or less).
const ZeroSpend = math.MinInt32

var logGamma = math.Log(1.02 / 0.98)

// SpendBucket returns the histogram bucket of spend.
func SpendBucket(spend float64) int32 {
	if !(spend > 0) {
		return ZeroSpend
	}
	return int32(math.Ceil(math.Log(spend) / logGamma))
}

// SpendBucketFloor is the lowest spend of bucket b (exclusive).
func SpendBucketFloor(b int32) float64 { return math.Exp(float64(b-1) * logGamma) }

// Segments places customers into A (the top 20 % of ranked customers by
// trailing-365-day spend), B (the next 30 %) and C (everyone else), from
// the merged spend histograms. Customers whose spends share the bucket at
// a boundary all go to the higher segment, so a segment may hold more than
// its share by that bucket's customers; a spend of zero is always C.
type Segments struct {
	// A and B are the lowest buckets of segments A and B.
	A, B int32
	// Sizes counts the ranked customers in A, B and C.
	Sizes [3]int64
}

// Of returns the segment of a customer with spend: "A", "B" or "C". Before
// any customer is ranked, every positive spend is "A".
func (g *Segments) Of(spend float64) string {
	b := SpendBucket(spend)
	switch {
	case b == ZeroSpend:
		return "C"
	case b >= g.A:
		return "A"
	case b >= g.B:
		return "B"
	}
	return "C"
}

// Unranked is the ranking before any customer is ranked: every positive
// spend is "A".
func Unranked() *Segments { return &Segments{A: ZeroSpend + 1, B: ZeroSpend + 1} }

// Segments reads the spend histograms of every partition in one pipeline
// and ranks them.
func (s *Store) Segments(ctx context.Context) (*Segments, error) {
	hist := map[int32]int64{}
	err := s.perPartition(ctx, func(p redis.Pipeliner, part int) func() error {
		cmd := p.HGetAll(ctx, s.k.spend(part))
		return func() error {
			for f, v := range cmd.Val() {
				b, err1 := strconv.ParseInt(f, 10, 32)
				n, err2 := strconv.ParseInt(v, 10, 64)
				if err1 != nil || err2 != nil {
					return fmt.Errorf("spend histogram %s holds %q: %q", s.k.spend(part), f, v)
				}
				hist[int32(b)] += n
			}
			return nil
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read the spend ranking: %w", err)
	}
	return rank(hist), nil
}

// rank finds the segment boundaries of a histogram.
func rank(hist map[int32]int64) *Segments {
	g := Unranked()
	var n int64
	buckets := make([]int32, 0, len(hist))
	for b, c := range hist {
		if c <= 0 {
			continue
		}
		n += c
		if b != ZeroSpend {
			buckets = append(buckets, b)
		}
	}
	if n == 0 {
		return g
	}
	slices.Sort(buckets)
	wantA, wantB := (n*20+99)/100, (n*50+99)/100 // ranks, as a sorted list's would be
	var seen int64
	setA, setB := false, false
	for i := len(buckets) - 1; i >= 0; i-- {
		b := buckets[i]
		seen += hist[b]
		if !setA && seen >= wantA {
			g.A, setA = b, true
		}
		if !setB && seen >= wantB {
			g.B, setB = b, true
		}
		switch {
		case b >= g.A || !setA:
			g.Sizes[0] += hist[b]
		case b >= g.B || !setB:
			g.Sizes[1] += hist[b]
		default:
			g.Sizes[2] += hist[b]
		}
	}
	if !setA && len(buckets) > 0 {
		g.A = buckets[0] // fewer positive spends than the top 20 %: all of them A
	}
	if !setB {
		g.B = g.A
	}
	g.Sizes[2] += hist[ZeroSpend]
	return g
}
