package cli

import (
	"context"
	"flag"
	"io"
	"log/slog"

	"github.com/churnwatch/churnwatch/demo"
)

func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o demo.Options
	fs.IntVar(&o.KafkaPort, "kafka-port", 9092, "port of the embedded broker on 127.0.0.1")
	fs.StringVar(&o.HTTPAddr, "http", "127.0.0.1:8080", "admin HTTP address")
	fs.IntVar(&o.Customers, "customers", 2000, "synthetic customers")
	fs.IntVar(&o.Days, "days", 365, "days of history backfilled before live traffic")
	fs.Float64Var(&o.Rate, "rate", 20, "live events per second after the backfill")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the synthetic population")
	fs.StringVar(&o.SinkAddr, "sink", "127.0.0.1:0", "address of the webhook sink the demo delivers to")
	fs.Float64Var(&o.Holdout, "holdout", 0.1, "share of customers held out of notifications (their alerts carry data.holdout)")
	fs.StringVar(&o.AdminToken, "admin-token", env("admin_token", ""), "bearer token of the admin API's customer data and controls (CHURNWATCH_ADMIN_TOKEN); default: a random one, printed")
	rulesFile := fs.String("rules", "builtin", "rules file, or builtin")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	set, err := loadRules(*rulesFile)
	if err != nil {
		return err
	}
	o.Rules = set
	o.Out = stdout
	o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return demo.Run(ctx, o)
}
