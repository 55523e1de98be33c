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
	states := make(map[string]*state.Customer)
	var ids []string
	for i, ev := range events {
		c := states[ev.CustomerID]
		if c == nil {
			c = state.New(ev.CustomerID)
			states[ev.CustomerID] = c
			ids = append(ids, ev.CustomerID)
		}
		c.Receive(ev, int64(i))
	}
	var out []alerts.Alert
	var firstErr error
	for _, id := range ids {
		if err := e.Advance(states[id], until, func(a alerts.Alert) { out = append(out, a) }); err != nil && firstErr == nil {
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
