package crashtest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/engine"
	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/internal/bin"
	"github.com/churnwatch/churnwatch/processor"
	"github.com/churnwatch/churnwatch/redisstate"
	"github.com/churnwatch/churnwatch/rules"
	"github.com/churnwatch/churnwatch/state"
	"github.com/churnwatch/churnwatch/synth"
)

// input is the backfill as the source stage sees it: the valid events and
// the messages it must dead-letter.
type input struct {
	events  []event.Event
	invalid map[string]int // topic + "\x00" + value → copies sent
}

// first is the earliest occurred_at of the valid events.
func (in input) first() time.Time {
	var t time.Time
	for _, e := range in.events {
		if t.IsZero() || e.OccurredAt.Before(t) {
			t = e.OccurredAt
		}
	}
	return t
}

func decodeInput(msgs []synth.Message, now time.Time) input {
	src := processor.DefaultSources()
	in := input{invalid: map[string]int{}}
	for _, m := range msgs {
		e, err := event.Decode(m.Value, src[m.Topic], now)
		if err != nil {
			in.invalid[m.Topic+"\x00"+string(m.Value)]++
			continue
		}
		in.events = append(in.events, e)
	}
	return in
}

// partitionOf is the internal partition that owns a customer: the
// processor keys the internal topic by customer id with kafka-go's hash
// balancer.
func partitionOf(customer string, partitions int) int {
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	return (&kafka.Hash{}).Balance(kafka.Message{Key: []byte(customer)}, ps...)
}

// stateKey matches every customer's state key ("cw:{p3}:c:<id>").
const stateKey = "cw:{p*}:c:*"

// idOfKey is the customer id of a state key.
func idOfKey(key string) string {
	_, id, _ := strings.Cut(key, "}:c:")
	return id
}

// expected is the offline engine's result: each internal partition's
// customers replayed up to that partition's final watermark.
type expected struct {
	alerts    []alerts.Alert
	states    map[string]*state.Customer
	watermark map[string]time.Time // by customer: the event time its state stands at
}

func replay(events []event.Event, wm []time.Time) (*expected, error) {
	byPartition := make([][]event.Event, len(wm))
	for _, e := range events {
		p := partitionOf(e.CustomerID, len(wm))
		byPartition[p] = append(byPartition[p], e)
	}
	x := &expected{states: map[string]*state.Customer{}, watermark: map[string]time.Time{}}
	for p, evs := range byPartition {
		as, states, err := engine.New(rules.Builtin(), nil).Replay(evs, wm[p])
		if err != nil {
			return nil, fmt.Errorf("replay of partition %d: %w", p, err)
		}
		x.alerts = append(x.alerts, as...)
		for id, c := range states {
			x.states[id] = c
			x.watermark[id] = wm[p]
		}
	}
	return x, nil
}

// watermarks returns the watermark of every internal partition.
func watermarks(ctx context.Context, store *redisstate.Store, partitions int) ([]time.Time, error) {
	out := make([]time.Time, partitions)
	for p := range out {
		b, err := store.Watermark(ctx, p)
		if err != nil {
			return nil, err
		}
		if b == nil {
			return nil, fmt.Errorf("partition %d has no watermark record", p)
		}
		if out[p], err = processor.WatermarkOf(b); err != nil {
			return nil, fmt.Errorf("partition %d: %w", p, err)
		}
	}
	return out, nil
}

// canonical is the encoding of a state without what differs by
// construction between the processor and the offline engine: the internal
// offset it was last read at, the segment (ranked over the whole
// population, which the offline engine does not do) and the order in
// which event ids were received.
func canonical(c *state.Customer) []byte {
	cp := *c
	cp.Offset, cp.Segment = 0, ""
	cp.Seen = slices.Clone(c.Seen)
	slices.SortFunc(cp.Seen, func(a, b state.Seen) int {
		if a.Hash != b.Hash {
			return cmp.Compare(a.Hash, b.Hash)
		}
		return cmp.Compare(a.Day, b.Day)
	})
	return cp.AppendBinary(nil)
}

// readable shows a canonical state as JSON.
func readable(id string, b []byte) string {
	c, err := state.Unmarshal(id, b)
	if err != nil {
		return err.Error()
	}
	j, err := json.Marshal(c)
	if err != nil {
		return err.Error()
	}
	return string(j)
}

// compareStates compares every customer in Redis with the offline
// engine's, each at the watermark of its partition, field by field in
// their encoding (which keeps times to the microsecond, as Redis does),
// and returns the differences. A state whose due timers were left unfired
// is a difference too.
func compareStates(ctx context.Context, store *redisstate.Store, x *expected, ids []string) ([]string, error) {
	eng := engine.New(rules.Builtin(), nil)
	var diffs []string
	for _, id := range ids {
		got, err := store.Customer(ctx, id)
		if err != nil {
			return nil, err
		}
		if got == nil {
			diffs = append(diffs, fmt.Sprintf("customer %s: no state in Redis", id))
			continue
		}
		var unfired []string
		if err := eng.Advance(got, x.watermark[id], func(a alerts.Alert) {
			unfired = append(unfired, fmt.Sprintf("%s %s at %s", a.Rule, a.Status, a.Time.Format(time.RFC3339)))
		}); err != nil {
			return nil, fmt.Errorf("customer %s: %w", id, err)
		}
		if len(unfired) > 0 {
			diffs = append(diffs, fmt.Sprintf("customer %s: due timers were left unfired at the watermark %s: %s",
				id, x.watermark[id].Format(time.RFC3339Nano), strings.Join(unfired, ", ")))
		}
		if g, w := canonical(got), canonical(x.states[id]); !bytes.Equal(g, w) {
			diffs = append(diffs, fmt.Sprintf("customer %s: state differs\n   got %s\n  want %s", id, readable(id, g), readable(id, w)))
		}
	}
	return diffs, nil
}

// extraCustomers lists the customers with a state key in Redis that the
// offline engine does not know.
func extraCustomers(ctx context.Context, store *redisstate.Store, x *expected) ([]string, error) {
	var out []string
	it := store.Client().Scan(ctx, 0, stateKey, 1000).Iterator()
	for it.Next(ctx) {
		id := idOfKey(it.Val())
		if x.states[id] == nil {
			out = append(out, fmt.Sprintf("customer %s: in Redis, but no valid event names it", id))
		}
	}
	return out, it.Err()
}

// checkPartitions reports customers whose timers sit in another internal
// partition than partitionOf says, which would make the per-partition
// watermarks of the comparison wrong.
func checkPartitions(ctx context.Context, store *redisstate.Store, partitions int) error {
	never := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	for p := range partitions {
		ids, err := store.Due(ctx, p, never, 1<<30)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if q := partitionOf(id, partitions); q != p {
				return fmt.Errorf("customer %s has its timer in partition %d, but hashes to %d", id, p, q)
			}
		}
	}
	return nil
}

// topicAlerts is the alert topic by CloudEvent id: the event time of each,
// and how many messages carried it.
type topicAlerts struct {
	time     map[string]time.Time
	copies   map[string]int
	messages int
}

func parseAlerts(msgs []kafka.Message) (*topicAlerts, error) {
	out := &topicAlerts{time: map[string]time.Time{}, copies: map[string]int{}, messages: len(msgs)}
	for _, m := range msgs {
		ce, err := alerts.ParseCloudEvent(m.Value)
		if err != nil || ce.Data == nil {
			return nil, fmt.Errorf("alert at %d/%d is not a CloudEvent: %v: %s", m.Partition, m.Offset, err, m.Value)
		}
		if string(m.Key) != ce.Subject {
			return nil, fmt.Errorf("alert %s: key %q, subject %q", ce.ID, m.Key, ce.Subject)
		}
		if prev, ok := out.time[ce.ID]; ok && !prev.Equal(ce.Data.Time) {
			return nil, fmt.Errorf("alert %s delivered twice with different times %s and %s", ce.ID, prev, ce.Data.Time)
		}
		out.time[ce.ID] = ce.Data.Time
		out.copies[ce.ID]++
	}
	return out, nil
}

// compareAlerts returns the alerts missing from the topic and those on it
// that the offline engine did not raise (a wrong time counts as both).
func compareAlerts(got *topicAlerts, want []alerts.Alert) (missing, extra []string) {
	wantTime := map[string]time.Time{}
	for _, a := range want {
		wantTime[a.EventID()] = a.Time
	}
	for _, id := range bin.SortedKeys(wantTime) {
		if at, ok := got.time[id]; !ok || !at.Equal(wantTime[id]) {
			missing = append(missing, id+" at "+wantTime[id].Format(time.RFC3339))
		}
	}
	for _, id := range bin.SortedKeys(got.time) {
		if at, ok := wantTime[id]; !ok || !at.Equal(got.time[id]) {
			extra = append(extra, id+" at "+got.time[id].Format(time.RFC3339))
		}
	}
	return missing, extra
}

// compareDeadLetters checks that each invalid message was dead-lettered, at
// least once, with the headers of contract §1, and nothing else was.
func compareDeadLetters(dlq []kafka.Message, invalid map[string]int) (missing, extra []string, err error) {
	got := map[string]bool{}
	for _, m := range dlq {
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		for _, k := range []string{processor.HeaderError, processor.HeaderTopic, processor.HeaderPartition, processor.HeaderOffset} {
			if h[k] == "" {
				return nil, nil, fmt.Errorf("dead letter at offset %d has no %s header: %s", m.Offset, k, m.Value)
			}
		}
		got[h[processor.HeaderTopic]+"\x00"+string(m.Value)] = true
	}
	show := func(k string) string { topic, v, _ := strings.Cut(k, "\x00"); return topic + ": " + v }
	for _, k := range bin.SortedKeys(invalid) {
		if !got[k] {
			missing = append(missing, show(k))
		}
	}
	for _, k := range bin.SortedKeys(got) {
		if invalid[k] == 0 {
			extra = append(extra, show(k))
		}
	}
	return missing, extra, nil
}
