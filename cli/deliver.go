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
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/churnwatch/churnwatch/admin"
	"github.com/churnwatch/churnwatch/delivery"
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

func openRedis(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis %q: %w (want redis://host:port/db)", url, err)
	}
	return redis.NewClient(opt), nil
}

// deliverFlags are the settings of `churnwatch deliver` and `churnwatch webhooks`.
type deliverFlags struct {
	brokers, redisURL, httpAddr, rulesFile, webhooks, group string
}

func (f *deliverFlags) register(fs *flag.FlagSet, withKafka bool) {
	fs.StringVar(&f.redisURL, "redis", env("redis", "redis://localhost:6379/0"), "Redis URL (CHURNWATCH_REDIS)")
	fs.StringVar(&f.webhooks, "webhooks", env("webhooks", ""), "webhooks file: endpoints, contact caps (CHURNWATCH_WEBHOOKS)")
	fs.StringVar(&f.rulesFile, "rules", env("rules", "builtin"), "rules file, or builtin (CHURNWATCH_RULES)")
	if withKafka {
		fs.StringVar(&f.brokers, "brokers", env("brokers", "localhost:9092"), "Kafka brokers, host:port,… (CHURNWATCH_BROKERS)")
		fs.StringVar(&f.httpAddr, "http", env("http", ":8080"), "admin HTTP address (CHURNWATCH_HTTP)")
		fs.StringVar(&f.group, "webhooks-group", env("webhooks_group", "churnwatch-webhooks"), "consumer group of the dispatcher (CHURNWATCH_WEBHOOKS_GROUP)")
	}
}

// dispatcher builds a dispatcher from the flags.
func (f *deliverFlags) dispatcher(log *slog.Logger) (*delivery.Dispatcher, *redis.Client, error) {
	if f.webhooks == "" {
		return nil, nil, errors.New("webhooks: no file given (--webhooks FILE or CHURNWATCH_WEBHOOKS)")
	}
	set, err := loadRules(f.rulesFile)
	if err != nil {
		return nil, nil, fmt.Errorf("rules: %w", err)
	}
	wh, err := loadWebhooks(f.webhooks, set)
	if err != nil {
		return nil, nil, err
	}
	rdb, err := openRedis(f.redisURL)
	if err != nil {
		return nil, nil, err
	}
	d, err := delivery.New(delivery.Config{
		Brokers: splitList(f.brokers), Group: f.group, Webhooks: wh, Logger: log,
		Absence: delivery.TimeDriven(set), Watermark: redisstate.New(rdb, "").Clock,
	}, rdb)
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return d, rdb, nil
}

// deliverCmd is `churnwatch deliver`: the webhook dispatcher alone.
func deliverCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("deliver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f deliverFlags
	f.register(fs, true)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	d, rdb, err := f.dispatcher(log)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ln, err := net.Listen("tcp", f.httpAddr)
	if err != nil {
		return fmt.Errorf("admin HTTP: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	api := admin.API{Ready: d.Ready, Deliveries: d, Metrics: d.MetricsHandler(), Log: log}
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
flags: --webhooks FILE --redis URL --rules FILE (or CHURNWATCH_WEBHOOKS, CHURNWATCH_REDIS, CHURNWATCH_RULES)
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
	var f deliverFlags
	f.register(fs, false)
	limit := fs.Int("limit", 100, "how many to list")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f.brokers = "unused:9092" // these commands only read and write Redis
	d, rdb, err := f.dispatcher(log)
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
