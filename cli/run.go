package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/churnwatch/churnwatch/admin"
	"github.com/churnwatch/churnwatch/delivery"
	"github.com/churnwatch/churnwatch/metrics"
	"github.com/churnwatch/churnwatch/processor"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/rules"
)

// runFlags are the settings of `churnwatch run`; each flag has an env
// variable CHURNWATCH_<NAME>.
type runFlags struct {
	brokers, redisURL, httpAddr, rulesFile, group string
	webhooks, webhooksGroup                       string
	lateness                                      time.Duration
	holdout                                       float64
	createTopics                                  bool
}

func (f *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.brokers, "brokers", env("brokers", "localhost:9092"), "Kafka brokers, host:port,… (CHURNWATCH_BROKERS)")
	fs.StringVar(&f.redisURL, "redis", env("redis", "redis://localhost:6379/0"), "Redis URL (CHURNWATCH_REDIS)")
	fs.StringVar(&f.httpAddr, "http", env("http", ":8080"), "admin HTTP address (CHURNWATCH_HTTP)")
	fs.StringVar(&f.rulesFile, "rules", env("rules", "builtin"), "rules file, or builtin (CHURNWATCH_RULES)")
	fs.StringVar(&f.group, "group", env("group", "churnwatch"), "consumer group (CHURNWATCH_GROUP)")
	lateness, err := time.ParseDuration(env("lateness", "5m"))
	if err != nil {
		lateness = -1 // rejected by validation with the key named
	}
	fs.DurationVar(&f.lateness, "lateness", lateness, "allowed lateness subtracted from the watermark (CHURNWATCH_LATENESS)")
	fs.StringVar(&f.webhooks, "webhooks", env("webhooks", ""), "webhooks file; when set, the dispatcher runs in this process (CHURNWATCH_WEBHOOKS)")
	fs.StringVar(&f.webhooksGroup, "webhooks-group", env("webhooks_group", "churnwatch-webhooks"), "consumer group of the dispatcher (CHURNWATCH_WEBHOOKS_GROUP)")
	holdout, err := strconv.ParseFloat(env("holdout", "0"), 64)
	if err != nil {
		holdout = -1 // rejected by validation with the key named
	}
	fs.Float64Var(&f.holdout, "holdout", holdout, "share of customers (0–1) held out of notifications, by a stable hash (CHURNWATCH_HOLDOUT)")
	fs.BoolVar(&f.createTopics, "create-topics", env("create_topics", "true") == "true", "create missing topics at start (CHURNWATCH_CREATE_TOPICS)")
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	set, err := loadRules(f.rulesFile)
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	rdb, err := openRedis(f.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if f.lateness < 0 {
		return errors.New("lateness: must be a non-negative duration such as 5m (CHURNWATCH_LATENESS)")
	}
	cfg := processor.Config{
		Brokers: splitList(f.brokers), Group: f.group, Lateness: f.lateness, Holdout: f.holdout,
		CreateTopics: f.createTopics, Logger: log, Metrics: metrics.New(),
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	var d *delivery.Dispatcher
	if f.webhooks != "" {
		wh, err := loadWebhooks(f.webhooks, set)
		if err != nil {
			return err
		}
		store := redisstate.New(rdb, "")
		d, err = delivery.New(delivery.Config{
			Brokers: cfg.Brokers, Group: f.webhooksGroup, Webhooks: wh, Logger: log, Metrics: cfg.Metrics,
			Absence: delivery.TimeDriven(set), Watermark: store.Clock,
		}, rdb)
		if err != nil {
			return err
		}
	}
	return serve(ctx, cfg, redisstate.New(rdb, ""), set, d, f.httpAddr, log)
}

// serve runs a processor, the webhook dispatcher d (when not nil) and the
// admin API until ctx ends.
func serve(ctx context.Context, cfg processor.Config, store *redisstate.Store, set *rules.Set, d *delivery.Dispatcher, httpAddr string, log *slog.Logger) error {
	processor.TuneGC()
	p, err := processor.New(cfg, store, set)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return fmt.Errorf("admin HTTP: %w", err)
	}
	api := admin.API{Ready: p.Ready, Source: p, Metrics: p.MetricsHandler(), Log: log, KPIs: p.KPIs}
	g, gctx := errgroup.WithContext(ctx)
	if d != nil {
		api.Deliveries = d
		api.Ready = func(ctx context.Context) error { return errors.Join(p.Ready(ctx), d.Ready(ctx)) }
		g.Go(func() error { return d.Run(gctx) })
	}
	g.Go(func() error { return admin.Serve(gctx, ln, api.Handler()) })
	g.Go(func() error { return p.Run(gctx) })
	log.Info("churnwatch running", "brokers", cfg.Brokers, "http", ln.Addr().String(), "webhooks", d != nil)
	return g.Wait()
}
