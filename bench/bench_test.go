package bench

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/internal/subproc"
	"github.com/churnwatch/churnwatch/internal/syncbuf"
)

// TestRunSmall runs the whole benchmark on a small population: every
// reader sees every event, and the figures are there.
func TestRunSmall(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	out := &syncbuf.Buffer{}
	r, err := Run(context.Background(), Options{Customers: 300, Days: 30, NaiveLimit: 1500, Timers: -1, Restart: -1, LatencyRate: -1, Out: out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Events == 0 || r.Bare <= 0 || r.EndToEnd <= 0 || r.Naive <= 0 || r.NaiveEvents != min(1500, r.Events) {
		t.Errorf("result %+v", r)
	}
	if r.RedisBytesPerCustomer <= 0 || r.PeakRSS <= 0 {
		t.Errorf("memory figures %+v", r)
	}
	if !strings.Contains(out.String(), "end to end") {
		t.Errorf("output %s", out)
	}
}

func TestTimersAndLatencySmall(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	ctx := context.Background()
	d, err := Timers(ctx, 2000, nil)
	if err != nil || d <= 0 {
		t.Fatalf("timers: %s %v", d, err)
	}
	rd, per, err := Restart(ctx, 2000)
	if err != nil || rd <= 0 || per <= 0 {
		t.Fatalf("restart: %s %g %v", rd, per, err)
	}
	p50, p99, n, err := Latency(ctx, 500, 1000, 3*time.Second, nil)
	if err != nil || n == 0 || p50 <= 0 || p99 < p50 {
		t.Fatalf("latency: p50 %s p99 %s over %d alerts, %v", p50, p99, n, err)
	}
	t.Logf("2000 timers in %s; latency p50 %s p99 %s over %d alerts", d, p50, p99, n)
}

// TestRunSmallOwnProcess runs the end-to-end phase with the processor as
// `churnwatch run`, a process of its own: its memory and the CPU of each
// process are reported.
func TestRunSmallOwnProcess(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	bin, err := subproc.Build(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := &syncbuf.Buffer{}
	r, err := Run(context.Background(), Options{Customers: 300, Days: 30, NaiveLimit: 100, Timers: -1, Restart: -1, LatencyRate: -1, Binary: bin, Out: out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	u := r.Usage
	if r.EndToEnd <= 0 || u == nil || u.ProcessorRSS <= 0 || u.Processor <= 0 || u.Redis <= 0 || u.Rest <= 0 {
		t.Errorf("result %+v, usage %+v", r, u)
	}
	if !strings.Contains(out.String(), "processor process: peak RSS") || !strings.Contains(out.String(), "states written") {
		t.Errorf("output %s", out)
	}
}
