// Package localredis starts a Redis for this machine alone: a redis-server
// child process on a free loopback port when one is installed, otherwise
// (and only when allowed) the embedded miniredis. `churnwatch demo` and the
// tests use it; production points at a Redis of its own.
package localredis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Server is a running local Redis.
type Server struct {
	Addr     string // host:port
	Embedded bool   // miniredis, not redis-server
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has exited
	mini     *miniredis.Miniredis
	args     []string
}

// ErrNoServer is returned when redis-server is not installed and the
// embedded fallback was not allowed.
var ErrNoServer = errors.New("redis-server not found in PATH")

// Options for Start.
type Options struct {
	// Dir is the working directory of redis-server (AOF lives there when
	// AppendOnly is set); empty means a fresh temporary directory.
	Dir        string
	AppendOnly bool
	// AppendFsync is when redis-server syncs the AOF to disk: "always"
	// (before it answers a write), "everysec" (the default) or "no".
	AppendFsync string
	// Port to listen on; 0 picks a free one.
	Port int
	// AllowEmbedded permits miniredis when redis-server is missing.
	AllowEmbedded bool
	// Cluster starts the server as a Redis Cluster node (redis-server only).
	Cluster bool
}

// Start runs a local Redis and waits until it answers PING.
func Start(ctx context.Context, o Options) (*Server, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if !o.AllowEmbedded {
			return nil, ErrNoServer
		}
		m := miniredis.NewMiniRedis()
		if err := m.Start(); err != nil {
			return nil, fmt.Errorf("start embedded redis: %w", err)
		}
		return &Server{Addr: m.Addr(), Embedded: true, mini: m}, nil
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "churnwatch-redis-"); err != nil {
			return nil, err
		}
	}
	if o.Port == 0 {
		if o.Port, err = freePort(); err != nil {
			return nil, err
		}
	}
	aof := "no"
	if o.AppendOnly {
		aof = "yes"
	}
	fsync := o.AppendFsync
	if fsync == "" {
		fsync = "everysec"
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port))}
	s.args = []string{path, "--port", strconv.Itoa(o.Port), "--bind", "127.0.0.1", "--dir", o.Dir,
		"--save", "", "--appendonly", aof, "--appendfsync", fsync, "--logfile", filepath.Join(o.Dir, "redis.log")}
	if o.Cluster {
		s.args = append(s.args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(o.Dir, "nodes.conf"))
	}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	cmd, exited := s.cmd, make(chan struct{})
	s.exited = exited
	go func() {
		cmd.Wait() //nolint:errcheck // reaped; exit status is of no interest
		close(exited)
	}()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := c.Ping(ctx).Err(); err == nil {
			return nil
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			s.Stop()
			return fmt.Errorf("redis-server on %s did not answer: %w", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart stops redis-server abruptly (SIGKILL) and starts it again on the
// same port and directory; with AppendOnly the data survives.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Halt(os.Kill); err != nil {
		return err
	}
	return s.Resume(ctx)
}

// Halt sends sig to redis-server and waits until the process has exited:
// SIGTERM is a clean shutdown (redis-server writes and syncs its AOF
// first), SIGKILL a crash (only what already reached the AOF file
// survives). Resume starts it again.
func (s *Server) Halt(sig os.Signal) error {
	if s.Embedded {
		return errors.New("embedded redis cannot be restarted")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal redis-server: %w", err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("redis-server on %s still running 30s after %v", s.Addr, sig)
	}
}

// Resume starts a halted redis-server again with the same port, directory
// and settings, and waits until it answers PING (with AppendOnly, after it
// loaded the AOF).
func (s *Server) Resume(ctx context.Context) error {
	if s.Embedded {
		return errors.New("embedded redis cannot be restarted")
	}
	select {
	case <-s.exited:
	default:
		return fmt.Errorf("redis-server on %s is still running", s.Addr)
	}
	return s.start(ctx)
}

// Stop ends the server.
func (s *Server) Stop() {
	if s.mini != nil {
		s.mini.Close()
		return
	}
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill() //nolint:errcheck // already gone is fine
		for i := 0; i < 100; i++ {
			conn, err := net.DialTimeout("tcp", s.Addr, 50*time.Millisecond)
			if err != nil {
				return
			}
			conn.Close()
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
