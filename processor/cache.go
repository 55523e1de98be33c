package processor

import (
	"context"

	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/state"
)

// stateCache keeps the decoded states of one internal partition between
// batches. Only the goroutine that owns the partition writes those
// customers, so a cached state equals the stored one as long as every
// batch either is written in full or resets the cache. The cache dies with
// the partition's goroutine on rebalance or shutdown.
type stateCache struct {
	m   map[string]*state.Customer
	max int
}

func newStateCache(max int) *stateCache {
	return &stateCache{m: make(map[string]*state.Customer), max: max}
}

// load returns the states of ids, reading from Redis only those not cached.
func (c *stateCache) load(ctx context.Context, store *redisstate.Store, ids []string) (map[string]*state.Customer, error) {
	var miss []string
	out := make(map[string]*state.Customer, len(ids))
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
	loaded, err := store.Load(ctx, miss)
	if err != nil {
		return nil, err
	}
	for id, s := range loaded {
		out[id] = s
	}
	return out, nil
}

// keep caches states that were just written; when the cache would grow
// past its bound it starts afresh.
func (c *stateCache) keep(states []*state.Customer) {
	if c.max <= 0 {
		return
	}
	if len(c.m)+len(states) > c.max {
		clear(c.m)
	}
	for _, s := range states {
		c.m[s.ID] = s
	}
}

// reset forgets everything: a batch failed after changing cached states.
func (c *stateCache) reset() { clear(c.m) }
