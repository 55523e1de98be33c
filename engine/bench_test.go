package engine

import (
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/rules"
	"github.com/churnwatch/churnwatch/synth"
)

var topicType = map[string]event.Type{synth.TopicPurchases: event.Purchase, synth.TopicTickets: event.SupportTicket,
	synth.TopicUsage: event.Usage, synth.TopicCustomers: event.Customer, synth.TopicFeedback: event.Feedback}

// BenchmarkReplay runs a year of 500 synthetic customers through the
// engine alone: the CPU cost of state and rules per event, without Kafka
// or Redis.
func BenchmarkReplay(b *testing.B) {
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	var evs []event.Event
	for _, m := range synth.Generate(synth.Config{Customers: 500, Seed: 1, Start: end.Add(-365 * day), End: end}) {
		e, err := event.Decode(m.Value, topicType[m.Topic], end)
		if err != nil {
			b.Fatal(err)
		}
		evs = append(evs, e)
	}
	eng := New(rules.Builtin(), nil)
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := eng.Replay(evs, end); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(evs))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(evaluations.Load())/float64(b.N)/float64(len(evs)), "rule-evals/event")
}
