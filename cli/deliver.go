package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/churnwatch/churnwatch/admin"
	"github.com/churnwatch/churnwatch/delivery"
	"github.com/churnwatch/churnwatch/internal/kafkaconn"
	"github.com/churnwatch/churnwatch/metrics"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/rules"
	"github.com/churnwatch/churnwatch/webhook"
)

// loadWebhooks reads a webhooks file; secrets come from the environment
// (${NAME}). Filters must name rules of set.
func loadWebhooks(path string, set *rules.Set) (*webhook.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	cfg, err := webhook.LoadConfig(path, b, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	if err := cfg.CheckRules(func(id string) bool { return set.Get(id) != nil }); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// deliverKeys are the settings of `churnwatch deliver`; the webhooks
// subcommands use webhookKeys.
var (
	deliverKeys = keys(kafkaKeys, redisKeys, []string{"http", "rules", "webhooks", "webhooks_group"}, adminKeys, []string{"log_format", "log_level"})
	webhookKeys = keys(redisKeys, []string{"rules", "webhooks"})
)

// dispatcherOf builds a dispatcher from the configuration, with its own
// rules and Redis client.
func dispatcherOf(c *config, log *slog.Logger) (*delivery.Dispatcher, redis.UniversalClient, error) {
	if c.str("webhooks") == "" {
		return nil, nil, errors.New("webhooks: no file given (--webhooks FILE, CHURNWATCH_WEBHOOKS or webhooks: in the config file)")
	}
	set, err := loadRules(c.str("rules"))
	if err != nil {
		return nil, nil, fmt.Errorf("rules: %w", err)
	}
	rdb, err := c.openRedis()
	if err != nil {
		return nil, nil, err
	}
	d, err := newDispatcher(c, set, rdb, log, nil)
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return d, rdb, nil
}

// newDispatcher builds the dispatcher of the webhooks file c names over
// rdb; m is the metrics set to record into (nil: a fresh one).
func newDispatcher(c *config, set *rules.Set, rdb redis.UniversalClient, log *slog.Logger, m *metrics.Set) (*delivery.Dispatcher, error) {
	wh, err := loadWebhooks(c.str("webhooks"), set)
	if err != nil {
		return nil, err
	}
	kafka := kafkaconn.Conn{Brokers: []string{"unused:9092"}} // the webhooks subcommands only use Redis
	if slices.Contains(c.keys, "brokers") {
		if kafka, err = c.kafka(); err != nil {
			return nil, err
		}
	}
	group := "churnwatch-webhooks"
	if slices.Contains(c.keys, "webhooks_group") {
		group = c.str("webhooks_group")
	}
	return delivery.New(delivery.Config{
		Kafka: kafka, Group: group, Webhooks: wh, Logger: log, Metrics: m,
		Absence: delivery.TimeDriven(set), Watermark: redisstate.New(rdb, "").Clock,
	}, rdb)
}

// deliverCmd is `churnwatch deliver`: the webhook dispatcher alone.
func deliverCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("deliver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c, err := parseConfig(fs, args, deliverKeys...)
	if err != nil {
		return err
	}
	log := c.logger(stderr)
	d, rdb, err := dispatcherOf(c, log)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ln, err := net.Listen("tcp", c.str("http"))
	if err != nil {
		return fmt.Errorf("admin HTTP: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	api := admin.API{Ready: d.Ready, Deliveries: d, Metrics: d.MetricsHandler(), Log: log}
	c.guard(&api, log)
	g.Go(func() error { return admin.Serve(gctx, ln, api.Handler()) })
	g.Go(func() error { return d.Run(gctx) })
	log.Info("churnwatch deliver running", "http", ln.Addr().String())
	return g.Wait()
}

const webhooksUsage = `usage:
  churnwatch webhooks check FILE                      validate a webhooks file
  churnwatch webhooks endpoints [flags]               endpoints, pending and dead deliveries
  churnwatch webhooks dlq list [flags] [ENDPOINT]     list dead letters
  churnwatch webhooks dlq replay [flags] ENDPOINT [EVENT_ID…]
                                                      send dead letters again (all of ENDPOINT without ids)
  churnwatch webhooks enable [flags] ENDPOINT         resume an endpoint disabled by a 410
flags: --webhooks FILE --redis URL --redis-password … --rules FILE --config FILE (or CHURNWATCH_WEBHOOKS, CHURNWATCH_REDIS, …)
`

// webhooksCmd is `churnwatch webhooks …`: inspect and repair deliveries.
func webhooksCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, webhooksUsage)
		return errUsage
	}
	sub := args[0]
	if sub == "check" {
		if len(args) != 2 {
			fmt.Fprint(stderr, webhooksUsage)
			return errUsage
		}
		cfg, err := loadWebhooks(args[1], rules.Builtin())
		if err != nil {
			return err
		}
		for _, ep := range cfg.Endpoints {
			fmt.Fprintf(stdout, "%s: %s, template %s, %d secret(s)\n", ep.Name, ep.Host(), ep.Template.Kind(), len(ep.Secrets))
		}
		fmt.Fprintf(stdout, "%s: %d endpoint(s) OK\n", args[1], len(cfg.Endpoints))
		return nil
	}
	if sub == "dlq" {
		if len(args) < 2 || (args[1] != "list" && args[1] != "replay") {
			fmt.Fprint(stderr, webhooksUsage)
			return errUsage
		}
		sub, args = "dlq "+args[1], args[1:]
	}
	fs := flag.NewFlagSet("webhooks "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	limit := fs.Int("limit", 100, "how many to list")
	c, err := parseConfig(fs, args[1:], webhookKeys...)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, rdb, err := dispatcherOf(c, log)
	if err != nil {
		return err
	}
	defer rdb.Close()
	rest := fs.Args()
	switch sub {
	case "endpoints":
		v, err := d.Endpoints(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ENDPOINT\tHOST\tTEMPLATE\tPENDING\tDEAD\tDISABLED")
		for _, s := range v.([]delivery.EndpointStatus) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", s.Name, s.Host, s.Template, s.Pending, s.Dead, s.Disabled)
		}
		return tw.Flush()
	case "dlq list":
		name := ""
		if len(rest) > 0 {
			name = rest[0]
		}
		v, err := d.DeadLetters(ctx, name, *limit)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ENDPOINT\tEVENT_ID\tRULE\tCUSTOMER\tATTEMPTS\tDEAD_AT\tREASON")
		for _, j := range v.([]*delivery.Job) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", j.Endpoint, j.EventID, j.Rule, j.Customer, j.Attempt,
				deadAtText(j.DeadAt), j.DeadReason)
		}
		return tw.Flush()
	case "dlq replay":
		if len(rest) == 0 {
			fmt.Fprint(stderr, "webhooks dlq replay: name the endpoint (and optionally event ids)\n")
			return errUsage
		}
		n, err := d.Replay(ctx, rest[0], rest[1:])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d dead letter(s) of %s due again; a running dispatcher sends them now\n", n, rest[0])
		return nil
	case "enable":
		if len(rest) != 1 {
			fmt.Fprint(stderr, "webhooks enable: name the endpoint\n")
			return errUsage
		}
		if err := d.Enable(ctx, rest[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s enabled; its waiting deliveries go out now\n", rest[0])
		return nil
	}
	fmt.Fprint(stderr, webhooksUsage)
	return errUsage
}

func deadAtText(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}
