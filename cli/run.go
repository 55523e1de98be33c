package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"

	"golang.org/x/sync/errgroup"

	"github.com/churnwatch/churnwatch/admin"
	"github.com/churnwatch/churnwatch/delivery"
	"github.com/churnwatch/churnwatch/metrics"
	"github.com/churnwatch/churnwatch/processor"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/rules"
)

// runKeys are the settings of `churnwatch run`.
var runKeys = keys(kafkaKeys, redisKeys, []string{"http", "rules", "group", "lateness", "create_topics",
	"source_partitions", "internal_partitions", "replication", "internal_retention", "churn_inactivity", "holdout", "webhooks", "webhooks_group"},
	adminKeys, []string{"log_format", "log_level"})

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c, err := parseConfig(fs, args, runKeys...)
	if err != nil {
		return err
	}
	log := c.logger(stderr)
	set, err := loadRules(c.str("rules"))
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	kafka, err := c.kafka()
	if err != nil {
		return err
	}
	rdb, err := c.openRedis()
	if err != nil {
		return err
	}
	defer rdb.Close()
	cfg := processor.Config{
		Kafka: kafka, Group: c.str("group"), Lateness: c.dur("lateness"), Holdout: c.float("holdout"),
		CreateTopics: c.bool("create_topics"), SourcePartitions: c.int("source_partitions"),
		InternalPartitions: c.int("internal_partitions"), ChurnInactivity: c.dur("churn_inactivity"),
		Replication: c.int("replication"), InternalRetention: c.dur("internal_retention"),
		Logger: log, Metrics: metrics.New(),
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	var d *delivery.Dispatcher
	if c.str("webhooks") != "" {
		if d, err = newDispatcher(c, set, rdb, log, cfg.Metrics); err != nil {
			return err
		}
	}
	return serve(ctx, c, cfg, redisstate.New(rdb, ""), set, d, log)
}

// serve runs a processor, the webhook dispatcher d (when not nil) and the
// admin API of c until ctx ends.
func serve(ctx context.Context, c *config, cfg processor.Config, store *redisstate.Store, set *rules.Set, d *delivery.Dispatcher, log *slog.Logger) error {
	if soft := processor.TuneGC(); soft > 0 {
		log.Info("soft memory limit set from the container's", "MiB", soft>>20, "share", processor.MemoryLimitShare)
	}
	p, err := processor.New(cfg, store, set)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.str("http"))
	if err != nil {
		return fmt.Errorf("admin HTTP: %w", err)
	}
	api := admin.API{Ready: p.Ready, Source: p, Metrics: p.MetricsHandler(), Log: log, KPIs: p.KPIs}
	c.guard(&api, log)
	g, gctx := errgroup.WithContext(ctx)
	if d != nil {
		api.Deliveries = d
		api.Ready = func(ctx context.Context) error { return errors.Join(p.Ready(ctx), d.Ready(ctx)) }
		g.Go(func() error { return d.Run(gctx) })
	}
	g.Go(func() error { return admin.Serve(gctx, ln, api.Handler()) })
	g.Go(func() error { return p.Run(gctx) })
	log.Info("churnwatch running", "kafka", cfg.Kafka, "http", ln.Addr().String(), "webhooks", d != nil)
	return g.Wait()
}
