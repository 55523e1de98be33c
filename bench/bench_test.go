package bench

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/churnwatch/churnwatch/internal/syncbuf"
)

// TestRunSmall runs the whole benchmark on a small population: every
// reader sees every event, and the figures are there.
func TestRunSmall(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	out := &syncbuf.Buffer{}
	r, err := Run(context.Background(), Options{Customers: 300, Days: 30, NaiveLimit: 1500, Out: out})
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
