// Package cli implements churnwatch's subcommands. Each takes its
// arguments, writes to the given streams and returns an exit code, so tests
// can run them in-process; signals stay in main.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `churnwatch: churn-risk alerts from customer event streams

Usage:
  churnwatch demo                          everything on this machine: broker on 127.0.0.1:9092,
                                           Redis, the processor, a synthetic population
  churnwatch run [flags]                   the processor against real Kafka and Redis
                                           (with --webhooks FILE also the webhook dispatcher)
  churnwatch deliver [flags]               the webhook dispatcher alone
  churnwatch webhooks check|endpoints|dlq|enable
                                           validate a webhooks file; inspect, replay, enable
  churnwatch bench [flags]                 the side-by-side benchmark of BENCHMARKS.md (minutes)
  churnwatch config print [flags]          the effective configuration (file, env, flags), secrets masked
  churnwatch topics [flags]                create or check the topics; show consumer lag
  churnwatch rules check FILE              validate a rules file
  churnwatch rules test FILE EVENTS.jsonl  run events through the rules offline
  churnwatch webhook-sink [flags]          receive and verify webhook deliveries, print them
  churnwatch loadgen [flags]               synthetic events at a steady rate into the source topics

Run "churnwatch COMMAND -h" for the flags of a command.
`

// Main runs the subcommand named by args[0].
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = runCmd(ctx, args[1:], stdout, stderr)
	case "demo":
		err = demoCmd(ctx, args[1:], stdout, stderr)
	case "deliver":
		err = deliverCmd(ctx, args[1:], stdout, stderr)
	case "webhooks":
		err = webhooksCmd(ctx, args[1:], stdout, stderr)
	case "bench":
		err = benchCmd(ctx, args[1:], stdout, stderr)
	case "config":
		err = configCmd(args[1:], stdout, stderr)
	case "topics":
		err = topicsCmd(ctx, args[1:], stdout, stderr)
	case "rules":
		err = rulesCmd(args[1:], stdout, stderr)
	case "webhook-sink":
		err = sinkCmd(ctx, args[1:], stdout, stderr)
	case "loadgen":
		err = loadgenCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "churnwatch: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if err == errUsage {
			return 2
		}
		fmt.Fprintf(stderr, "churnwatch %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// errUsage reports a usage error already printed by the flag set.
var errUsage = fmt.Errorf("usage")

// env returns CHURNWATCH_<NAME> or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv("CHURNWATCH_" + strings.ToUpper(name)); ok {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
