package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/admin"
	"github.com/churnwatch/churnwatch/internal/kafkaconn"
	"github.com/churnwatch/churnwatch/internal/tlsfiles"
)

// The settings of each connection, in the order config print shows them.
var (
	kafkaKeys = []string{"brokers", "kafka_tls", "kafka_tls_ca_file", "kafka_tls_cert_file", "kafka_tls_key_file",
		"kafka_tls_insecure_skip_verify", "kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password"}
	redisKeys = []string{"redis", "redis_password", "redis_tls_ca_file", "redis_tls_cert_file", "redis_tls_key_file",
		"redis_tls_insecure_skip_verify"}
	adminKeys = []string{"admin_token", "admin_allow_unauthenticated"}
)

// keys joins groups of setting keys.
func keys(groups ...[]string) []string { return slices.Concat(groups...) }

// checkGroups checks the settings that only make sense together: each
// connection is built once, files read, so that a command stops at start.
func (c *config) checkGroups() error {
	var errs []error
	if slices.Contains(c.keys, "kafka_sasl_mechanism") {
		if _, err := c.kafka(); err != nil {
			errs = append(errs, err)
		}
	}
	if slices.Contains(c.keys, "redis_password") {
		if _, err := c.redisConn().options(); err != nil {
			errs = append(errs, fmt.Errorf("redis: %w", err))
		}
	}
	if slices.Contains(c.keys, "admin_token") && c.str("admin_token") != "" && c.bool("admin_allow_unauthenticated") {
		errs = append(errs, fmt.Errorf("admin_allow_unauthenticated (%s) and admin_token (%s): choose one; with a token, unset admin_allow_unauthenticated",
			c.from["admin_allow_unauthenticated"], c.from["admin_token"]))
	}
	return errors.Join(errs...)
}

// tlsFiles are the settings <prefix>_ca_file, _cert_file, _key_file and
// _insecure_skip_verify.
func (c *config) tlsFiles(prefix string) tlsfiles.Files {
	return tlsfiles.Files{Prefix: prefix, CAFile: c.str(prefix + "_ca_file"), CertFile: c.str(prefix + "_cert_file"),
		KeyFile: c.str(prefix + "_key_file"), InsecureSkipVerify: c.bool(prefix + "_insecure_skip_verify")}
}

// kafka is how every Kafka client of the command connects.
func (c *config) kafka() (kafkaconn.Conn, error) {
	k := kafkaconn.Conn{Brokers: c.list("brokers")}
	if !slices.Contains(c.keys, "kafka_tls") {
		return k, nil
	}
	files := c.tlsFiles("kafka_tls")
	switch {
	case c.bool("kafka_tls"):
		tc, err := files.Config()
		if err != nil {
			return k, err
		}
		k.TLS = tc
	case files.Set():
		return k, errors.New("kafka_tls_ca_file, kafka_tls_cert_file, kafka_tls_key_file and kafka_tls_insecure_skip_verify need kafka_tls: true (--kafka-tls, CHURNWATCH_KAFKA_TLS)")
	}
	user, pass := c.str("kafka_sasl_username"), c.str("kafka_sasl_password")
	if m := c.str("kafka_sasl_mechanism"); m != "none" {
		k.SASL = &kafkaconn.SASL{Mechanism: m, Username: user, Password: pass}
	} else if user != "" || pass != "" {
		return k, fmt.Errorf("kafka_sasl_username and kafka_sasl_password need kafka_sasl_mechanism: %s", strings.Join(kafkaconn.Mechanisms, ", "))
	}
	return k, k.Validate()
}

// redisConn is the Redis URL and what the other Redis settings add to it.
type redisConn struct {
	url      string
	password string // instead of the URL's
	tls      tlsfiles.Files
}

func (c *config) redisConn() redisConn {
	r := redisConn{url: c.str("redis")}
	if slices.Contains(c.keys, "redis_password") {
		r.password, r.tls = c.str("redis_password"), c.tlsFiles("redis_tls")
	}
	return r
}

// options reads the Redis URL, redis://[:password@]host:port/db, or with
// ?addr=host:port parameters a Redis Cluster (every key churnwatch writes
// is hash-tagged for it), adds the password and TLS settings, and returns
// the client constructor. Every node of a cluster gets them.
func (r redisConn) options() (func() redis.UniversalClient, error) {
	var tc *tls.Config
	if r.tls.Set() {
		if !strings.HasPrefix(r.url, "rediss://") {
			return nil, errors.New("redis_tls_ca_file, redis_tls_cert_file, redis_tls_key_file and redis_tls_insecure_skip_verify apply to TLS: use a rediss:// URL")
		}
		var err error
		if tc, err = r.tls.Config(); err != nil {
			return nil, err
		}
	}
	// secure adds the password and the TLS files to what the URL gave,
	// keeping its server name.
	secure := func(password *string, parsed **tls.Config) {
		if r.password != "" {
			*password = r.password
		}
		if tc != nil && *parsed != nil {
			tc.ServerName = (*parsed).ServerName
			*parsed = tc
		}
	}
	if strings.Contains(r.url, "addr=") {
		o, err := redis.ParseClusterURL(r.url)
		if err != nil {
			return nil, fmt.Errorf("not a Redis Cluster URL (redis://host:port?addr=host2:port): %w", withoutURL(err))
		}
		secure(&o.Password, &o.TLSConfig)
		return func() redis.UniversalClient { return redis.NewClusterClient(o) }, nil
	}
	o, err := redis.ParseURL(r.url)
	if err != nil {
		return nil, fmt.Errorf("not a Redis URL (redis://host:port/db): %w", withoutURL(err))
	}
	secure(&o.Password, &o.TLSConfig)
	return func() redis.UniversalClient { return redis.NewClient(o) }, nil
}

// withoutURL drops the URL a parse error quotes: it may hold a password.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (c *config) openRedis() (redis.UniversalClient, error) {
	open, err := c.redisConn().options()
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	return open(), nil
}

// guard sets the admin API's token, and says in the log how its customer
// data and controls are protected.
func (c *config) guard(api *admin.API, log *slog.Logger) {
	api.Token, api.Unauthenticated = c.str("admin_token"), c.bool("admin_allow_unauthenticated")
	switch {
	case api.Unauthenticated:
		log.Warn("admin API: customer data and controls are served without a token (admin_allow_unauthenticated)")
	case api.Token == "":
		log.Warn("admin API: no admin_token set; /api/customers, /api/alerts, /api/silences and /api/webhooks answer 403 until one is (CHURNWATCH_ADMIN_TOKEN)")
	}
}
