package topics

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/churnwatch/churnwatch/internal/kafkaconn"
	"github.com/churnwatch/churnwatch/internal/securetest"
	"github.com/churnwatch/churnwatch/internal/tlsfiles"
)

func TestEnsureAndLag(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	adm, err := NewAdmin(c.ListenAddrs())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx := context.Background()
	specs := []Spec{{Name: "a", Partitions: 3, Replication: -1}, {Name: "b", Partitions: 1, Replication: -1}}
	lines, err := adm.Ensure(ctx, specs)
	if err != nil || !strings.Contains(lines[0], "created with 3 partitions") {
		t.Fatalf("first ensure: %v %v", lines, err)
	}
	lines, err = adm.Ensure(ctx, specs)
	if err != nil || !strings.Contains(lines[0], "exists with 3 partitions") {
		t.Fatalf("second ensure: %v %v", lines, err)
	}
	compact := "compact"
	if _, err := adm.Ensure(ctx, []Spec{{Name: "profiles", Partitions: 2, Replication: -1}}); err != nil {
		t.Fatal(err)
	}
	lines, err = adm.Ensure(ctx, []Spec{{Name: "profiles", Partitions: 3, Replication: -1, Configs: map[string]*string{"cleanup.policy": &compact}}})
	if err != nil || !strings.Contains(lines[0], `cleanup.policy is "delete", want "compact"`) || !strings.Contains(lines[0], "fewer than the 3 wanted") {
		t.Fatalf("an existing topic without compaction and with too few partitions: %v %v", lines, err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("a"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ends, err := adm.EndOffsets(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, e := range ends["a"] {
		total += e
	}
	if total != 5 {
		t.Fatalf("end offsets %v, want 5 records in all", ends)
	}
	if n, err := adm.Partitions(ctx, "a", "b", "missing"); err != nil || n["a"] != 3 || n["b"] != 1 {
		t.Fatalf("partitions %v %v", n, err)
	}
	ids, err := adm.IDs(ctx, "a", "b", "missing")
	if err != nil || len(ids) != 2 || ids["a"] == ([16]byte{}) || ids["a"] == ids["b"] {
		t.Fatalf("topic ids %v %v: want two distinct ids", ids, err)
	}
}

// TestOpenSecured: the admin client connects with TLS and SASL, and a wrong
// password fails Ensure with the settings to fix.
func TestOpenSecured(t *testing.T) {
	certs := securetest.NewCerts(t)
	b := securetest.Broker{TLS: certs.ServerTLS(false), Mechanism: kafkaconn.Plain, User: "ops", Password: "open-sesame"}
	conn := kafkaconn.Conn{Brokers: b.Start(t), SASL: &kafkaconn.SASL{Mechanism: kafkaconn.Plain, Username: "ops", Password: "open-sesame"}}
	tc, err := tlsfiles.Files{Prefix: "kafka_tls", CAFile: certs.CAFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	conn.TLS = tc
	ctx := context.Background()
	adm, err := Open(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if lines, err := adm.Ensure(ctx, []Spec{{Name: "a", Partitions: 2, Replication: -1}}); err != nil || !strings.Contains(lines[0], "created with 2 partitions") {
		t.Fatalf("ensure over TLS and SASL: %v %v", lines, err)
	}
	conn.SASL.Password = "guess"
	bad, err := Open(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := bad.Ensure(ctx, []Spec{{Name: "b", Partitions: 1, Replication: -1}}); err == nil || !strings.Contains(err.Error(), "check kafka_sasl_username, kafka_sasl_password") {
		t.Errorf("ensure with a wrong password: %v", err)
	}
	if err := bad.Ping(ctx); err == nil || !strings.Contains(err.Error(), "kafka_sasl_password") {
		t.Errorf("ping with a wrong password: %v", err)
	}
}

// TestLagsOfNewGroup: a group that never joined has no lag to show, not
// an error (newer brokers answer GROUP_ID_NOT_FOUND for it).
func TestLagsOfNewGroup(t *testing.T) {
	adm, err := NewAdmin(securetest.Broker{Topics: []string{"a"}}.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if lags, err := adm.Lags(context.Background(), "never-joined"); err != nil || len(lags) != 0 {
		t.Errorf("lags of a new group: %v, %v; want none and no error", lags, err)
	}
}
