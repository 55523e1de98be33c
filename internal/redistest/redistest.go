// Package redistest gives each test its own Redis: a redis-server started on
// a free port, or the server REDIS_URL names. Only when neither exists may
// it fall back to the embedded miniredis, and it says so; CI sets
// CHURNWATCH_FORBID_MINIREDIS=1 to make that fallback a failure.
package redistest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/internal/localredis"
)

// Start returns a client of a fresh Redis and the server (nil when REDIS_URL
// was used). Everything is closed when the test ends.
func Start(t testing.TB) (*redis.Client, *localredis.Server) {
	t.Helper()
	return StartWith(t, localredis.Options{})
}

// StartWith is Start with server options (AOF, directory).
func StartWith(t testing.TB, o localredis.Options) (*redis.Client, *localredis.Server) {
	t.Helper()
	_, lookErr := exec.LookPath("redis-server")
	if url := os.Getenv("REDIS_URL"); lookErr != nil && url != "" {
		opt, err := redis.ParseURL(url)
		if err != nil {
			t.Fatalf("REDIS_URL: %v", err)
		}
		c := redis.NewClient(opt)
		t.Cleanup(func() { c.Close() })
		if err := c.FlushDB(context.Background()).Err(); err != nil {
			t.Fatalf("flush REDIS_URL database: %v", err)
		}
		return c, nil
	}
	o.AllowEmbedded = os.Getenv("CHURNWATCH_FORBID_MINIREDIS") == ""
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	s, err := localredis.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("start redis (install redis-server, or set REDIS_URL): %v", err)
	}
	if s.Embedded {
		t.Logf("redis-server not found and REDIS_URL unset: falling back to embedded miniredis on %s", s.Addr)
	}
	t.Cleanup(s.Stop)
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { c.Close() })
	return c, s
}
