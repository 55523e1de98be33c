package processor

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/engine"
	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/rules"
	"github.com/churnwatch/churnwatch/state"
)

// TestStateCacheKeepsWhatWasWritten: a cached state decodes to the state
// the batch wrote, with its timer, however the decoded state is changed
// afterwards; the cache starts afresh at its bound.
func TestStateCacheKeepsWhatWasWritten(t *testing.T) {
	c := state.New("c1")
	e := event.Event{Type: event.Purchase, ID: "p1", CustomerID: "c1", OccurredAt: end, Amount: 12.5}
	c.Receive(e, 3)
	if err := engine.New(rules.Builtin(), nil).Advance(c, end.Add(time.Hour), func(alerts.Alert) {}); err != nil {
		t.Fatal(err)
	}
	want := *c
	b := &redisstate.Batch{States: []*state.Customer{c}, Timers: []redisstate.TimerMove{{ID: "c1", New: 42}},
		Encoded: [][]byte{c.AppendBinary(nil)}}
	cache := newStateCache(2, nil)
	cache.keep(b)
	c.Purchases.Count = 99 // the batch's decoded state lives on; the cache does not share it
	got, err := cache.load(context.Background(), nil, []string{"c1"})
	if err != nil {
		t.Fatal(err)
	}
	g := got["c1"]
	if g.due != 42 || g.c.Purchases.Count != 1 || !reflect.DeepEqual(g.c.AppendBinary(nil), want.AppendBinary(nil)) {
		t.Fatalf("cached %+v (due %d), want %+v (due 42)", g.c, g.due, want)
	}
	b2 := &redisstate.Batch{States: []*state.Customer{state.New("c2"), state.New("c3")}, Timers: make([]redisstate.TimerMove, 2),
		Encoded: [][]byte{state.New("c2").AppendBinary(nil), state.New("c3").AppendBinary(nil)}}
	cache.keep(b2)
	if _, ok := cache.m["c1"]; ok || len(cache.m) != 2 {
		t.Fatalf("past its bound the cache holds %d states, c1 among them: %v", len(cache.m), ok)
	}
}
