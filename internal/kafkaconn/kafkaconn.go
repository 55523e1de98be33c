// Package kafkaconn says how churnwatch reaches Kafka: the bootstrap
// brokers, TLS and SASL authentication. Every Kafka client the program
// builds (kafka-go readers, writers and consumer groups, franz-go's kgo and
// kadm clients) is built from one Conn, so that all of them connect the
// same way.
package kafkaconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	kgosasl "github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	fsasl "github.com/twmb/franz-go/pkg/sasl"
	fplain "github.com/twmb/franz-go/pkg/sasl/plain"
	fscram "github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Mechanisms are the SASL mechanisms churnwatch speaks.
var Mechanisms = []string{Plain, ScramSHA256, ScramSHA512}

// SASL is a user's credentials and the mechanism that presents them.
type SASL struct {
	Mechanism string // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	Username  string
	Password  string
}

// String masks the password.
func (s SASL) String() string { return s.Mechanism + " user " + s.Username + " (password ****)" }

// LogValue masks the password.
func (s SASL) LogValue() slog.Value {
	return slog.GroupValue(slog.String("mechanism", s.Mechanism), slog.String("username", s.Username))
}

// Conn is how to reach the Kafka cluster. The zero TLS and SASL connect in
// plaintext without authentication.
type Conn struct {
	Brokers []string
	TLS     *tls.Config // nil: plaintext
	SASL    *SASL       // nil: no authentication
}

// Validate reports a connection that cannot work, naming the setting.
func (c Conn) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("brokers: at least one broker address is required (--brokers host:port)")
	}
	if c.SASL == nil {
		return nil
	}
	var errs []error
	switch c.SASL.Mechanism {
	case Plain, ScramSHA256, ScramSHA512:
	default:
		errs = append(errs, fmt.Errorf("kafka_sasl_mechanism %q: want one of %s", c.SASL.Mechanism, strings.Join(Mechanisms, ", ")))
	}
	if c.SASL.Username == "" || c.SASL.Password == "" {
		errs = append(errs, fmt.Errorf("kafka_sasl_mechanism %s: set kafka_sasl_username and kafka_sasl_password too", c.SASL.Mechanism))
	}
	if len(errs) == 0 {
		if _, err := c.kafkaGoMechanism(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// String describes the connection without secrets.
func (c Conn) String() string {
	s := strings.Join(c.Brokers, ",")
	if c.TLS != nil {
		s += " over TLS"
	}
	if c.SASL != nil {
		s += ", SASL " + c.SASL.Mechanism + " as " + c.SASL.Username
	}
	return s
}

// LogValue is String, for log/slog.
func (c Conn) LogValue() slog.Value { return slog.StringValue(c.String()) }

// kafkaGoMechanism is the SASL mechanism of kafka-go's clients; nil
// without SASL.
func (c Conn) kafkaGoMechanism() (kgosasl.Mechanism, error) {
	if c.SASL == nil {
		return nil, nil
	}
	s := c.SASL
	var (
		m   kgosasl.Mechanism
		err error
	)
	switch s.Mechanism {
	case Plain:
		m = plain.Mechanism{Username: s.Username, Password: s.Password}
	case ScramSHA256:
		m, err = scram.Mechanism(scram.SHA256, s.Username, s.Password)
	case ScramSHA512:
		m, err = scram.Mechanism(scram.SHA512, s.Username, s.Password)
	default:
		err = fmt.Errorf("want one of %s", strings.Join(Mechanisms, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("kafka_sasl_mechanism %s: %w", s.Mechanism, err)
	}
	return m, nil
}

// failing is a SASL mechanism that cannot start: a Conn that does not
// validate fails on connecting, with the reason, instead of connecting
// without authentication.
type failing struct {
	name string
	err  error
}

func (f failing) Name() string { return f.name }
func (f failing) Start(context.Context) (kgosasl.StateMachine, []byte, error) {
	return nil, nil, f.err
}

func (c Conn) mechanism() kgosasl.Mechanism {
	m, err := c.kafkaGoMechanism()
	if err != nil {
		return failing{c.SASL.Mechanism, err}
	}
	return m
}

// Dialer returns a kafka-go dialer (for readers and consumer groups).
func (c Conn) Dialer() *kafka.Dialer {
	d := &kafka.Dialer{
		Timeout:   10 * time.Second,
		DualStack: true,
		ClientID:  kafka.DefaultClientID,
		TLS:       c.TLS,
	}
	if c.SASL != nil {
		d.SASLMechanism = c.mechanism()
	}
	return d
}

// Transport returns a fresh kafka-go transport (for writers); the caller
// may set its other fields, such as MetadataTTL.
func (c Conn) Transport() *kafka.Transport {
	t := &kafka.Transport{TLS: c.TLS}
	if c.SASL != nil {
		t.SASL = c.mechanism()
	}
	return t
}

// Addr is the brokers as a kafka-go writer's address.
func (c Conn) Addr() net.Addr { return kafka.TCP(c.Brokers...) }

// Reader returns a kafka-go reader of rc with the brokers and dialer of c.
func (c Conn) Reader(rc kafka.ReaderConfig) *kafka.Reader {
	rc.Brokers, rc.Dialer = c.Brokers, c.Dialer()
	return kafka.NewReader(rc)
}

// ConsumerGroup returns a kafka-go consumer group of gc with the brokers
// and dialer of c.
func (c Conn) ConsumerGroup(gc kafka.ConsumerGroupConfig) (*kafka.ConsumerGroup, error) {
	gc.Brokers, gc.Dialer = c.Brokers, c.Dialer()
	return kafka.NewConsumerGroup(gc)
}

// KgoOptions are the franz-go client options of c: seed brokers, TLS and
// SASL.
func (c Conn) KgoOptions() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}
	if c.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(c.TLS))
	}
	if s := c.SASL; s != nil {
		var m fsasl.Mechanism
		switch s.Mechanism {
		case ScramSHA256:
			m = fscram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()
		case ScramSHA512:
			m = fscram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()
		default:
			m = fplain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts
}

// NewClient returns a franz-go client of c with opts added.
func (c Conn) NewClient(opts ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append(c.KgoOptions(), opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// Explain adds, to an error of a Kafka client, the settings that fix it:
// a refused SASL login, or a TLS handshake that failed. Other errors are
// returned as they are.
func Explain(err error) error {
	if err == nil {
		return nil
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		record    tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, kafka.SASLAuthenticationFailed) || errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("%w (the broker refused the SASL login: check kafka_sasl_username, kafka_sasl_password and kafka_sasl_mechanism)", err)
	case errors.Is(err, kafka.UnsupportedSASLMechanism) || errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fmt.Errorf("%w (set kafka_sasl_mechanism to one the broker enables)", err)
	case errors.Is(err, kafka.IllegalSASLState) || errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("%w (does the broker expect SASL? check kafka_sasl_mechanism)", err)
	case errors.As(err, &unknownCA):
		return fmt.Errorf("%w (the broker's TLS certificate is not trusted: set kafka_tls_ca_file to the CA that signed it)", err)
	case errors.As(err, &hostname):
		return fmt.Errorf("%w (the broker's TLS certificate does not name the address in brokers: use the name it was issued for)", err)
	case errors.As(err, &record):
		return fmt.Errorf("%w (the broker does not speak TLS on this port: check kafka_tls and the broker address)", err)
	}
	return err
}

// WriteError shortens a kafka-go writer error that repeats one cause per
// message, and explains it as Explain does.
func WriteError(err error) error {
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil {
				return Explain(fmt.Errorf("%d of %d messages failed, first: %w", we.Count(), len(we), e))
			}
		}
	}
	return Explain(err)
}
