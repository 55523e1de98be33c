package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/churnwatch/churnwatch/admin"
	"github.com/churnwatch/churnwatch/processor"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/rules"
)

// runFlags are the settings of `churnwatch run`; each flag has an env
// variable CHURNWATCH_<NAME>.
type runFlags struct {
	brokers, redisURL, httpAddr, rulesFile, group string
	lateness                                      time.Duration
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
	opt, err := redis.ParseURL(f.redisURL)
	if err != nil {
		return fmt.Errorf("redis %q: %w (want redis://host:port/db)", f.redisURL, err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if f.lateness < 0 {
		return errors.New("lateness: must be a non-negative duration such as 5m (CHURNWATCH_LATENESS)")
	}
	cfg := processor.Config{
		Brokers: splitList(f.brokers), Group: f.group, Lateness: f.lateness,
		CreateTopics: f.createTopics, Logger: log,
	}
	return serve(ctx, cfg, redisstate.New(rdb, ""), set, f.httpAddr, log)
}

// serve runs a processor and its admin API until ctx ends.
func serve(ctx context.Context, cfg processor.Config, store *redisstate.Store, set *rules.Set, httpAddr string, log *slog.Logger) error {
	processor.TuneGC()
	p, err := processor.New(cfg, store, set)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return fmt.Errorf("admin HTTP: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return admin.Serve(gctx, ln, admin.Handler(p, p.MetricsHandler(), log)) })
	g.Go(func() error { return p.Run(gctx) })
	log.Info("churnwatch running", "brokers", cfg.Brokers, "http", ln.Addr().String())
	return g.Wait()
}
