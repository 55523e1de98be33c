// Package synth generates a synthetic but believable customer population as
// Kafka messages in the input format of contract §1: steady customers, loyal
// buyers, VIPs who lapse, usage that fades, ticket storms, detractors and
// stalled signups, each of which really trips its rule of the built-in pack
// in event time. Optionally it adds what upstream systems get wrong:
// invalid messages for the dead-letter topic, exact re-sends, tier changes
// delivered out of order and keys other than the customer id.
//
// `churnwatch demo`, the load generator and the benchmarks use it. It does
// no I/O: writing the messages to Kafka is left to the caller.
package synth

import (
	"cmp"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"
)

// Default source topics of the contract.
const (
	TopicPurchases = "purchases"
	TopicTickets   = "support-tickets"
	TopicUsage     = "usage"
	TopicCustomers = "customers"
	TopicFeedback  = "feedback"
)

// Topics lists the source topics.
func Topics() []string {
	return []string{TopicPurchases, TopicTickets, TopicUsage, TopicCustomers, TopicFeedback}
}

// Message is one Kafka message for a source topic.
type Message struct {
	Topic string
	// Key is usually the customer id; with Config.OtherKeys it may be nil,
	// empty, or an upstream order or ticket id.
	Key   []byte
	Value []byte // one JSON event
	// At is the event's occurred_at. For the messages upstream systems get
	// wrong (invalid ones, re-sends, late tier changes) it is when the
	// message is sent, which is how those end up out of order.
	At time.Time
}

// Config describes a population and its history. Only Customers and the
// window are needed; the rest is off at its zero value.
type Config struct {
	Customers int   // population size; customers are CustomerID(0) … CustomerID(Customers-1)
	Seed      int64 // the same Config always gives the same messages

	// Start and End bound the history: every event has Start <= occurred_at
	// <= End (occurred_at is in whole seconds). When one is zero it is the
	// other ∓ 365 days; when both are, Generate returns nothing. Every
	// archetype plays out in a year; a lapsing VIP needs about 7 months,
	// fading usage about 10 weeks.
	Start, End time.Time

	// BadEvery > 0 makes about one message in BadEvery invalid input (bad
	// JSON, a missing field, a negative amount, an unknown status, an
	// occurred_at far after End…), and adds a few exact re-sends and tier
	// changes delivered after newer ones. 0 adds none of these.
	BadEvery int

	// OtherKeys is the share (0..1) of messages keyed by something other
	// than their customer id: nil, empty, or an order or ticket id.
	OtherKeys float64
}

const day = 24 * time.Hour

// window returns the history window in whole seconds.
func (c Config) window() (start, end time.Time, ok bool) {
	start, end = c.Start, c.End
	switch {
	case start.IsZero() && end.IsZero():
		return start, end, false
	case end.IsZero():
		end = start.Add(365 * day)
	case start.IsZero():
		start = end.Add(-365 * day)
	}
	start, end = start.UTC(), end.UTC().Truncate(time.Second)
	if s := start.Truncate(time.Second); s.Before(start) {
		start = s.Add(time.Second)
	} else {
		start = s
	}
	return start, end, !end.Before(start)
}

// Generate returns the whole history of the population, sorted by At; ties
// keep a fixed order (customer by customer, noise last). The same Config
// gives the same messages.
func Generate(cfg Config) []Message {
	start, end, ok := cfg.window()
	if !ok || cfg.Customers <= 0 {
		return nil
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), cfg.Customers/250))
	parts := make([]part, workers)
	var wg sync.WaitGroup
	for k := range workers {
		lo, hi := k*cfg.Customers/workers, (k+1)*cfg.Customers/workers
		wg.Go(func() { parts[k] = histories(cfg, start, end, lo, hi) })
	}
	wg.Wait()
	all := make([][]Message, 0, workers+1)
	var changes []tierChange
	for _, p := range parts {
		all = append(all, p.msgs)
		changes = append(changes, p.changes...)
	}
	if cfg.BadEvery > 0 {
		all = append(all, noise(cfg, start, end, all, changes))
	}
	return sortByAt(all)
}

// part is the output of customers lo to hi.
type part struct {
	msgs    []Message
	changes []tierChange
}

func histories(cfg Config, start, end time.Time, lo, hi int) part {
	w := &writer{start: start, end: end, otherKeys: cfg.OtherKeys, typeShare: 15, layout: time.RFC3339, prec: time.Second}
	w.out = make([]Message, 0, (hi-lo)*100)
	var changes []tierChange
	for i := lo; i < hi; i++ {
		p, r := newPersona(cfg.Seed, i)
		w.r = rand.New(rand.NewPCG(uint64(cfg.Seed), streamKeys^uint64(i)))
		w.cust, w.seq = p.id, 0
		w.idPrefix = append(append(append(w.idPrefix[:0], "evt-"...), p.id...), '-')
		l := &life{w: w, p: p, r: r}
		l.run()
		changes = append(changes, l.changes...)
	}
	return part{w.out, changes}
}

// sortByAt merges parts into one slice sorted by At; ties keep the order
// of the parts and, within a part, their order.
func sortByAt(parts [][]Message) []Message {
	type key struct {
		at   int64
		p, i int32
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	keys := make([]key, 0, n)
	for k, p := range parts {
		for i, m := range p {
			keys = append(keys, key{m.At.UnixNano(), int32(k), int32(i)})
		}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		if c := cmp.Compare(a.p, b.p); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	out := make([]Message, n)
	for k, x := range keys {
		out[k] = parts[x.p][x.i]
	}
	return out
}
