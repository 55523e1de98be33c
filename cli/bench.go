package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

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
	profile := fs.String("cpuprofile", "", "write a CPU profile of the end-to-end run to this file (go tool pprof -top FILE)")
	fs.IntVar(&o.StateCache, "state-cache", 0, "customers kept decoded per internal partition (0: the processor's default)")
	if err := fs.Parse(args); err != nil {
		return errUsage
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
	row("end to end", fmt.Sprintf("%.0f events/s", r.EndToEnd), "≥ 300,000 events/s", r.EndToEnd >= 300000)
	row("vs per-event round trips", fmt.Sprintf("%.1f× (%.0f events/s)", r.EndToEnd/r.Naive, r.Naive), "≥ 25×", r.EndToEnd >= 25*r.Naive)
	row("vs bare consume+decode", fmt.Sprintf("%.0f %% (%.0f events/s)", 100*r.EndToEnd/r.Bare, r.Bare), "≥ 75 %", r.EndToEnd >= 0.75*r.Bare)
	row(fmt.Sprintf("Redis per customer (%d)", r.Customers), fmt.Sprintf("%.0f bytes", r.RedisBytesPerCustomer), "≤ 400 bytes at 1M customers", r.RedisBytesPerCustomer <= 400)
	fmt.Fprintf(tw, "peak RSS of this process\t%d MiB\t(generator included)\t\n", r.PeakRSS>>20)
	return tw.Flush()
}
