package processor

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/internal/kafkaconn"
	"github.com/churnwatch/churnwatch/internal/redistest"
	"github.com/churnwatch/churnwatch/internal/securetest"
	"github.com/churnwatch/churnwatch/internal/tlsfiles"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/rules"
)

// TestProcessorOverTLSAndSASL runs the whole processor against a broker
// that requires mutual TLS and SCRAM-SHA-512: it creates the topics (kadm),
// consumes the sources and the internal topic in consumer groups (kafka-go
// dialer), re-keys and dead-letters (writers), and produces the alert,
// which a reader of the same connection finds on the alert topic.
func TestProcessorOverTLSAndSASL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and Redis")
	}
	certs := securetest.NewCerts(t)
	b := securetest.Broker{TLS: certs.ServerTLS(true), Mechanism: kafkaconn.ScramSHA512, User: "churnwatch", Password: "p4ss-w0rd"}
	tc, err := tlsfiles.Files{Prefix: "kafka_tls", CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	conn := kafkaconn.Conn{Brokers: b.Start(t), TLS: tc, SASL: &kafkaconn.SASL{Mechanism: kafkaconn.ScramSHA512, Username: b.User, Password: b.Password}}
	rdb, _ := redistest.Start(t)
	var (
		mu    sync.Mutex
		fired []alerts.Alert
	)
	cfg := Config{Kafka: conn, CreateTopics: true, InternalPartitions: 2, SourcePartitions: 1,
		MarkInterval: 50 * time.Millisecond, BatchWait: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnAlert: func(a alerts.Alert) {
			mu.Lock()
			fired = append(fired, a)
			mu.Unlock()
		}}
	p, err := New(cfg, redisstate.New(rdb, ""), rules.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	defer r.stop(t)

	now := time.Now().UTC()
	w := &kafka.Writer{Addr: conn.Addr(), Transport: conn.Transport(), RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	var msgs []kafka.Message
	for _, m := range []msg{
		ticket("c-secure", "t1", "opened", now.Add(-3*time.Hour)),
		ticket("c-secure", "t2", "opened", now.Add(-2*time.Hour)),
		ticket("c-secure", "t3", "opened", now.Add(-time.Hour)),
		{"purchases", []byte("c-secure"), "not json"},
	} {
		msgs = append(msgs, kafka.Message{Topic: m.topic, Key: m.key, Value: []byte(m.value)})
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	for {
		// The topics exist once the processor created them.
		err := w.WriteMessages(wctx, msgs...)
		if err == nil {
			break
		}
		if wctx.Err() != nil {
			t.Fatalf("produce: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	read := func(topic string) kafka.Message {
		t.Helper()
		r := conn.Reader(kafka.ReaderConfig{Topic: topic, Partition: 0, MaxWait: 50 * time.Millisecond})
		defer r.Close()
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		defer rcancel()
		m, err := r.ReadMessage(rctx)
		if err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		return m
	}
	alert := read("churn-alerts")
	if string(alert.Key) != "c-secure" || !strings.Contains(string(alert.Value), `"rule":"ticket-surge"`) {
		t.Errorf("alert on the topic: %s %s", alert.Key, alert.Value)
	}
	dead := read("churn-dlq")
	if string(dead.Value) != "not json" {
		t.Errorf("dead letter %q", dead.Value)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(fired) != 1 || fired[0].Rule != "ticket-surge" || fired[0].CustomerID != "c-secure" {
		t.Errorf("alerts %+v, want one ticket-surge of c-secure", fired)
	}
}
