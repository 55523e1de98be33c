package processor

import (
	"context"
	"fmt"

	"github.com/churnwatch/churnwatch/engine"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/state"
)

// stateCache keeps the states of one internal partition between batches,
// each with the due time of the timer stored for it. Only the goroutine
// that owns the partition writes those customers, so a cached state equals
// the stored one as long as every batch either is written in full or
// resets the cache. The cache dies with the partition's goroutine on
// rebalance or shutdown.
//
// States are kept encoded, as written to Redis (a few hundred bytes, no
// pointers for the collector to follow), and decoded when a batch needs
// them: decoded, a state takes several times that, and a cache of 100,000
// decoded states made most of the processor's live heap.
type stateCache struct {
	m      map[string]encoded
	max    int
	engine *engine.Engine
}

// encoded is a state as stored and the due time of its stored timer.
type encoded struct {
	b   []byte
	due int64
}

// cached is a state and the due time (Unix ms, 0 none) of its stored timer.
type cached struct {
	c   *state.Customer
	due int64
}

func newStateCache(max int, e *engine.Engine) *stateCache {
	return &stateCache{m: make(map[string]encoded), max: max, engine: e}
}

// load returns the states of ids, reading from Redis only those not
// cached. The timer of a state read from Redis is where the engine
// schedules it.
func (c *stateCache) load(ctx context.Context, part *redisstate.Partition, ids []string) (map[string]cached, error) {
	var miss []string
	out := make(map[string]cached, len(ids))
	for _, id := range ids {
		s, ok := c.m[id]
		if !ok {
			miss = append(miss, id)
			continue
		}
		st, err := state.Unmarshal(id, s.b)
		if err != nil { // cannot be: the bytes were encoded here
			return nil, fmt.Errorf("cached state of customer %s: %w", id, err)
		}
		out[id] = cached{st, s.due}
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

// keep caches the states a batch just wrote with their timers; when the
// cache would grow past its bound it starts afresh.
func (c *stateCache) keep(b *redisstate.Batch) {
	if c.max <= 0 {
		return
	}
	if len(c.m)+len(b.States) > c.max {
		clear(c.m)
	}
	for i, s := range b.States {
		c.m[s.ID] = encoded{b.Encoded[i], b.Timers[i].New}
	}
}

// reset forgets everything: a batch failed after changing cached states.
func (c *stateCache) reset() { clear(c.m) }
