package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/churnwatch/churnwatch/bench"
)

// benchCmd is `churnwatch bench`: the side-by-side benchmark of
// BENCHMARKS.md, on this machine, with an embedded broker and a local
// redis-server.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	fs.IntVar(&o.Customers, "customers", 100000, "synthetic customers")
	fs.IntVar(&o.Days, "days", 30, "days of history per customer")
	fs.IntVar(&o.InternalPartitions, "internal-partitions", 4, "partitions of the internal topic")
	fs.IntVar(&o.NaiveLimit, "naive-events", 200000, "events the per-event variant processes (it is slow)")
	fs.IntVar(&o.Timers, "timers", 100000, "due timers fired at once in the timer phase (-1 skips it)")
	fs.IntVar(&o.Restart, "restart-customers", 1000000, "customers in Redis for the restart phase (-1 skips it)")
	fs.Float64Var(&o.LatencyRate, "latency-rate", 10000, "offered load of the latency phase, events/s (-1 skips it)")
	fs.DurationVar(&o.LatencyFor, "latency-for", 20*time.Second, "how long the latency phase offers load")
	profile := fs.String("cpuprofile", "", "write a CPU profile of one phase to this file (go tool pprof -top FILE)")
	fs.StringVar(&o.ProfilePhase, "profile-phase", "e2e", "the phase --cpuprofile profiles: e2e, timers or latency")
	fs.IntVar(&o.BatchSize, "batch-size", 0, "messages per processing batch (0: the processor's default)")
	fs.IntVar(&o.StateCache, "state-cache", 0, "customer states cached per internal partition (0: the processor's default)")
	inProcess := fs.Bool("in-process", false, "run the end-to-end phase's processor inside the bench process instead of as `churnwatch run` (implied by --batch-size, --state-cache and a CPU profile of that phase)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if o.ProfilePhase != "e2e" && o.ProfilePhase != "timers" && o.ProfilePhase != "latency" {
		return fmt.Errorf("--profile-phase %q: want e2e, timers or latency", o.ProfilePhase)
	}
	if !*inProcess && o.BatchSize == 0 && o.StateCache == 0 && (*profile == "" || o.ProfilePhase != "e2e") {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the churnwatch executable to run the processor (or use --in-process): %w", err)
		}
		o.Binary = self
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		o.CPUProfile = f
	}
	if o.Customers < 1 || o.Days < 1 || o.NaiveLimit < 1 {
		return fmt.Errorf("--customers, --days and --naive-events must be at least 1")
	}
	o.Out = stdout
	r, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "MEASURE\tVALUE\tTARGET\tMET\n")
	row := func(name, value, target string, met bool) {
		m := "no"
		if met {
			m = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, value, target, m)
	}
	row("end to end", fmt.Sprintf("%.0f events/s", r.EndToEnd), "≥ 150,000 events/s", r.EndToEnd >= 150000)
	row("vs per-event round trips", fmt.Sprintf("%.1f× (%.0f events/s)", r.EndToEnd/r.Naive, r.Naive), "≥ 15×", r.EndToEnd >= 15*r.Naive)
	row("vs bare consume+decode", fmt.Sprintf("%.0f %% (%.0f events/s)", 100*r.EndToEnd/r.Bare, r.Bare), "≥ 25 %", r.EndToEnd >= 0.25*r.Bare)
	row(fmt.Sprintf("Redis per customer (%d × %d days)", r.Customers, o.Days), fmt.Sprintf("%.0f bytes", r.RedisBytesPerCustomer), "≤ 600 bytes (100k × 30 days)", r.RedisBytesPerCustomer <= 600)
	if o.Timers > 0 {
		row(fmt.Sprintf("%d due timers fired", o.Timers), r.TimersFired.Round(time.Millisecond).String(), "≤ 1 s", r.TimersFired <= time.Second)
	}
	if o.Restart > 0 {
		row(fmt.Sprintf("start to first event, %d customers", o.Restart), r.RestartToFirst.Round(time.Millisecond).String(), "≤ 5 s at 1M", r.RestartToFirst <= 5*time.Second)
		row(fmt.Sprintf("Redis per customer (%d, VIP + 1 purchase)", o.Restart), fmt.Sprintf("%.0f bytes", r.RestartBytesPerCust), "≤ 400 bytes at 1M", r.RestartBytesPerCust <= 400)
	}
	if o.LatencyRate > 0 {
		row(fmt.Sprintf("event→alert p99 at %.0f events/s", o.LatencyRate), fmt.Sprintf("%s (p50 %s, %d alerts)", r.P99, r.P50, r.LatencyAlerts),
			"≤ 50 ms", r.P99 <= 50*time.Millisecond)
	}
	if u := r.Usage; u != nil {
		per := func(s float64) float64 { return s / float64(r.Events) * 1e6 }
		row("peak RSS of the processor", fmt.Sprintf("%d MiB", u.ProcessorRSS>>20), "≤ 1 GiB (end-to-end phase, its own process)", u.ProcessorRSS <= 1<<30)
		all := per(u.Processor) + per(u.Redis) + per(u.Rest)
		row("CPU per event, end to end", fmt.Sprintf("%.1f µs: processor %.1f, redis-server %.1f, broker %.1f", all, per(u.Processor), per(u.Redis), per(u.Rest)),
			"≤ 12 µs in all", all <= 12)
	}
	if r.Commands != nil {
		fmt.Fprintf(tw, "Redis commands per event\t%s\t(end-to-end phase)\t\n", bench.FormatCommands(r.Commands))
	}
	fmt.Fprintf(tw, "peak RSS of the bench process\t%d MiB\t(generator and broker included)\t\n", r.PeakRSS>>20)
	return tw.Flush()
}
