package redisstate

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/internal/redistest"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }

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
