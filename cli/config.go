package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/churnwatch/churnwatch/internal/kafkaconn"
)

// Settings come from one YAML file (--config, CHURNWATCH_CONFIG), the
// environment (CHURNWATCH_<KEY>) and flags (--<key> with '-' for '_'); a
// flag beats the environment, which beats the file, which beats the
// default.

type kind int

const (
	text kind = iota
	list
	duration
	number
	integer
	boolean
	choice
)

type setting struct {
	key     string
	kind    kind
	def     string
	help    string
	choices []string
	secret  secrecy // masked when printed or quoted in an error
	zeroOK  bool    // an integer may be 0
}

// secrecy says what of a value must never be printed or logged.
type secrecy int

const (
	public      secrecy = iota
	secretURL           // a URL: its password (user info or ?password=) is masked
	secretValue         // the whole value is masked
)

var settings = []setting{
	{key: "brokers", kind: list, def: "localhost:9092", help: "Kafka bootstrap brokers, host:port, comma-separated"},
	{key: "kafka_tls", kind: boolean, def: "false", help: "connect to the brokers over TLS"},
	{key: "kafka_tls_ca_file", kind: text, def: "", help: "PEM file of the CAs that sign the brokers' certificates (default: the system's)"},
	{key: "kafka_tls_cert_file", kind: text, def: "", help: "PEM client certificate for mutual TLS, with kafka_tls_key_file"},
	{key: "kafka_tls_key_file", kind: text, def: "", help: "PEM private key of kafka_tls_cert_file"},
	{key: "kafka_tls_insecure_skip_verify", kind: boolean, def: "false", help: "accept any broker certificate (testing only)"},
	{key: "kafka_sasl_mechanism", kind: choice, def: "none", choices: append([]string{"none"}, kafkaconn.Mechanisms...),
		help: "SASL mechanism: none, PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
	{key: "kafka_sasl_username", kind: text, def: "", help: "SASL username"},
	{key: "kafka_sasl_password", kind: text, def: "", secret: secretValue, help: "SASL password"},
	{key: "redis", kind: text, def: "redis://localhost:6379/0", secret: secretURL,
		help: "Redis URL, redis://[:password@]host:port/db (rediss:// for TLS); add ?addr=host2:port&addr=… for Redis Cluster"},
	{key: "redis_password", kind: text, def: "", secret: secretValue, help: "Redis password (AUTH), instead of one in the redis URL"},
	{key: "redis_tls_ca_file", kind: text, def: "", help: "PEM file of the CAs that sign Redis's certificate (rediss:// URLs; default: the system's)"},
	{key: "redis_tls_cert_file", kind: text, def: "", help: "PEM client certificate for mutual TLS with Redis, with redis_tls_key_file"},
	{key: "redis_tls_key_file", kind: text, def: "", help: "PEM private key of redis_tls_cert_file"},
	{key: "redis_tls_insecure_skip_verify", kind: boolean, def: "false", help: "accept any Redis certificate (testing only)"},
	{key: "http", kind: text, def: ":8080", help: "admin HTTP address (health, metrics, API)"},
	{key: "rules", kind: text, def: "builtin", help: "rules file, or builtin"},
	{key: "group", kind: text, def: "churnwatch", help: "consumer group of the state stage; the source stage uses <group>-source"},
	{key: "lateness", kind: duration, def: "5m", help: "allowed lateness subtracted from the event-time watermark"},
	{key: "create_topics", kind: boolean, def: "true", help: "create missing topics at start"},
	{key: "source_partitions", kind: integer, def: "3", help: "partitions of source and alert topics created by churnwatch"},
	{key: "internal_partitions", kind: integer, def: "12", help: "partitions of the internal topic when created: the most instances that share the work"},
	{key: "replication", kind: integer, def: "0", zeroOK: true, help: "replication factor of topics created by churnwatch; 0 takes the broker default"},
	{key: "internal_retention", kind: duration, def: "168h", help: "retention of the internal topic when created: how long a stopped processor may stay down"},
	{key: "churn_inactivity", kind: duration, def: "4320h", help: "inactivity after which a customer counts as churned in the KPIs (180 days)"},
	{key: "holdout", kind: number, def: "0", help: "share of customers (0–1) held out of notifications, by a stable hash"},
	{key: "webhooks", kind: text, def: "", help: "webhooks file; when set, `run` also runs the dispatcher"},
	{key: "webhooks_group", kind: text, def: "churnwatch-webhooks", help: "consumer group of the webhook dispatcher"},
	{key: "admin_token", kind: text, def: "", secret: secretValue,
		help: "bearer token the admin API's customer data and controls require (Authorization: Bearer …)"},
	{key: "admin_allow_unauthenticated", kind: boolean, def: "false",
		help: "serve the admin API's customer data and controls without a token (behind an authenticating proxy only)"},
	{key: "log_format", kind: choice, def: "text", choices: []string{"text", "json"}, help: "log format"},
	{key: "log_level", kind: choice, def: "info", choices: []string{"debug", "info", "warn", "error"}, help: "least severe level logged"},
}

func settingOf(key string) *setting {
	for i := range settings {
		if settings[i].key == key {
			return &settings[i]
		}
	}
	panic("no setting " + key)
}

func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }
func envName(key string) string  { return "CHURNWATCH_" + strings.ToUpper(key) }

// config is the effective configuration of one command.
type config struct {
	keys []string
	val  map[string]string
	from map[string]string // default, file FILE, env NAME, flag --NAME
}

// flagValue is a string flag that knows whether it is boolean.
type flagValue struct {
	s    *string
	bool bool
}

func (v flagValue) String() string {
	if v.s == nil {
		return ""
	}
	return *v.s
}
func (v flagValue) Set(s string) error { *v.s = s; return nil }
func (v flagValue) IsBoolFlag() bool   { return v.bool }

// parseConfig registers the flags of keys (and --config) on fs, parses
// args and merges defaults, the file, the environment and the flags. Every
// wrong value is reported with its key, where it came from and the fix.
func parseConfig(fs *flag.FlagSet, args []string, keys ...string) (*config, error) {
	flags := map[string]*string{}
	for _, k := range keys {
		s := settingOf(k)
		v := new(string)
		flags[k] = v
		fs.Var(flagValue{v, s.kind == boolean}, flagName(k), fmt.Sprintf("%s (env %s, default %q)", s.help, envName(k), s.def))
	}
	file := fs.String("config", os.Getenv("CHURNWATCH_CONFIG"), "YAML configuration file (env CHURNWATCH_CONFIG); flags and env override it")
	if err := fs.Parse(args); err != nil {
		return nil, errUsage
	}
	c := &config{keys: keys, val: map[string]string{}, from: map[string]string{}}
	for _, k := range keys {
		c.val[k], c.from[k] = settingOf(k).def, "default"
	}
	var errs []error
	if *file != "" {
		if err := c.readFile(*file); err != nil {
			errs = append(errs, err)
		}
	}
	for _, k := range keys {
		if v, ok := os.LookupEnv(envName(k)); ok {
			c.val[k], c.from[k] = v, "env "+envName(k)
		}
	}
	fs.Visit(func(f *flag.Flag) {
		for _, k := range keys {
			if f.Name == flagName(k) {
				c.val[k], c.from[k] = *flags[k], "flag --"+f.Name
			}
		}
	})
	for _, k := range keys {
		if err := c.check(k); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, c.checkGroups())
	}
	return c, errors.Join(errs...)
}

// readFile merges a YAML file of key: value pairs.
func (c *config) readFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var m map[string]yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	var errs []error
	for k, n := range m {
		if !slices.ContainsFunc(settings, func(s setting) bool { return s.key == k }) {
			errs = append(errs, fmt.Errorf("%s:%d: unknown key %q (keys: %s)", path, n.Line, k, strings.Join(allKeys(), ", ")))
			continue
		}
		if !slices.Contains(c.keys, k) {
			continue // a setting of another command
		}
		v := n.Value
		if n.Kind == yaml.SequenceNode {
			parts := make([]string, len(n.Content))
			for i, e := range n.Content {
				parts[i] = e.Value
			}
			v = strings.Join(parts, ",")
		} else if n.Kind != yaml.ScalarNode {
			errs = append(errs, fmt.Errorf("%s:%d: %s: want a single value or a list", path, n.Line, k))
			continue
		}
		c.val[k], c.from[k] = v, fmt.Sprintf("file %s:%d", path, n.Line)
	}
	return errors.Join(errs...)
}

func allKeys() []string {
	ks := make([]string, len(settings))
	for i, s := range settings {
		ks[i] = s.key
	}
	return ks
}

// check validates one value; the error names the key, its source and the fix.
func (c *config) check(k string) error {
	s, v := settingOf(k), c.val[k]
	bad := func(want string) error {
		return fmt.Errorf("%s %q (%s): %s", k, masked(k, v), c.from[k], want)
	}
	switch s.kind {
	case list:
		if len(splitList(v)) == 0 {
			return bad("give at least one host:port, e.g. kafka-1:9092,kafka-2:9092")
		}
	case duration:
		if d, err := time.ParseDuration(v); err != nil || d < 0 {
			return bad("want a non-negative duration such as 5m, 90s or 4320h")
		}
	case number:
		if f, err := strconv.ParseFloat(v, 64); err != nil || f < 0 || f > 1 {
			return bad("want a share between 0 and 1, such as 0.1")
		}
	case integer:
		low := 1
		if s.zeroOK {
			low = 0
		}
		if n, err := strconv.Atoi(v); err != nil || n < low || n > 10000 {
			return bad(fmt.Sprintf("want a whole number from %d to 10000", low))
		}
	case boolean:
		if _, err := strconv.ParseBool(v); err != nil {
			return bad("want true or false")
		}
	case choice:
		if !slices.Contains(s.choices, v) {
			return bad("want one of " + strings.Join(s.choices, ", "))
		}
	}
	switch {
	case k == "redis":
		if _, err := (redisConn{url: v}).options(); err != nil {
			return bad(err.Error())
		}
	case k == "admin_token" && v != "" && len(v) < 16:
		return bad("want at least 16 characters; generate one with: openssl rand -hex 32")
	}
	return nil
}

func (c *config) str(k string) string    { return c.val[k] }
func (c *config) list(k string) []string { return splitList(c.val[k]) }
func (c *config) dur(k string) time.Duration {
	d, _ := time.ParseDuration(c.val[k])
	return d
}
func (c *config) float(k string) float64 {
	f, _ := strconv.ParseFloat(c.val[k], 64)
	return f
}
func (c *config) int(k string) int {
	n, _ := strconv.Atoi(c.val[k])
	return n
}
func (c *config) bool(k string) bool {
	b, _ := strconv.ParseBool(c.val[k])
	return b
}

// logger builds the logger the configuration asks for.
func (c *config) logger(w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.val["log_level"])) //nolint:errcheck // checked in check
	opts := &slog.HandlerOptions{Level: level}
	if c.val["log_format"] == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// masked returns a value fit to print: passwords in URLs and secret
// settings are replaced.
func masked(k, v string) string {
	switch settingOf(k).secret {
	case public:
		return v
	case secretValue:
		if v == "" {
			return ""
		}
		return "****"
	}
	if v == "" {
		return v
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" {
		return "****"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "****")
	}
	q := u.Query()
	for name := range q {
		if strings.Contains(strings.ToLower(name), "password") {
			q.Set(name, "****")
		}
	}
	u.RawQuery = q.Encode()
	return strings.Replace(u.String(), "%2A%2A%2A%2A", "****", -1)
}

// print writes the effective configuration, one key per line.
func (c *config) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tFROM")
	for _, k := range c.keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k, masked(k, c.val[k]), c.from[k])
	}
	return tw.Flush()
}

// configCmd is `churnwatch config print`.
func configCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "print" {
		fmt.Fprintln(stderr, "usage: churnwatch config print [--config FILE] [flags]   the effective configuration, secrets masked")
		return errUsage
	}
	fs := flag.NewFlagSet("config print", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c, err := parseConfig(fs, args[1:], allKeys()...)
	if err != nil {
		return err
	}
	return c.print(stdout)
}
