package engine

import (
	"maps"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/rules"
	"github.com/churnwatch/churnwatch/state"
	"github.com/churnwatch/churnwatch/synth"
)

var topicType = map[string]event.Type{synth.TopicPurchases: event.Purchase, synth.TopicTickets: event.SupportTicket,
	synth.TopicUsage: event.Usage, synth.TopicCustomers: event.Customer, synth.TopicFeedback: event.Feedback}

var benchEnd = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// syntheticYear is a year of synthetic customers, ending at benchEnd.
func syntheticYear(tb testing.TB, customers int) []event.Event {
	var evs []event.Event
	for _, m := range synth.Generate(synth.Config{Customers: customers, Seed: 1, Start: benchEnd.Add(-365 * day), End: benchEnd}) {
		e, err := event.Decode(m.Value, topicType[m.Topic], benchEnd)
		if err != nil {
			tb.Fatal(err)
		}
		evs = append(evs, e)
	}
	return evs
}

// allocMeter reports heap allocations per event of a benchmark loop.
type allocMeter struct {
	mallocs, bytes uint64
	evaluations    int64
}

func startMeter() allocMeter {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return allocMeter{mallocs: ms.Mallocs, bytes: ms.TotalAlloc, evaluations: evaluations.Load()}
}

// report adds allocs/event, B/event and rule-evals/event for events
// processed in the loop since m was started.
func (m allocMeter) report(b *testing.B, events int) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n := float64(events)
	b.ReportMetric(float64(ms.Mallocs-m.mallocs)/n, "allocs/event")
	b.ReportMetric(float64(ms.TotalAlloc-m.bytes)/n, "B/event")
	b.ReportMetric(float64(evaluations.Load()-m.evaluations)/n, "rule-evals/event")
}

// BenchmarkReplay runs a year of 500 synthetic customers through the
// engine alone: the CPU cost of state and rules per event, without Kafka
// or Redis.
func BenchmarkReplay(b *testing.B) {
	evs := syntheticYear(b, 500)
	eng := New(rules.Builtin(), nil)
	m := startMeter()
	for b.Loop() {
		if _, _, err := eng.Replay(evs, benchEnd); err != nil {
			b.Fatal(err)
		}
	}
	m.report(b, len(evs)*b.N)
	b.ReportMetric(float64(len(evs))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkCustomerStep is the processor's path for one event of a
// customer already known: Receive, Advance to the event's time and encode
// the state, over and over on one state. The events are the year of the
// busiest synthetic customer, repeated a year later each time round.
func BenchmarkCustomerStep(b *testing.B) {
	byCustomer := map[string][]event.Event{}
	for _, e := range syntheticYear(b, 500) {
		byCustomer[e.CustomerID] = append(byCustomer[e.CustomerID], e)
	}
	var evs []event.Event
	for _, id := range slices.Sorted(maps.Keys(byCustomer)) {
		if len(byCustomer[id]) > len(evs) {
			evs = byCustomer[id]
		}
	}
	slices.SortStableFunc(evs, func(a, b event.Event) int { return a.OccurredAt.Compare(b.OccurredAt) })
	eng := New(rules.Builtin(), nil)
	c := state.New(evs[0].CustomerID)
	emit := func(alerts.Alert) {}
	var buf []byte
	offset := int64(0)
	step := func(round int, e event.Event) {
		e.OccurredAt = e.OccurredAt.AddDate(0, 0, 365*round) // a Duration would overflow after 292 years
		offset++
		c.Receive(e, offset)
		if err := eng.Advance(c, e.OccurredAt, emit); err != nil {
			b.Fatal(err)
		}
		buf = c.AppendBinary(buf[:0])
	}
	for _, e := range evs { // the first year makes the state
		step(0, e)
	}
	i := 0
	m := startMeter()
	for b.Loop() {
		step(1+i/len(evs), evs[i%len(evs)])
		i++
	}
	m.report(b, b.N)
	b.ReportMetric(float64(len(evs)), "events/year")
}
