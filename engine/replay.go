package engine

import (
	"sort"
	"time"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/state"
)

// Replay runs events through the engine offline, in event time, as if the
// watermark had passed until: the same rules, windows and timers as the
// processor, with no Kafka or Redis. Events may come in any order; the
// index of an event stands in for its offset. It returns every alert in
// time order and the final states by customer id.
func (e *Engine) Replay(events []event.Event, until time.Time) ([]alerts.Alert, map[string]*state.Customer, error) {
	// Customers in order of their first event, each with room for all of
	// its events.
	index := make(map[string]int)
	var (
		ids    []string
		counts []int
	)
	for _, ev := range events {
		i, ok := index[ev.CustomerID]
		if !ok {
			i = len(ids)
			index[ev.CustomerID] = i
			ids = append(ids, ev.CustomerID)
			counts = append(counts, 0)
		}
		counts[i]++
	}
	states := make(map[string]*state.Customer, len(ids))
	customers := make([]*state.Customer, len(ids))
	for i, id := range ids {
		c := state.New(id)
		c.Grow(counts[i])
		states[id], customers[i] = c, c
	}
	for i, ev := range events {
		customers[index[ev.CustomerID]].Receive(ev, int64(i))
	}
	var out []alerts.Alert
	var firstErr error
	emit := func(a alerts.Alert) { out = append(out, a) }
	for _, c := range customers {
		if err := e.Advance(c, until, emit); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].CustomerID < out[j].CustomerID
	})
	return out, states, firstErr
}
