package kafkaconn_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/churnwatch/churnwatch/internal/kafkaconn"
	"github.com/churnwatch/churnwatch/internal/securetest"
	"github.com/churnwatch/churnwatch/internal/tlsfiles"
)

func clientTLS(t *testing.T, certs *securetest.Certs, clientCert bool) *tls.Config {
	t.Helper()
	f := tlsfiles.Files{Prefix: "kafka_tls", CAFile: certs.CAFile}
	if clientCert {
		f.CertFile, f.KeyFile = certs.ClientCertFile, certs.ClientKeyFile
	}
	c, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// roundTrip uses every kind of client a Conn builds: the kadm client
// creates a topic, a writer (Transport) produces to it, a consumer group
// (Dialer) joins and commits, and a partition reader (Dialer) reads the
// message back.
func roundTrip(t *testing.T, conn kafkaconn.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := conn.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, "secured"); err != nil {
		t.Fatalf("kadm create topic: %v", kafkaconn.Explain(err))
	}
	w := &kafka.Writer{Addr: conn.Addr(), Topic: "secured", Transport: conn.Transport(), RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("over a secured connection")}); err != nil {
		t.Fatalf("writer: %v", kafkaconn.Explain(err))
	}
	cg, err := conn.ConsumerGroup(kafka.ConsumerGroupConfig{ID: "secured-group", Topics: []string{"secured"},
		HeartbeatInterval: 100 * time.Millisecond, RebalanceTimeout: time.Second, StartOffset: kafka.FirstOffset})
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	gen, err := cg.Next(ctx)
	if err != nil {
		t.Fatalf("consumer group: %v", kafkaconn.Explain(err))
	}
	if len(gen.Assignments["secured"]) != 1 {
		t.Fatalf("assignments %v", gen.Assignments)
	}
	if err := gen.CommitOffsets(map[string]map[int]int64{"secured": {0: 1}}); err != nil {
		t.Fatalf("commit: %v", kafkaconn.Explain(err))
	}
	r := conn.Reader(kafka.ReaderConfig{Topic: "secured", Partition: 0, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("reader: %v", kafkaconn.Explain(err))
	}
	if string(m.Value) != "over a secured connection" {
		t.Errorf("read %q", m.Value)
	}
	lag, err := adm.Lag(ctx, "secured-group")
	if err != nil || lag["secured-group"].Lag.Total() != 0 {
		t.Errorf("lag after the commit: %v %v", lag, err)
	}
}

// TestSecuredBrokers: the clients built from one Conn work against a broker
// that requires each SASL mechanism, TLS, and mutual TLS with SCRAM.
func TestSecuredBrokers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts brokers")
	}
	certs := securetest.NewCerts(t)
	for _, tc := range []struct {
		name       string
		mechanism  string
		tls        bool
		clientCert bool
	}{
		{name: "PLAIN", mechanism: kafkaconn.Plain},
		{name: "SCRAM-SHA-256", mechanism: kafkaconn.ScramSHA256},
		{name: "SCRAM-SHA-512", mechanism: kafkaconn.ScramSHA512},
		{name: "TLS", tls: true},
		{name: "mutual TLS and SCRAM-SHA-512", mechanism: kafkaconn.ScramSHA512, tls: true, clientCert: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := securetest.Broker{Mechanism: tc.mechanism, User: "churnwatch", Password: "s3cret-" + tc.name}
			conn := kafkaconn.Conn{}
			if tc.tls {
				b.TLS = certs.ServerTLS(tc.clientCert)
				conn.TLS = clientTLS(t, certs, tc.clientCert)
			}
			if tc.mechanism != "" {
				conn.SASL = &kafkaconn.SASL{Mechanism: tc.mechanism, Username: b.User, Password: b.Password}
			}
			conn.Brokers = b.Start(t)
			if err := conn.Validate(); err != nil {
				t.Fatal(err)
			}
			roundTrip(t, conn)
		})
	}
}

// TestRefusedConnections: a wrong password, or a certificate the client
// does not trust, fails every client with an error that names the
// settings to fix, and never shows the password.
func TestRefusedConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("starts brokers")
	}
	certs := securetest.NewCerts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := securetest.Broker{Mechanism: kafkaconn.Plain, User: "churnwatch", Password: "right-password", TLS: certs.ServerTLS(false)}
	brokers := b.Start(t)
	wrong := kafkaconn.Conn{Brokers: brokers, TLS: clientTLS(t, certs, false),
		SASL: &kafkaconn.SASL{Mechanism: kafkaconn.Plain, Username: "churnwatch", Password: "wrong-password"}}
	untrusted := kafkaconn.Conn{Brokers: brokers, TLS: &tls.Config{MinVersion: tls.VersionTLS12},
		SASL: &kafkaconn.SASL{Mechanism: kafkaconn.Plain, Username: "churnwatch", Password: "right-password"}}
	attempts := map[string]func(kafkaconn.Conn) error{
		"kadm": func(c kafkaconn.Conn) error {
			cl, err := c.NewClient()
			if err != nil {
				return err
			}
			defer cl.Close()
			_, err = kadm.NewClient(cl).ListTopics(ctx)
			return err
		},
		"writer": func(c kafkaconn.Conn) error {
			w := &kafka.Writer{Addr: c.Addr(), Topic: "t", Transport: c.Transport(), MaxAttempts: 1}
			defer w.Close()
			return w.WriteMessages(ctx, kafka.Message{Value: []byte("x")})
		},
		"dialer": func(c kafkaconn.Conn) error {
			conn, err := c.Dialer().DialContext(ctx, "tcp", c.Brokers[0])
			if err == nil {
				conn.Close()
			}
			return err
		},
	}
	for name, attempt := range attempts {
		for _, tc := range []struct {
			conn kafkaconn.Conn
			want string
		}{
			{wrong, "check kafka_sasl_username, kafka_sasl_password"},
			{untrusted, "set kafka_tls_ca_file"},
		} {
			err := kafkaconn.Explain(attempt(tc.conn))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
				continue
			}
			if strings.Contains(err.Error(), "wrong-password") || strings.Contains(err.Error(), "right-password") {
				t.Errorf("%s: the error shows a password: %v", name, err)
			}
		}
	}
}

// TestWrongScramPassword: readers and consumer groups (the dialer) report
// a refused SCRAM login with the settings to fix.
func TestWrongScramPassword(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	b := securetest.Broker{Mechanism: kafkaconn.ScramSHA512, User: "churnwatch", Password: "right-password"}
	c := kafkaconn.Conn{Brokers: b.Start(t), SASL: &kafkaconn.SASL{Mechanism: kafkaconn.ScramSHA512, Username: "churnwatch", Password: "wrong-password"}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Dialer().DialContext(ctx, "tcp", c.Brokers[0])
	if err = kafkaconn.Explain(err); err == nil || !strings.Contains(err.Error(), "check kafka_sasl_username, kafka_sasl_password") {
		t.Errorf("dial with a wrong SCRAM password: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		conn kafkaconn.Conn
		want string
	}{
		{kafkaconn.Conn{}, "brokers: at least one broker"},
		{kafkaconn.Conn{Brokers: []string{"k:9092"}, SASL: &kafkaconn.SASL{Mechanism: "GSSAPI", Username: "u", Password: "p"}},
			`kafka_sasl_mechanism "GSSAPI": want one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		{kafkaconn.Conn{Brokers: []string{"k:9092"}, SASL: &kafkaconn.SASL{Mechanism: kafkaconn.Plain, Username: "u"}},
			"kafka_sasl_mechanism PLAIN: set kafka_sasl_username and kafka_sasl_password too"},
	} {
		if err := tc.conn.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.conn, err, tc.want)
		}
	}
	ok := kafkaconn.Conn{Brokers: []string{"k:9092"}, SASL: &kafkaconn.SASL{Mechanism: kafkaconn.ScramSHA512, Username: "u", Password: "hunter2"}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid: %v", err)
	}
	if s := ok.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "SCRAM-SHA-512 as u") {
		t.Errorf("String %q", s)
	}
	if s := ok.SASL.String(); strings.Contains(s, "hunter2") {
		t.Errorf("SASL.String %q shows the password", s)
	}
}
