// Package redistest gives each test its own Redis: a redis-server started on
// a free port, or the server REDIS_URL names. Only when neither exists may
// it fall back to the embedded miniredis, and it says so; CI sets
// CHURNWATCH_FORBID_MINIREDIS=1 to make that fallback a failure.
package redistest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

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
	c, s := startLocal(t, o)
	if s.Embedded {
		t.Logf("redis-server not found and REDIS_URL unset: falling back to embedded miniredis on %s", s.Addr)
	}
	return c, s
}

// StartServer is StartWith for a test that stops and starts the server
// itself (restarts, persistence): it needs a redis-server child process, so
// neither REDIS_URL nor the embedded fallback will do. Without redis-server
// the test is skipped, unless CI forbids that.
func StartServer(t testing.TB, o localredis.Options) (*redis.Client, *localredis.Server) {
	t.Helper()
	need(t, "a test that restarts Redis", "redis-server")
	o.AllowEmbedded = false
	return startLocal(t, o)
}

// startLocal starts a localredis server in a directory of the test, and a
// client of it.
func startLocal(t testing.TB, o localredis.Options) (*redis.Client, *localredis.Server) {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	s, err := localredis.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("start redis (install redis-server, or set REDIS_URL): %v", err)
	}
	t.Cleanup(s.Stop)
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { c.Close() })
	return c, s
}

// need skips the test when one of bins is not in PATH, or fails it when CI
// forbids skipping for want of Redis.
func need(t testing.TB, what string, bins ...string) {
	t.Helper()
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CHURNWATCH_FORBID_MINIREDIS") != "" {
				t.Fatalf("%s not found: %s needs it", bin, what)
			}
			t.Skipf("%s not found: %s cannot run", bin, what)
		}
	}
}

// StartCluster returns a client of a fresh three-node Redis Cluster
// (redis-server and redis-cli from PATH, each node on a free port); the
// test is skipped when they are missing, unless CI forbids that.
func StartCluster(t testing.TB) *redis.ClusterClient {
	t.Helper()
	need(t, "a Redis Cluster test", "redis-server", "redis-cli")
	ctx := context.Background()
	args := []string{"--cluster", "create"}
	var addrs []string
	for range 3 {
		s, err := localredis.Start(ctx, localredis.Options{Dir: t.TempDir(), Cluster: true})
		if err != nil {
			t.Fatalf("start a cluster node: %v", err)
		}
		t.Cleanup(s.Stop)
		addrs = append(addrs, s.Addr)
	}
	args = append(append(args, addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { c.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := true
		for _, a := range addrs {
			n := redis.NewClient(&redis.Options{Addr: a})
			info, err := n.ClusterInfo(ctx).Result()
			n.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				ok = false
			}
		}
		if ok && c.ForEachShard(ctx, func(ctx context.Context, s *redis.Client) error { return s.Ping(ctx).Err() }) == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatal("the Redis Cluster did not become ready within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
