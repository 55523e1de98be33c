package processor

import (
	"context"

	"github.com/churnwatch/churnwatch/engine"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/state"
)

// stateCache keeps the decoded states of one internal partition between
// batches, each with the due time of the timer stored for it. Only the
// goroutine that owns the partition writes those customers, so a cached
// state equals the stored one as long as every batch either is written in
// full or resets the cache. The cache dies with the partition's goroutine
// on rebalance or shutdown.
type stateCache struct {
	m      map[string]cached
	max    int
	engine *engine.Engine
}

// cached is a state and the due time (Unix ms, 0 none) of its stored timer.
type cached struct {
	c   *state.Customer
	due int64
}

func newStateCache(max int, e *engine.Engine) *stateCache {
	return &stateCache{m: make(map[string]cached), max: max, engine: e}
}

// load returns the states of ids, reading from Redis only those not
// cached. The timer of a state read from Redis is where the engine
// schedules it.
func (c *stateCache) load(ctx context.Context, part *redisstate.Partition, ids []string) (map[string]cached, error) {
	var miss []string
	out := make(map[string]cached, len(ids))
	for _, id := range ids {
		if s, ok := c.m[id]; ok {
			out[id] = s
		} else {
			miss = append(miss, id)
		}
	}
	if len(miss) == 0 {
		return out, nil
	}
	loaded, err := part.Load(ctx, miss)
	if err != nil {
		return nil, err
	}
	for id, s := range loaded {
		out[id] = cached{s, unixMilli(c.engine.NextDue(s))}
	}
	return out, nil
}

// keep caches states that were just written with their timers (timers[i]
// is states[i]'s); when the cache would grow past its bound it starts
// afresh.
func (c *stateCache) keep(states []*state.Customer, timers []redisstate.TimerMove) {
	if c.max <= 0 {
		return
	}
	if len(c.m)+len(states) > c.max {
		clear(c.m)
	}
	for i, s := range states {
		c.m[s.ID] = cached{s, timers[i].New}
	}
}

// reset forgets everything: a batch failed after changing cached states.
func (c *stateCache) reset() { clear(c.m) }
