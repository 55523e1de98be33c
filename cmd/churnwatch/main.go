// Command churnwatch reads customer events from Kafka, keeps per-customer
// state in Redis and emits churn-risk alerts. See `churnwatch help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/churnwatch/churnwatch/cli"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
}
