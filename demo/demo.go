// Package demo runs churnwatch whole on one machine: a Kafka-protocol
// broker (franz-go's kfake) on 127.0.0.1:9092 that any Kafka client can
// use, a local Redis, the processor with its admin API, and a synthetic
// population whose year of history is backfilled first and which then keeps
// producing live events, the webhook dispatcher and a webhook sink that
// verifies each signed delivery. Alerts and deliveries are printed as they
// happen.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/churnwatch/churnwatch/admin"
	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/delivery"
	"github.com/churnwatch/churnwatch/internal/localredis"
	"github.com/churnwatch/churnwatch/metrics"
	"github.com/churnwatch/churnwatch/processor"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/rules"
	"github.com/churnwatch/churnwatch/synth"
	"github.com/churnwatch/churnwatch/topics"
	"github.com/churnwatch/churnwatch/webhook"
)

// Options of the demo; zero values take the defaults.
type Options struct {
	KafkaPort int     // default 9092
	HTTPAddr  string  // default 127.0.0.1:8080
	Customers int     // default 2000
	Days      int     // history, default 365
	Rate      float64 // live events per second after the backfill, default 20
	Seed      int64
	SinkAddr  string     // webhook sink, default 127.0.0.1:0 (a free port)
	Holdout   float64    // share of customers held out of notifications
	Rules     *rules.Set // default the built-in pack
	Out       io.Writer  // alert lines and progress
	Logger    *slog.Logger
	// AdminToken is the bearer token of the admin API's customer data and
	// controls; empty: a fresh random one, printed with how to use it.
	AdminToken string
}

// Run runs the demo until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.KafkaPort == 0 {
		o.KafkaPort = 9092
	}
	if o.HTTPAddr == "" {
		o.HTTPAddr = "127.0.0.1:8080"
	}
	if o.Customers == 0 {
		o.Customers = 2000
	}
	if o.Days == 0 {
		o.Days = 365
	}
	if o.Rate == 0 {
		o.Rate = 20
	}
	if o.Rules == nil {
		o.Rules = rules.Builtin()
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.AdminToken == "" {
		raw := make([]byte, 24)
		if _, err := rand.Read(raw); err != nil {
			return err
		}
		o.AdminToken = hex.EncodeToString(raw)
	}
	out := o.Out

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(o.KafkaPort), kfake.ListenFn(loopback))
	if err != nil {
		return fmt.Errorf("start the embedded broker on 127.0.0.1:%d: %w (is another Kafka running there?)", o.KafkaPort, err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	rs, err := localredis.Start(ctx, localredis.Options{AllowEmbedded: true})
	if err != nil {
		return err
	}
	defer rs.Stop()
	kind := "redis-server"
	if rs.Embedded {
		kind = "embedded miniredis (redis-server not found in PATH)"
	}
	fmt.Fprintf(out, "kafka   %s (embedded broker; try: kcat -C -b %s -t churn-alerts)\n", strings.Join(brokers, ","), brokers[0])
	fmt.Fprintf(out, "redis   %s (%s)\n", rs.Addr, kind)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rdb.Close()

	sink, sinkLn, secret, err := startSink(o.SinkAddr, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "webhook http://%s (sink verifying the signature of each delivery; a fresh secret per run)\n", sinkLn.Addr())

	var fired, resolved atomic.Int64
	mset := metrics.New()
	cfg := processor.Config{
		Brokers: brokers, CreateTopics: true, MarkInterval: 200 * time.Millisecond, Logger: o.Logger,
		Holdout: o.Holdout, Metrics: mset,
		OnAlert: func(a alerts.Alert) {
			if a.Status == alerts.Firing {
				fired.Add(1)
			} else {
				resolved.Add(1)
			}
			fmt.Fprintln(out, Line(a))
		},
	}
	processor.TuneGC()
	store := redisstate.New(rdb, "")
	p, err := processor.New(cfg, store, o.Rules)
	if err != nil {
		return err
	}
	key, err := webhook.ParseSecret(secret)
	if err != nil {
		return err
	}
	d, err := delivery.New(delivery.Config{
		Brokers: brokers, Logger: o.Logger, Metrics: mset, Poll: 200 * time.Millisecond,
		Absence: delivery.TimeDriven(o.Rules), Watermark: store.Clock,
		Webhooks: &webhook.Config{Caps: webhook.DefaultCaps, StallAfter: time.Hour, Endpoints: []*webhook.Endpoint{{
			Name: "demo-sink", URL: "http://" + sinkLn.Addr().String() + "/", Secrets: []webhook.Secret{key}, Timeout: 5 * time.Second,
		}}},
	}, rdb)
	if err != nil {
		return err
	}
	adm, err := topics.NewAdmin(brokers)
	if err != nil {
		return err
	}
	_, err = adm.Ensure(ctx, processor.TopicSpecs(cfg))
	adm.Close()
	if err != nil {
		return err
	}

	now := time.Now().UTC()
	scfg := synth.Config{Customers: o.Customers, Seed: o.Seed, Start: now.Add(-time.Duration(o.Days) * 24 * time.Hour), End: now, BadEvery: 2000, OtherKeys: 0.05}
	history := synth.Generate(scfg)
	w := &kafka.Writer{
		Addr: kafka.TCP(brokers...), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchSize: 10000, BatchBytes: 1e6, BatchTimeout: 2 * time.Millisecond, Transport: &kafka.Transport{},
	}
	defer w.Close()
	t0 := time.Now()
	if _, err := synth.Write(ctx, w, history); err != nil {
		return err
	}
	fmt.Fprintf(out, "history %d events of %d customers over %d days written in %s; processing…\n",
		len(history), o.Customers, o.Days, time.Since(t0).Round(time.Millisecond))

	ln, err := net.Listen("tcp", o.HTTPAddr)
	if err != nil {
		return fmt.Errorf("admin HTTP: %w", err)
	}
	fmt.Fprintf(out, "api     http://%s/api/kpis (open); customers and alerts need the admin token of this run:\n", ln.Addr())
	fmt.Fprintf(out, "        export CHURNWATCH_ADMIN_TOKEN=%s\n", o.AdminToken)
	fmt.Fprintf(out, "        curl -s -H \"Authorization: Bearer $CHURNWATCH_ADMIN_TOKEN\" 'http://%s/api/alerts?status=firing'\n", ln.Addr())
	fmt.Fprintf(out, "        curl -s -H \"Authorization: Bearer $CHURNWATCH_ADMIN_TOKEN\" http://%s/api/customers/%s\n", ln.Addr(), synth.CustomerID(0))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return named("processor", p.Run(gctx)) })
	api := admin.API{Ready: p.Ready, Source: p, Deliveries: d, Metrics: p.MetricsHandler(), Log: o.Logger, KPIs: p.KPIs, Token: o.AdminToken}
	g.Go(func() error { return named("admin API", admin.Serve(gctx, ln, api.Handler())) })
	g.Go(func() error { return named("webhook dispatcher", d.Run(gctx)) })
	g.Go(func() error { return named("webhook sink", admin.Serve(gctx, sinkLn, sink)) })
	g.Go(func() error {
		// Live traffic starts once the history is on the topics.
		err := synth.Live(gctx, scfg, o.Rate, time.Now, func(m synth.Message) error {
			return w.WriteMessages(gctx, kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value})
		})
		if gctx.Err() != nil {
			return nil
		}
		return err
	})
	err = g.Wait()
	fmt.Fprintf(out, "stopped: %d alerts fired, %d resolved; %d webhook deliveries verified by the sink\n",
		fired.Load(), resolved.Load(), len(sink.Seen()))
	return err
}

func named(what string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// startSink listens for webhook deliveries signed with a fresh secret and
// prints each verified one.
func startSink(addr string, out io.Writer) (*webhook.Sink, net.Listener, string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, nil, "", err
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString(raw)
	key, err := webhook.ParseSecret(secret)
	if err != nil {
		return nil, nil, "", err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, "", fmt.Errorf("webhook sink: %w", err)
	}
	sink := &webhook.Sink{Secrets: []webhook.Secret{key}, OnDelivery: func(d webhook.Delivery) {
		fmt.Fprintln(out, "webhook "+d.Line())
	}}
	return sink, ln, secret, nil
}

// loopback makes the broker listen on 127.0.0.1 only.
func loopback(network, address string) (net.Listener, error) {
	_, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	return net.Listen(network, net.JoinHostPort("127.0.0.1", port))
}

// Line is the one-line human form of an alert.
func Line(a alerts.Alert) string {
	var b strings.Builder
	b.WriteString(a.Time.UTC().Format("2006-01-02 15:04"))
	if a.Status == alerts.Firing {
		b.WriteString("  FIRING   ")
	} else {
		b.WriteString("  resolved ")
	}
	fmt.Fprintf(&b, "%-21s %-12s %-8s risk %3s", a.Rule, a.CustomerID, a.Severity, strconv.Itoa(a.RiskScore))
	if len(a.Reasons) > 0 {
		b.WriteString("  ")
		b.WriteString(strings.Join(a.Reasons, "; "))
	}
	return b.String()
}
