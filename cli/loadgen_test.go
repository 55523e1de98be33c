package cli

import (
	"context"
	"encoding/json"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/churnwatch/churnwatch/internal/syncbuf"
	"github.com/churnwatch/churnwatch/synth"
	"github.com/churnwatch/churnwatch/topics"
)

func TestLoadgenFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		env     map[string]string
		want    []string
		notWant string
	}{
		{args: []string{"--rate", "0"}, want: []string{"--rate 0"}},
		{args: []string{"--rate", "-5"}, want: []string{"--rate -5"}},
		{args: []string{"--customers", "0"}, want: []string{"--customers 0"}},
		{args: []string{"--customers", "-1", "--rate", "0"}, want: []string{"--customers -1", "--rate 0"}},
		{env: map[string]string{"CHURNWATCH_RATE": "fast", "CHURNWATCH_CUSTOMERS": "0"}, want: []string{`--rate: CHURNWATCH_RATE="fast"`, "--customers 0"}},
		// a flag on the command line overrides a bad env value
		{args: []string{"--rate", "10", "--customers", "0"}, env: map[string]string{"CHURNWATCH_RATE": "fast"}, want: []string{"--customers 0"}, notWant: "--rate"},
		{args: []string{"--duration", "-1s", "--history-days", "-2", "--customers", "0"}, want: []string{"--duration -1s", "--history-days -2"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, errs := run(t, append([]string{"loadgen", "--brokers", "127.0.0.1:1"}, tc.args...)...)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr %q", code, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q lacks %q", errs, w)
				}
			}
			if tc.notWant != "" && strings.Contains(errs, tc.notWant) {
				t.Errorf("stderr %q mentions %q", errs, tc.notWant)
			}
		})
	}
	if code, _, _ := run(t, "loadgen", "extra"); code != 2 {
		t.Errorf("an extra argument: exit %d, want 2", code)
	}
}

// TestLoadgen runs loadgen against a Kafka-protocol broker for 1.5 s at 500
// events/s and reads the source topics back.
func TestLoadgen(t *testing.T) {
	brokers := startBroker(t)

	defer func(d time.Duration) { loadgenProgress = d }(loadgenProgress)
	loadgenProgress = 400 * time.Millisecond

	const rate, duration = 500, 1500 * time.Millisecond
	var stdout, stderr syncbuf.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	began := time.Now().UTC()
	code := Main(ctx, []string{"loadgen", "--brokers", strings.Join(brokers, ","), "--rate", strconv.Itoa(rate),
		"--customers", "300", "--seed", "7", "--duration", duration.String()}, &stdout, &stderr)
	ended := time.Now().UTC()
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	t.Log(out)
	if !regexp.MustCompile(`(?m)^loadgen: \d+ events written, [\d.]+ events/s over the last 400ms$`).MatchString(out) {
		t.Errorf("no progress line in %q", out)
	}
	m := regexp.MustCompile(`(?m)^loadgen: stopped: (\d+) live events written in `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no final line in %q", out)
	}
	reported, _ := strconv.Atoi(m[1])

	adm, err := topics.NewAdmin(brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := adm.EndOffsets(ctx, synth.Topics()...)
	if err != nil {
		t.Fatal(err)
	}
	total, perTopic := 0, map[string]int{}
	for _, topic := range synth.Topics() {
		if len(ends[topic]) == 0 {
			t.Errorf("topic %s was not created", topic)
		}
		for p, end := range ends[topic] {
			for _, msg := range readPartition(t, ctx, brokers, topic, int(p), end) {
				total++
				perTopic[topic]++
				var e struct {
					ID         string `json:"id"`
					CustomerID string `json:"customer_id"`
					OccurredAt string `json:"occurred_at"`
				}
				if err := json.Unmarshal(msg.Value, &e); err != nil {
					t.Fatalf("%s/%d@%d: not JSON: %v: %s", topic, p, msg.Offset, err, msg.Value)
				}
				at, err := time.Parse(time.RFC3339Nano, e.OccurredAt)
				if e.ID == "" || !strings.HasPrefix(e.CustomerID, "cust-") || err != nil {
					t.Fatalf("%s/%d@%d: id, customer_id or occurred_at missing or wrong: %s", topic, p, msg.Offset, msg.Value)
				}
				if at.Before(began.Add(-time.Second)) || at.After(ended.Add(time.Second)) {
					t.Errorf("%s/%d@%d: occurred_at %s outside the run %s – %s", topic, p, msg.Offset, at, began, ended)
				}
				if string(msg.Key) != e.CustomerID {
					t.Errorf("%s/%d@%d: key %q, want the customer id %q", topic, p, msg.Offset, msg.Key, e.CustomerID)
				}
			}
		}
	}
	t.Logf("%d events: %v", total, perTopic)
	if total != reported {
		t.Errorf("%d events on the topics, loadgen reported %d", total, reported)
	}
	want := rate * duration.Seconds()
	if float64(total) < 0.5*want || float64(total) > 1.3*want {
		t.Errorf("%d events in %s at %d/s, want about %.0f", total, duration, rate, want)
	}
	if len(perTopic) < 2 {
		t.Errorf("events on %d topics only: %v", len(perTopic), perTopic)
	}
}

// TestLoadgenHistoryAndStop writes a week of history, then stops live
// traffic by cancelling the context.
func TestLoadgenHistoryAndStop(t *testing.T) {
	brokers := startBroker(t)

	var stdout, stderr syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"loadgen", "--brokers", brokers[0], "--rate", "200", "--customers", "50", "--history-days", "7"}, &stdout, &stderr)
	}()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(stdout.String(), "sending live events"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no live traffic after 30s\nstdout %s\nstderr %s", stdout.String(), stderr.String())
		}
	}
	time.Sleep(500 * time.Millisecond)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout.String(), stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("loadgen did not stop within 10s of the cancel")
	}
	out := stdout.String()
	t.Log(out)
	h := regexp.MustCompile(`history of 50 customers over 7 days: (\d+) events written`).FindStringSubmatch(out)
	l := regexp.MustCompile(`stopped: (\d+) live events written`).FindStringSubmatch(out)
	if h == nil || l == nil {
		t.Fatalf("history or final line missing: %q", out)
	}
	hist, _ := strconv.Atoi(h[1])
	liveN, _ := strconv.Atoi(l[1])
	if hist == 0 || liveN == 0 {
		t.Errorf("%d history events, %d live events", hist, liveN)
	}

	adm, err := topics.NewAdmin(brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := adm.EndOffsets(context.Background(), synth.Topics()...)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, parts := range ends {
		for _, end := range parts {
			total += int(end)
		}
	}
	if total != hist+liveN {
		t.Errorf("%d messages on the topics, want %d history + %d live", total, hist, liveN)
	}
}

// readPartition reads offsets [0, end) of one partition with kafka-go.
func readPartition(t *testing.T, ctx context.Context, brokers []string, topic string, partition int, end int64) []kafka.Message {
	t.Helper()
	if end == 0 {
		return nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: partition, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var out []kafka.Message
	for int64(len(out)) < end {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s/%d after %d of %d messages: %v", topic, partition, len(out), end, err)
		}
		out = append(out, m)
	}
	return out
}

func loadgenFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startBroker starts a Kafka-protocol broker for the test (skipped with
// -short) and returns its addresses.
func startBroker(t *testing.T) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a broker")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(loadgenFreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	return cluster.ListenAddrs()
}
