package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/internal/kafkaconn"
	"github.com/churnwatch/churnwatch/internal/securetest"
	"github.com/churnwatch/churnwatch/internal/syncbuf"
	"github.com/churnwatch/churnwatch/synth"
	"github.com/churnwatch/churnwatch/topics"
)

const (
	saslPassword  = "kafka-sasl-pa55word"
	redisPassword = "redis-pa55word-in-setting"
	adminToken    = "admin-t0ken-0123456789abcdef"
)

// TestConfigSecretsMasked: config print and the errors that quote a value
// never show the Kafka SASL password, the Redis password (set alone or in
// a cluster URL) or the admin token.
func TestConfigSecretsMasked(t *testing.T) {
	t.Setenv("CHURNWATCH_KAFKA_SASL_PASSWORD", saslPassword)
	t.Setenv("CHURNWATCH_REDIS_PASSWORD", redisPassword)
	t.Setenv("CHURNWATCH_ADMIN_TOKEN", adminToken)
	file := writeFile(t, "churnwatch.yaml", "redis: redis://app:url-pa55word@redis:6379/0?addr=redis2:6379\n")
	code, out, errs := run(t, "config", "print", "--config", file, "--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", "churnwatch")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"kafka_sasl_password  ****", "redis_password  ****", "admin_token  ****", "redis://app:****@redis:6379/0?"} {
		if !strings.Contains(strings.Join(strings.Fields(out), "  "), want) {
			t.Errorf("config print lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{saslPassword, redisPassword, adminToken, "url-pa55word"} {
		if strings.Contains(out+errs, secret) {
			t.Errorf("config print shows %q:\n%s", secret, out)
		}
	}

	// Values quoted by errors are masked too.
	code, _, errs = run(t, "config", "print", "--admin-token", "short-s3cret", "--redis", "redis://:bad%zzpa55@redis:6379/0")
	if code != 1 || !strings.Contains(errs, `admin_token "****" (flag --admin-token): want at least 16 characters`) ||
		!strings.Contains(errs, `redis "****" (flag --redis): not a Redis URL`) {
		t.Errorf("exit %d: %s", code, errs)
	}
	for _, secret := range []string{"short-s3cret", "pa55"} {
		if strings.Contains(errs, secret) {
			t.Errorf("an error shows %q: %s", secret, errs)
		}
	}
}

// TestSecuritySettingErrors: settings that only work together are checked
// at start, each error naming the setting and the fix.
func TestSecuritySettingErrors(t *testing.T) {
	certs := securetest.NewCerts(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--kafka-tls-ca-file", certs.CAFile}, "need kafka_tls: true (--kafka-tls, CHURNWATCH_KAFKA_TLS)"},
		{[]string{"--kafka-tls", "--kafka-tls-ca-file", "/nonexistent/ca.pem"}, "kafka_tls_ca_file: open /nonexistent/ca.pem"},
		{[]string{"--kafka-tls", "--kafka-tls-ca-file", certs.ServerKeyFile}, "no PEM certificate in it"},
		{[]string{"--kafka-tls", "--kafka-tls-cert-file", certs.ClientCertFile}, "kafka_tls_cert_file and kafka_tls_key_file: give both"},
		{[]string{"--kafka-sasl-mechanism", "SCRAM-SHA-256"}, "kafka_sasl_mechanism SCRAM-SHA-256: set kafka_sasl_username and kafka_sasl_password too"},
		{[]string{"--kafka-sasl-username", "u", "--kafka-sasl-password", "p"}, "kafka_sasl_username and kafka_sasl_password need kafka_sasl_mechanism"},
		{[]string{"--kafka-sasl-mechanism", "GSSAPI"}, `kafka_sasl_mechanism "GSSAPI" (flag --kafka-sasl-mechanism): want one of none, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		{[]string{"--redis-tls-ca-file", certs.CAFile}, "redis: redis_tls_ca_file, redis_tls_cert_file, redis_tls_key_file and redis_tls_insecure_skip_verify apply to TLS: use a rediss:// URL"},
		{[]string{"--redis", "rediss://r:6379", "--redis-tls-key-file", certs.ClientKeyFile}, "redis_tls_cert_file and redis_tls_key_file: give both"},
		{[]string{"--admin-token", adminToken, "--admin-allow-unauthenticated"}, "admin_allow_unauthenticated (flag --admin-allow-unauthenticated) and admin_token (flag --admin-token): choose one"},
	} {
		code, _, errs := run(t, append([]string{"config", "print"}, tc.args...)...)
		if code != 1 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d %q, want %q", tc.args, code, errs, tc.want)
		}
	}
	if code, _, errs := run(t, "config", "print", "--kafka-tls", "--kafka-tls-ca-file", certs.CAFile, "--kafka-tls-cert-file", certs.ClientCertFile,
		"--kafka-tls-key-file", certs.ClientKeyFile, "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u", "--kafka-sasl-password", "p",
		"--redis", "rediss://r:6379/0", "--redis-tls-ca-file", certs.CAFile); code != 0 {
		t.Errorf("a complete TLS and SASL configuration: exit %d %s", code, errs)
	}
}

// redisServer runs redis-server with args on a free loopback port (its
// TLS port with tls) until the test ends, and returns its address.
func redisServer(t *testing.T, tls bool, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CHURNWATCH_FORBID_MINIREDIS") != "" {
			t.Fatal("redis-server not found: the Redis AUTH and TLS tests need it")
		}
		t.Skip("redis-server not found: no Redis to test AUTH and TLS against")
	}
	port := strconv.Itoa(loadgenFreePort(t))
	dir := t.TempDir()
	listen := []string{"--port", port}
	if tls {
		listen = []string{"--port", "0", "--tls-port", port}
	}
	base := []string{"--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--logfile", filepath.Join(dir, "redis.log")}
	cmd := exec.Command(path, slices.Concat(listen, base, args)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()          //nolint:errcheck // killed at the end
	t.Cleanup(func() { cmd.Process.Kill(); <-exited }) //nolint:errcheck // gone is fine
	addr := net.JoinHostPort("127.0.0.1", port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return addr
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server %v exited:\n%s", args, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not listen within 10s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settingsOf is the configuration of keys from args and the environment.
func settingsOf(t *testing.T, args []string, keys ...string) *config {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c, err := parseConfig(fs, args, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// redisOf builds the Redis client of the Redis settings in args.
func redisOf(t *testing.T, args ...string) redis.UniversalClient {
	t.Helper()
	rdb, err := settingsOf(t, args, redisKeys...).openRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func ping(rdb redis.UniversalClient) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return rdb.Ping(ctx).Err()
}

// TestRedisPassword: a redis-server with requirepass accepts the
// redis_password setting (alone, or with the URL's user), and refuses a
// client without it or with a wrong one.
func TestRedisPassword(t *testing.T) {
	addr := redisServer(t, false, "--requirepass", redisPassword)
	if err := ping(redisOf(t, "--redis", "redis://"+addr+"/0", "--redis-password", redisPassword)); err != nil {
		t.Errorf("with redis_password: %v", err)
	}
	if err := ping(redisOf(t, "--redis", "redis://default@"+addr+"/0", "--redis-password", redisPassword)); err != nil {
		t.Errorf("with the URL's user and redis_password: %v", err)
	}
	if err := ping(redisOf(t, "--redis", "redis://"+addr+"/0")); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("without a password: %v, want NOAUTH", err)
	}
	if err := ping(redisOf(t, "--redis", "redis://:"+redisPassword+"@"+addr+"/0", "--redis-password", "wrong")); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("redis_password overrides the URL's: %v, want WRONGPASS", err)
	}
}

// TestRedisTLS: with a rediss:// URL, the CA file and a client
// certificate, churnwatch talks to a redis-server that only speaks TLS and
// requires client certificates and a password; without the CA or the
// client certificate it cannot.
func TestRedisTLS(t *testing.T) {
	certs := securetest.NewCerts(t)
	addr := redisServer(t, true, "--tls-cert-file", certs.ServerCertFile, "--tls-key-file", certs.ServerKeyFile,
		"--tls-ca-cert-file", certs.CAFile, "--tls-auth-clients", "yes", "--requirepass", redisPassword)
	url := "rediss://" + addr + "/0"
	full := []string{"--redis", url, "--redis-password", redisPassword, "--redis-tls-ca-file", certs.CAFile,
		"--redis-tls-cert-file", certs.ClientCertFile, "--redis-tls-key-file", certs.ClientKeyFile}
	if err := ping(redisOf(t, full...)); err != nil {
		t.Errorf("over mutual TLS: %v", err)
	}
	if err := ping(redisOf(t, "--redis", url, "--redis-password", redisPassword, "--redis-tls-cert-file", certs.ClientCertFile,
		"--redis-tls-key-file", certs.ClientKeyFile)); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("without the CA: %v, want an untrusted certificate", err)
	}
	if err := ping(redisOf(t, "--redis", url, "--redis-password", redisPassword, "--redis-tls-ca-file", certs.CAFile)); err == nil {
		t.Error("without a client certificate: no error")
	}
}

// TestRedisClusterPassword: every node of a Redis Cluster gets
// redis_password.
func TestRedisClusterPassword(t *testing.T) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not found: no Redis Cluster to test against")
	}
	var addrs []string
	for range 3 {
		addrs = append(addrs, redisServer(t, false, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(t.TempDir(), "nodes.conf"),
			"--requirepass", redisPassword, "--masterauth", redisPassword))
	}
	args := append(append([]string{"-a", redisPassword, "--no-auth-warning", "--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	url := "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
	rdb, ok := redisOf(t, "--redis", url, "--redis-password", redisPassword).(*redis.ClusterClient)
	if !ok {
		t.Fatalf("%s: not a cluster client", url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Every node answers only with the password.
	for {
		err := rdb.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = fmt.Errorf("node %s: cluster not ready", c.Options().Addr)
			}
			return err
		})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the cluster did not answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := range 30 { // keys on every node
		key := fmt.Sprintf("{k%d}", i)
		if err := rdb.Set(ctx, key, i, 0).Err(); err != nil {
			t.Fatalf("set %s: %v", key, err)
		}
	}
	if err := ping(redisOf(t, "--redis", url)); err == nil {
		t.Error("a cluster client without the password: no error")
	}
}

// TestSecuredCommands: run, topics and loadgen reach a broker that
// requires TLS and SCRAM, and a Redis that requires a password, from the
// settings alone; the admin API needs the token; and nothing they print or
// log, at debug level, shows a secret.
func TestSecuredCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and Redis")
	}
	certs := securetest.NewCerts(t)
	b := securetest.Broker{TLS: certs.ServerTLS(false), Mechanism: "SCRAM-SHA-256", User: "churnwatch", Password: saslPassword}
	brokers := b.Start(t)
	redisAddr := redisServer(t, false, "--requirepass", redisPassword)
	webhookSecret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))
	hooks := writeFile(t, "webhooks.yaml", "endpoints:\n  - name: crm\n    url: https://crm.example/hooks\n    secret: ${CRM_SECRET}\n    headers:\n      Authorization: Bearer ${CRM_TOKEN}\n")
	t.Setenv("CRM_SECRET", webhookSecret)
	t.Setenv("CRM_TOKEN", "crm-api-t0ken")
	t.Setenv("CHURNWATCH_BROKERS", strings.Join(brokers, ","))
	t.Setenv("CHURNWATCH_KAFKA_TLS", "true")
	t.Setenv("CHURNWATCH_KAFKA_TLS_CA_FILE", certs.CAFile)
	t.Setenv("CHURNWATCH_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
	t.Setenv("CHURNWATCH_KAFKA_SASL_USERNAME", "churnwatch")
	t.Setenv("CHURNWATCH_KAFKA_SASL_PASSWORD", saslPassword)
	t.Setenv("CHURNWATCH_REDIS", "redis://"+redisAddr+"/0")
	t.Setenv("CHURNWATCH_REDIS_PASSWORD", redisPassword)
	t.Setenv("CHURNWATCH_ADMIN_TOKEN", adminToken)
	var out, logs syncbuf.Buffer

	code := Main(context.Background(), []string{"topics", "--internal-partitions", "2"}, &out, &logs)
	if code != 0 || !strings.Contains(out.String(), "churnwatch-events: created with 2 partitions") {
		t.Fatalf("topics: exit %d\n%s%s", code, out.String(), logs.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code := Main(ctx, []string{"loadgen", "--rate", "200", "--customers", "20", "--duration", "300ms"}, &out, &logs); code != 0 {
		t.Fatalf("loadgen: exit %d\n%s%s", code, out.String(), logs.String())
	}

	httpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(loadgenFreePort(t)))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- Main(runCtx, []string{"run", "--http", httpAddr, "--webhooks", hooks, "--log-level", "debug", "--internal-partitions", "2"}, &out, &logs)
	}()
	get := func(path, auth string) int {
		req, _ := http.NewRequest("GET", "http://"+httpAddr+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for get("/readyz", "") != http.StatusOK {
		select {
		case code := <-done:
			t.Fatalf("run stopped: exit %d\n%s", code, logs.String())
		case <-ctx.Done():
			t.Fatalf("run did not become ready:\n%s", logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if code := get("/api/alerts", ""); code != http.StatusUnauthorized {
		t.Errorf("alerts without the token: %d, want 401", code)
	}
	if code := get("/api/alerts", "Bearer "+adminToken); code != http.StatusOK {
		t.Errorf("alerts with the token: %d, want 200", code)
	}
	if code := get("/api/kpis", ""); code != http.StatusOK && code != http.StatusInternalServerError {
		t.Errorf("kpis without a token: %d, want it open", code)
	}
	adm, err := topics.Open(mustKafka(t))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if ends, err := adm.EndOffsets(ctx, synth.Topics()...); err != nil || len(ends) == 0 {
		t.Errorf("loadgen wrote nothing: %v %v", ends, err)
	}
	for consumed := false; !consumed; {
		lags, err := adm.Lags(ctx, "churnwatch-source")
		for _, l := range lags {
			consumed = consumed || l.Committed > 0
		}
		if ctx.Err() != nil {
			t.Fatalf("run committed no source offset: %v %v\n%s", lags, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if code := <-done; code != 0 {
		t.Errorf("run: exit %d\n%s", code, logs.String())
	}

	text := out.String() + logs.String()
	if !strings.Contains(text, "churnwatch running") || !strings.Contains(text, "SASL SCRAM-SHA-256 as churnwatch") {
		t.Errorf("the log lacks the start line with the connection:\n%s", text)
	}
	for _, secret := range []string{saslPassword, redisPassword, adminToken, strings.TrimPrefix(webhookSecret, "whsec_"), "crm-api-t0ken"} {
		if strings.Contains(text, secret) {
			t.Errorf("output or logs show the secret %q", secret)
		}
	}
}

// mustKafka is the Kafka connection of the environment's settings.
func mustKafka(t *testing.T) kafkaconn.Conn {
	t.Helper()
	k, err := settingsOf(t, nil, kafkaKeys...).kafka()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
