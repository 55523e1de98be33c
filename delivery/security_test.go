package delivery

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/internal/kafkaconn"
	"github.com/churnwatch/churnwatch/internal/redistest"
	"github.com/churnwatch/churnwatch/internal/securetest"
	"github.com/churnwatch/churnwatch/internal/syncbuf"
	"github.com/churnwatch/churnwatch/internal/tlsfiles"
	"github.com/churnwatch/churnwatch/metrics"
)

// TestDenyPrivateAddresses: with deny_private_addresses in the webhooks
// file, the dispatcher's own HTTP client refuses a receiver on loopback at
// connect time; the delivery is dead-lettered at once with the reason.
func TestDenyPrivateAddresses(t *testing.T) {
	e := newEnv(t)
	key := secret(t, 3)
	rc := newReceiver(t, e.clock, key)
	cfg := config(endpointTo(rc, "internal", key))
	cfg.DenyPrivate = true
	a := alert("ticket-surge", "p1", alerts.Firing, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
	e.publish(a)
	stop := e.dispatcher(cfg, nil)
	defer stop()
	waitFor(t, "the dead letter", func() bool { _, d := e.pending("internal"); return d == 1 })
	dl, err := e.store.DeadLetters(context.Background(), "internal", 10)
	if err != nil || len(dl) != 1 {
		t.Fatalf("dead letters %+v, %v", dl, err)
	}
	if r := dl[0].DeadReason; !strings.Contains(r, "refused to connect to 127.0.0.1, a loopback address (deny_private_addresses is on)") {
		t.Errorf("dead reason %q", r)
	}
	if rc.count() != 0 {
		t.Errorf("the receiver got %d requests, want none", rc.count())
	}
}

// TestAlertsOverTLSAndSASL: the dispatcher's alert reader (a consumer
// group) connects as Config.Kafka says, here over TLS with SCRAM-SHA-256,
// and delivers what it reads.
func TestAlertsOverTLSAndSASL(t *testing.T) {
	certs := securetest.NewCerts(t)
	b := securetest.Broker{TLS: certs.ServerTLS(false), Mechanism: kafkaconn.ScramSHA256, User: "dispatcher", Password: "d1spatch", Topics: []string{"churn-alerts"}}
	tc, err := tlsfiles.Files{Prefix: "kafka_tls", CAFile: certs.CAFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	conn := kafkaconn.Conn{Brokers: b.Start(t), TLS: tc, SASL: &kafkaconn.SASL{Mechanism: kafkaconn.ScramSHA256, Username: b.User, Password: b.Password}}
	rdb, _ := redistest.Start(t)
	e := &env{t: t, store: NewStore(rdb, ""), logs: &syncbuf.Buffer{}, metrics: metrics.New(),
		clock:  newClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)),
		writer: &kafka.Writer{Addr: conn.Addr(), Topic: "churn-alerts", Transport: conn.Transport(), BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}}
	defer e.writer.Close()
	key := secret(t, 4)
	rc := newReceiver(t, e.clock, key)
	a := alert("ticket-surge", "s1", alerts.Firing, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
	e.publish(a)
	stop := e.dispatcher(config(endpointTo(rc, "crm", key)), func(c *Config) { c.Kafka = conn })
	defer stop()
	waitFor(t, "the delivery", func() bool { return rc.sink.Seen()[a.EventID()] == 1 })
}
