package redisstate

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/internal/redistest"
)

// started returns a store on a fresh redis-server, initialised for parts
// internal partitions.
func started(t *testing.T, parts int) (*Store, *redis.Client) {
	t.Helper()
	rdb, _ := redistest.Start(t)
	s := New(rdb, "")
	if err := s.Init(context.Background(), parts); err != nil {
		t.Fatal(err)
	}
	return s, rdb
}
