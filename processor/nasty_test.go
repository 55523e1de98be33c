package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/internal/redistest"
	"github.com/churnwatch/churnwatch/state"
)

// nasty is one hostile source message. Either reason is set, and the
// message must be dead-lettered on churn-dlq with its key and value and a
// churnwatch-error containing reason, or applied names the customer whose
// state must show it, and check (optional) looks at that state.
type nasty struct {
	name    string
	topic   string
	value   string
	reason  string
	applied string
	check   func(t *testing.T, c *state.Customer)
}

// nastyIDs are customer ids that are legal per the contract (1–200 characters, no
// control characters) and that Redis keys ("cw:{p3}:c:<id>") and hash tags
// care about.
var nastyIDs = []string{"{acme}: west coast", "}{", "a:b c", "{}", "x}", " {", "{{a}}:{b}", "  ", "cw:{p0}:timers"}

// nastyAt is an instant of event time the watermark has passed once the
// sources are caught up (the wall clock is end; the allowed lateness 5
// minutes).
var nastyAt = end.Add(-time.Hour)

func nastyMessages() []nasty {
	ok := func(c string) string { return evt(nextID("n"), c, nastyAt, "value", 2) }
	pad := func(n int, head string) string { return head + strings.Repeat("x", n-len(head)) }
	ns := []nasty{
		{name: "999,000 bytes of invalid JSON", topic: "usage", value: pad(999_000, `{"id":"`), reason: "invalid JSON"},
		{name: "a 999,000-byte event, padded by an unknown field", topic: "usage", applied: "big",
			value: func() string {
				e := evt(nextID("n"), "big", nastyAt, "metric", "exports")
				return e[:len(e)-1] + `,"pad":"` + strings.Repeat("x", 999_000-len(e)-9) + `"}`
			}(),
			check: func(t *testing.T, c *state.Customer) {
				if _, ok := c.Usage["exports"]; !ok {
					t.Errorf("usage metrics %v, want exports", c.Usage)
				}
			}},
		{name: "100,000 nested arrays", topic: "usage", value: strings.Repeat("[", 100_000), reason: "JSON nested deeper than 32 levels"},
		{name: "nested objects in an unknown field", topic: "usage", value: `{"id":"x","x":` + strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000) + "}",
			reason: "JSON nested deeper than 32 levels"},
		{name: "amount 1e400", topic: "purchases", value: `{"id":"n-1e400","customer_id":"c","occurred_at":"2026-05-31T23:00:00Z","amount":1e400}`,
			reason: "field amount: number 1e400 is out of range of float64"},
		{name: "amount of 30 digits", topic: "purchases", reason: "amount 1.2345678901234568e+29 is out of range (0 to 1e+15)",
			value: `{"id":"n-30","customer_id":"c","occurred_at":"2026-05-31T23:00:00Z","amount":123456789012345678901234567890}`},
		// Ten of these used to make the customer's total spend +Inf, and its
		// loyalty-milestone alert impossible to encode: the partition stopped.
		{name: "amount 1.7e308", topic: "purchases", reason: "amount 1.7e+308 is out of range (0 to 1e+15)",
			value: `{"id":"n-max","customer_id":"c","occurred_at":"2026-05-31T23:00:00Z","amount":1.7e308}`},
		{name: "the largest amount", topic: "purchases", applied: "big-spender",
			value: `{"id":"n-1e15","customer_id":"big-spender","occurred_at":"2026-05-31T23:00:00Z","amount":1e15,"note":123456789012345678901234567890}`,
			check: func(t *testing.T, c *state.Customer) {
				if c.Purchases.Count != 1 || c.Purchases.Total != 1e15 {
					t.Errorf("purchases %d, total %g; want 1, 1e15", c.Purchases.Count, c.Purchases.Total)
				}
			}},
		{name: "score of 30 digits", topic: "feedback", reason: "score 1.2345678901234568e+29 is not an integer from 0 to 10",
			value: `{"id":"n-s","customer_id":"c","occurred_at":"2026-05-31T23:00:00Z","kind":"nps","score":123456789012345678901234567890}`},
		{name: "invalid UTF-8", topic: "usage", value: "{\"id\":\"n\xff\",\"customer_id\":\"c\",\"occurred_at\":\"2026-05-31T23:00:00Z\"}",
			reason: "message is not valid UTF-8"},
		{name: "lone surrogate", topic: "usage", value: `{"id":"n\ud800","customer_id":"c","occurred_at":"2026-05-31T23:00:00Z"}`,
			reason: "invalid JSON: invalid surrogate pair"},
		{name: "escaped control character in customer_id", topic: "usage",
			value: `{"id":"n-cc","customer_id":"c\u0007","occurred_at":"2026-05-31T23:00:00Z"}`, reason: "customer_id contains control characters"},
		{name: "raw control character in a string", topic: "usage",
			value: "{\"id\":\"n-rc\",\"customer_id\":\"c\",\"occurred_at\":\"2026-05-31T23:00:00Z\",\"note\":\"a\x01b\"}", reason: "invalid JSON"},
		{name: "control characters in an unknown field", topic: "usage", applied: "ctl",
			value: `{"id":"n-uc","customer_id":"ctl","occurred_at":"2026-05-31T23:00:00Z","note":"\u0000\u001b[31m"}`},
		{name: "occurred_at in year 9999", topic: "usage", value: `{"id":"n-9999","customer_id":"c","occurred_at":"9999-12-31T23:59:59Z"}`,
			reason: "occurred_at 9999-12-31T23:59:59Z is more than 1h0m0s after the current time 2026-06-01T00:00:00Z"},
		// The epoch is a valid RFC 3339 time and the earliest accepted: a very
		// late event, applied, which moves neither the watermark (checked
		// below) nor the customer's other times.
		{name: "occurred_at 1970-01-01", topic: "usage", applied: "epoch",
			value: `{"id":"n-1970","customer_id":"epoch","occurred_at":"1970-01-01T00:00:00Z"}`,
			check: func(t *testing.T, c *state.Customer) {
				if got := c.LastSeen[event.Usage]; !got.Equal(time.Unix(0, 0)) || got.IsZero() {
					t.Errorf("last usage %s, want 1970-01-01T00:00:00Z", got)
				}
				if !c.FirstSeen.Equal(time.Unix(0, 0)) {
					t.Errorf("first seen %s, want 1970-01-01T00:00:00Z", c.FirstSeen)
				}
			}},
		{name: "signed_up_at after year 9999 in UTC", topic: "customers", reason: "signed_up_at 9999-12-31T23:30:00-01:00 is after 9999-12-31T23:59:59Z",
			value: `{"id":"n-10000","customer_id":"c","occurred_at":"2026-05-31T23:00:00Z","signed_up_at":"9999-12-31T23:30:00-01:00"}`},
		{name: "occurred_at before 1970", topic: "usage", value: `{"id":"n-1969","customer_id":"c","occurred_at":"1969-12-31T23:59:59Z"}`,
			reason: "occurred_at 1969-12-31T23:59:59Z is before 1970-01-01T00:00:00Z"},
		{name: "occurred_at Go's zero time", topic: "usage", value: `{"id":"n-0001","customer_id":"c","occurred_at":"0001-01-01T00:00:00Z"}`,
			reason: "is before 1970-01-01T00:00:00Z"},
		{name: "occurred_at with a one-digit hour", topic: "usage", value: `{"id":"n-h","customer_id":"c","occurred_at":"2026-05-31T3:00:00Z"}`,
			reason: `occurred_at "2026-05-31T3:00:00Z" is not an RFC 3339 time`},
		{name: "empty message", topic: "usage", value: "", reason: "empty message"},
		{name: "whitespace", topic: "usage", value: " \r\n\t", reason: "invalid JSON"},
		{name: "JSON array", topic: "purchases", value: `[` + evt("n-arr", "c", nastyAt, "amount", 1) + `]`, reason: "invalid JSON: want a JSON object, got array"},
		{name: "JSON string", topic: "usage", value: `"hello"`, reason: "invalid JSON: want a JSON object, got string"},
		{name: "JSON null", topic: "usage", value: `null`, reason: "missing required field id"},
		{name: "two objects", topic: "usage", value: ok("c") + ok("c"), reason: "invalid JSON"},
		{name: "duplicate keys", topic: "usage", value: `{"id":"n-dup","customer_id":"c1","customer_id":"c2","occurred_at":"2026-05-31T23:00:00Z"}`,
			reason: `invalid JSON: duplicate object member name "customer_id"`},
		{name: "duplicate keys in an unknown field", topic: "usage", value: `{"id":"n-dup2","customer_id":"c","occurred_at":"2026-05-31T23:00:00Z","x":{"a":1,"a":2}}`,
			reason: `duplicate object member name "a" within "/x"`},
		{name: "field names in another case", topic: "usage", value: `{"id":"n-case","Customer_id":"c","occurred_at":"2026-05-31T23:00:00Z"}`,
			reason: "missing required field customer_id"},
		{name: "unknown extra fields", topic: "purchases", applied: "extra",
			value: `{"id":"n-extra","customer_id":"extra","occurred_at":"2026-05-31T23:00:00Z","amount":7.5,"coupon":{"code":"X","tags":[1,"a",null]},"AMOUNT":99,"Customer_ID":"other"}`,
			check: func(t *testing.T, c *state.Customer) {
				if c.Purchases.Count != 1 || c.Purchases.Total != 7.5 {
					t.Errorf("purchases %d, total %g; want 1, 7.5 (AMOUNT is an unknown field)", c.Purchases.Count, c.Purchases.Total)
				}
			}},
	}
	for i, id := range nastyIDs {
		ns = append(ns, nasty{name: fmt.Sprintf("customer id %q", id), topic: "customers", applied: id,
			value: evt(nextID("n"), id, nastyAt, "tier", "vip", "attributes", map[string]string{"n": strconv.Itoa(i)}),
			check: func(t *testing.T, c *state.Customer) {
				if c.ID != id || c.Profile.Tier != "vip" || c.Profile.Attributes["n"] != strconv.Itoa(i) {
					t.Errorf("state %q: tier %q attributes %v", c.ID, c.Profile.Tier, c.Profile.Attributes)
				}
			}})
	}
	return ns
}

// normal is a valid event of customer for topic.
func normal(topic, customer string) string {
	switch topic {
	case "purchases":
		return evt(nextID("a"), customer, nastyAt, "amount", 1)
	case "feedback":
		return evt(nextID("a"), customer, nastyAt, "kind", "nps", "score", 9)
	case "customers":
		return evt(nextID("a"), customer, nastyAt, "tier", "regular")
	}
	return evt(nextID("a"), customer, nastyAt, "value", 1)
}

// toPartition0 sends every message to partition 0, so the normal event
// produced after a nasty one is read after it.
var toPartition0 = kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 })

// TestNastyMessages runs hostile messages end to end: each is dead-lettered
// with its original key and value and the four headers of contract §1 and
// a specific reason, or applied; after each, a normal event of the same
// partition is applied, so none stopped processing; and the watermark ends
// where it would be without them.
func TestNastyMessages(t *testing.T) {
	e := newEnv(t, end)
	ctx := context.Background()

	// Kafka's default message.max.bytes (1 MiB) refuses 10 MB at the
	// broker: the producer is told, nothing reaches churnwatch.
	big := &kafka.Writer{Addr: kafka.TCP(e.brokers...), Balancer: toPartition0, RequiredAcks: kafka.RequireAll,
		BatchBytes: 16 << 20, Transport: &kafka.Transport{}}
	defer big.Close()
	err := big.WriteMessages(ctx, kafka.Message{Topic: "usage", Key: []byte("ten-mb"), Value: []byte(strings.Repeat("x", 10<<20))})
	var we kafka.WriteErrors
	if !errors.As(err, &we) || len(we) != 1 || !errors.Is(we[0], kafka.MessageSizeTooLarge) {
		t.Fatalf("10 MB value: %v, want the broker's MESSAGE_TOO_LARGE", err)
	}

	w := &kafka.Writer{Addr: kafka.TCP(e.brokers...), Balancer: toPartition0, RequiredAcks: kafka.RequireAll,
		BatchSize: 1, BatchBytes: 1_040_000, BatchTimeout: time.Millisecond, Transport: &kafka.Transport{}}
	defer w.Close()
	ns := nastyMessages()
	for i, n := range ns {
		after := fmt.Sprintf("after-%d", i)
		for _, m := range []kafka.Message{
			{Topic: n.topic, Key: []byte(fmt.Sprintf("nasty-%d", i)), Value: []byte(n.value)},
			{Topic: n.topic, Key: []byte(after), Value: []byte(normal(n.topic, after))},
		} {
			if err := w.WriteMessages(ctx, m); err != nil {
				t.Fatalf("%s: produce: %v", n.name, err)
			}
		}
	}
	r := e.start()
	e.waitWatermark(end.Add(-5*time.Minute), 2*time.Minute)

	// Where each message was read from, by key.
	source := map[string]kafka.Message{}
	for _, topic := range []string{"usage", "purchases", "feedback", "customers"} {
		for _, m := range e.readAll(topic) {
			source[string(m.Key)] = m
		}
	}
	dead := map[string]kafka.Message{}
	for _, m := range e.readAll("churn-dlq") {
		if _, dup := dead[string(m.Key)]; dup {
			t.Errorf("key %q dead-lettered twice", m.Key)
		}
		dead[string(m.Key)] = m
	}
	wantDead := 0
	for i, n := range ns {
		t.Run(n.name, func(t *testing.T) {
			key := fmt.Sprintf("nasty-%d", i)
			src, ok := source[key]
			if !ok {
				t.Fatalf("%s not on %s", key, n.topic)
			}
			d, isDead := dead[key]
			if n.reason != "" {
				wantDead++
				if !isDead {
					t.Fatalf("not dead-lettered, want a dead letter with %q", n.reason)
				}
				h := map[string]string{}
				for _, x := range d.Headers {
					h[x.Key] = string(x.Value)
				}
				if string(d.Value) != n.value || string(d.Key) != key {
					t.Errorf("dead letter of key %q and %d bytes, want the original key and %d bytes", d.Key, len(d.Value), len(n.value))
				}
				if !strings.Contains(h[HeaderError], n.reason) {
					t.Errorf("%s: %q, want it to contain %q", HeaderError, h[HeaderError], n.reason)
				}
				if h[HeaderTopic] != n.topic || h[HeaderPartition] != strconv.Itoa(src.Partition) || h[HeaderOffset] != strconv.FormatInt(src.Offset, 10) {
					t.Errorf("source headers %s=%q %s=%q %s=%q, want %s %d %d", HeaderTopic, h[HeaderTopic], HeaderPartition,
						h[HeaderPartition], HeaderOffset, h[HeaderOffset], n.topic, src.Partition, src.Offset)
				}
			} else {
				if isDead {
					t.Fatalf("dead-lettered: %s", nastyHeader(d, HeaderError))
				}
				c, err := e.store.Customer(ctx, n.applied)
				if err != nil || c == nil {
					t.Fatalf("state of %q: %v, %v", n.applied, c, err)
				}
				if n.check != nil {
					n.check(t, c)
				}
			}
			after := fmt.Sprintf("after-%d", i)
			if c, err := e.store.Customer(ctx, after); err != nil || c == nil || c.LastSeen[DefaultSources()[n.topic]].IsZero() {
				t.Errorf("the normal %s event after it (customer %s) was not applied: %v", n.topic, after, err)
			}
		})
	}
	if len(dead) != wantDead {
		t.Errorf("%d dead letters, want %d", len(dead), wantDead)
	}

	// The Redis key of each odd id is its documented key, one key lookup.
	for _, id := range nastyIDs {
		n, err := e.store.Partitions(ctx)
		if err != nil || n == 0 {
			t.Fatalf("partitions %d %v", n, err)
		}
		key := e.store.Prefix() + ":{p" + strconv.Itoa(state.Partition(id, n)) + "}:c:" + id
		if n, err := e.store.Client().Exists(ctx, key).Result(); err != nil || n != 1 {
			t.Errorf("state of %q not at key %q: %d, %v", id, key, n, err)
		}
	}

	// Neither the 1970 event nor the year-9999 one moved the clock: with the
	// sources caught up, the watermark is the wall clock minus the allowed
	// lateness, as without them.
	if w := e.lowestWatermark(); !w.Equal(end.Add(-5 * time.Minute)) {
		t.Errorf("watermark %s, want %s", w, end.Add(-5*time.Minute))
	}
	if c, err := e.store.Clock(ctx); err != nil || !c.Equal(end.Add(-5*time.Minute)) {
		t.Errorf("clock %s (%v), want %s", c, err, end.Add(-5*time.Minute))
	}
	select {
	case err := <-r.done:
		r.done <- err
		t.Fatalf("the processor stopped: %v", err)
	default:
	}
}

func nastyHeader(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestNastyValuesTheBrokerAccepts: a bad value as large as the broker
// accepts is dead-lettered like any other and processing goes on: 1,040,000
// bytes under Kafka's default limits (1 MiB per record batch), 10 MB once
// the operator raised max.message.bytes of the source topic (churn-dlq is
// created with 16 MiB); a value larger than the dead-letter topic takes
// (refused by the broker or by the writer's bound) is dead-lettered with its
// first 64 KiB and its original length.
func TestNastyValuesTheBrokerAccepts(t *testing.T) {
	for _, tt := range []struct {
		name             string
		size             int
		usageMax, dlqMax int // max.message.bytes set on usage and churn-dlq; 0 keeps it
	}{
		{"1,040,000 bytes at the default limit", 1_040_000, 0, 0},
		{"10 MB with a raised source limit", 10 << 20, 16 << 20, 0},
		{"2 MB on a dead-letter topic of 1 MiB", 2 << 20, 16 << 20, 1 << 20},
		{"20 MB, over the dead-letter writer's bound", 20 << 20, 32 << 20, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, end)
			ctx := context.Background()
			var alter []kafka.IncrementalAlterConfigsRequestResource
			for topic, max := range map[string]int{"usage": tt.usageMax, "churn-dlq": tt.dlqMax} {
				if max > 0 {
					alter = append(alter, kafka.IncrementalAlterConfigsRequestResource{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
						Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: "max.message.bytes", Value: strconv.Itoa(max), ConfigOperation: kafka.ConfigOperationSet}}})
				}
			}
			if len(alter) > 0 {
				res, err := (&kafka.Client{Addr: kafka.TCP(e.brokers...)}).IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: alter})
				if err == nil {
					for _, r := range res.Resources {
						err = errors.Join(err, r.Error)
					}
				}
				if err != nil {
					t.Fatalf("set max.message.bytes: %v", err)
				}
			}
			w := &kafka.Writer{Addr: kafka.TCP(e.brokers...), Balancer: toPartition0, RequiredAcks: kafka.RequireAll,
				BatchSize: 1, BatchBytes: 32 << 20, BatchTimeout: time.Millisecond, Transport: &kafka.Transport{}}
			defer w.Close()
			value := strings.Repeat("x", tt.size)
			for _, m := range []kafka.Message{
				{Topic: "usage", Key: []byte("huge"), Value: []byte(value)},
				{Topic: "usage", Key: []byte("after"), Value: []byte(evt(nextID("a"), "after", nastyAt, "value", 1))},
			} {
				if err := w.WriteMessages(ctx, m); err != nil {
					t.Fatalf("produce: %v", err)
				}
			}
			e.start()
			e.waitWatermark(end.Add(-5*time.Minute), time.Minute)
			if c, err := e.store.Customer(ctx, "after"); err != nil || c == nil {
				t.Errorf("the normal event after it was not applied: %v", err)
			}
			dlq := e.readAll("churn-dlq")
			if len(dlq) != 1 {
				t.Fatalf("%d dead letters, want 1", len(dlq))
			}
			d := dlq[0]
			if reason := nastyHeader(d, HeaderError); string(d.Key) != "huge" || !strings.Contains(reason, "exceeds the limit") && !strings.Contains(reason, "invalid JSON") {
				t.Errorf("dead letter key %q reason %q, want the original key and the reason", d.Key, reason)
			}
			if nastyHeader(d, HeaderOffset) != "0" || nastyHeader(d, HeaderTopic) != "usage" {
				t.Errorf("dead letter source %s/%s, want usage at offset 0", nastyHeader(d, HeaderTopic), nastyHeader(d, HeaderOffset))
			}
			cut := tt.dlqMax > 0 && tt.dlqMax < tt.size || tt.size > DLQMaxBytes
			switch {
			case !cut && (string(d.Value) != value || nastyHeader(d, HeaderTruncated) != ""):
				t.Errorf("dead letter of %d bytes (truncated %q), want the whole value of %d", len(d.Value), nastyHeader(d, HeaderTruncated), tt.size)
			case cut && (string(d.Value) != value[:64<<10] || nastyHeader(d, HeaderTruncated) != strconv.Itoa(tt.size)):
				t.Errorf("dead letter of %d bytes, truncated %q; want the first 64 KiB and %s=%d", len(d.Value), nastyHeader(d, HeaderTruncated), HeaderTruncated, tt.size)
			}
		})
	}
}

// TestNastyCustomerIDsOnRedisCluster applies events of customers whose ids
// hold the characters of Redis hash tags on a three-node Redis Cluster: the
// batch pipelines spread over the slots, and each state is at its
// documented key, readable with one lookup: "cw:{p<N>}:c:<id>", tagged by
// the internal partition N that owns the customer, whatever braces the id
// holds (Redis hashes the first "{…}" of a key).
func TestNastyCustomerIDsOnRedisCluster(t *testing.T) {
	rdb := redistest.StartCluster(t)
	e := newEnvOn(t, end, rdb, nil)
	var ms []msg
	for i, id := range nastyIDs {
		ms = append(ms, msg{"customers", []byte(id), evt(nextID("n"), id, nastyAt, "tier", "vip")},
			msg{"purchases", []byte(strconv.Itoa(i)), evt(nextID("n"), id, nastyAt.Add(time.Minute), "amount", float64(i+1))})
	}
	e.produce(ms...)
	e.start()
	e.waitWatermark(end.Add(-5*time.Minute), 2*time.Minute)
	ctx := context.Background()
	for i, id := range nastyIDs {
		c, err := e.store.Customer(ctx, id)
		if err != nil || c == nil || c.Profile.Tier != "vip" || c.Purchases.Total != float64(i+1) {
			t.Errorf("customer %q on the cluster: %+v, %v", id, c, err)
			continue
		}
		n, err := e.store.Partitions(ctx)
		if err != nil || n == 0 {
			t.Fatalf("partitions %d %v", n, err)
		}
		key := e.store.Prefix() + ":{p" + strconv.Itoa(state.Partition(id, n)) + "}:c:" + id
		if n, err := rdb.Exists(ctx, key).Result(); err != nil || n != 1 {
			t.Errorf("state of %q not at key %q: %d, %v", id, key, n, err)
		}
	}
}
