// Package topics administers churnwatch's Kafka topics with franz-go's kadm:
// it creates the source, internal, alert and dead-letter topics when they are
// missing, reads partition counts and end offsets, and reports consumer lag.
// Consuming and producing is left to the processor (kafka-go).
package topics

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/churnwatch/churnwatch/internal/kafkaconn"
)

// Spec describes one topic churnwatch needs.
type Spec struct {
	Name        string
	Partitions  int32
	Replication int16 // -1: the broker default
	Configs     map[string]*string
}

// Admin wraps a kadm client.
type Admin struct {
	cl  *kgo.Client
	adm *kadm.Client
}

// NewAdmin connects an admin client to brokers in plaintext.
func NewAdmin(brokers []string) (*Admin, error) {
	return Open(kafkaconn.Conn{Brokers: brokers})
}

// Open connects an admin client as conn says (brokers, TLS, SASL). Errors
// of its methods name the settings that fix a refused login or an
// untrusted certificate.
func Open(conn kafkaconn.Conn) (*Admin, error) {
	cl, err := conn.NewClient()
	if err != nil {
		return nil, fmt.Errorf("kafka admin client: %w", err)
	}
	return &Admin{cl: cl, adm: kadm.NewClient(cl)}, nil
}

// Ping checks that a broker answers.
func (a *Admin) Ping(ctx context.Context) error { return kafkaconn.Explain(a.cl.Ping(ctx)) }

// Close closes the client.
func (a *Admin) Close() { a.cl.Close() }

// Ensure creates every missing topic of specs and returns, for each spec,
// "created" or "exists (N partitions)".
func (a *Admin) Ensure(ctx context.Context, specs []Spec) (_ []string, err error) {
	defer func() { err = kafkaconn.Explain(err) }()
	out := make([]string, len(specs))
	for i, s := range specs {
		res, err := a.adm.CreateTopic(ctx, s.Partitions, s.Replication, s.Configs, s.Name)
		switch {
		case err == nil && res.Err == nil:
			out[i] = fmt.Sprintf("%s: created with %d partitions", s.Name, s.Partitions)
		case errors.Is(err, kerr.TopicAlreadyExists) || errors.Is(res.Err, kerr.TopicAlreadyExists):
			n, perr := a.Partitions(ctx, s.Name)
			if perr != nil {
				return out, perr
			}
			out[i] = fmt.Sprintf("%s: exists with %d partitions", s.Name, n[s.Name])
			if s.Partitions > 0 && n[s.Name] < s.Partitions {
				out[i] += fmt.Sprintf("; fewer than the %d wanted (kafka-topics --alter --partitions %d)", s.Partitions, s.Partitions)
			}
			diffs, cerr := a.configDiffs(ctx, s)
			if cerr != nil {
				return out, cerr
			}
			for _, d := range diffs {
				out[i] += "; " + d
			}
		case err != nil:
			return out, fmt.Errorf("create topic %s: %w", s.Name, err)
		default:
			return out, fmt.Errorf("create topic %s: %w", s.Name, res.Err)
		}
	}
	return out, nil
}

// configDiffs compares an existing topic's configuration with the spec
// and says how to fix each difference.
func (a *Admin) configDiffs(ctx context.Context, s Spec) ([]string, error) {
	if len(s.Configs) == 0 {
		return nil, nil
	}
	rcs, err := a.adm.DescribeTopicConfigs(ctx, s.Name)
	if err != nil {
		return nil, fmt.Errorf("describe topic %s: %w", s.Name, err)
	}
	have := map[string]string{}
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if c.Value != nil {
				have[c.Key] = *c.Value
			}
		}
	}
	var out []string
	for _, k := range sortedKeys(s.Configs) {
		if want := *s.Configs[k]; have[k] != want {
			out = append(out, fmt.Sprintf("%s is %q, want %q (kafka-configs --alter --entity-type topics --entity-name %s --add-config %s=%s)",
				k, have[k], want, s.Name, k, want))
		}
	}
	return out, nil
}

func sortedKeys(m map[string]*string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Partitions returns the partition count of each existing topic of names.
func (a *Admin) Partitions(ctx context.Context, names ...string) (map[string]int32, error) {
	return describe(a, ctx, names, func(d kadm.TopicDetail) int32 { return int32(len(d.Partitions)) })
}

// IDs returns the topic id of each existing topic of names: all zeros when
// the broker has none (before Kafka 2.8). A topic deleted and created again
// under its name gets a new id.
func (a *Admin) IDs(ctx context.Context, names ...string) (map[string][16]byte, error) {
	return describe(a, ctx, names, func(d kadm.TopicDetail) [16]byte { return d.ID })
}

// describe lists topics and returns what of maps out of each that exists.
func describe[V any](a *Admin, ctx context.Context, names []string, of func(kadm.TopicDetail) V) (_ map[string]V, err error) {
	defer func() { err = kafkaconn.Explain(err) }()
	md, err := a.adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("list topics %s: %w", strings.Join(names, ","), err)
	}
	out := make(map[string]V, len(md))
	for _, d := range md {
		if d.Err != nil {
			if errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
				continue
			}
			return nil, fmt.Errorf("topic %s: %w", d.Topic, d.Err)
		}
		out[d.Topic] = of(d)
	}
	return out, nil
}

// EndOffsets returns the end offset (the offset the next record will get)
// of every partition of topics.
func (a *Admin) EndOffsets(ctx context.Context, topics ...string) (map[string]map[int32]int64, error) {
	return offsets(a.adm.ListEndOffsets(ctx, topics...))
}

// StartOffsets returns the first offset still in the log of every partition.
func (a *Admin) StartOffsets(ctx context.Context, topics ...string) (map[string]map[int32]int64, error) {
	return offsets(a.adm.ListStartOffsets(ctx, topics...))
}

func offsets(lo kadm.ListedOffsets, err error) (map[string]map[int32]int64, error) {
	if err != nil {
		return nil, kafkaconn.Explain(fmt.Errorf("list offsets: %w", err))
	}
	out := make(map[string]map[int32]int64)
	var first error
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			if first == nil {
				first = fmt.Errorf("offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
			}
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = make(map[int32]int64)
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out, first
}

// Lag is the consumer lag of one group on one partition.
type Lag struct {
	Group     string
	Topic     string
	Partition int32
	Committed int64 // -1 when nothing is committed
	End       int64
	Lag       int64
}

// Lags returns the lag of groups per partition, sorted.
func (a *Admin) Lags(ctx context.Context, groups ...string) ([]Lag, error) {
	dl, err := a.adm.Lag(ctx, groups...)
	if err != nil {
		return nil, kafkaconn.Explain(fmt.Errorf("consumer lag: %w", err))
	}
	var out []Lag
	for _, g := range dl {
		if errors.Is(g.Error(), kerr.GroupIDNotFound) {
			continue // never joined yet (newer brokers say so instead of describing an empty group)
		}
		if g.Error() != nil {
			return nil, fmt.Errorf("lag of group %s: %w", g.Group, g.Error())
		}
		for _, l := range g.Lag.Sorted() {
			out = append(out, Lag{Group: g.Group, Topic: l.Topic, Partition: l.Partition,
				Committed: l.Commit.At, End: l.End.Offset, Lag: l.Lag})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}

// Committed reports whether group has committed, on every partition of
// ends with messages, at least the end offset given.
func (a *Admin) Committed(ctx context.Context, group string, ends map[string]map[int32]int64) (bool, error) {
	lags, err := a.Lags(ctx, group)
	if err != nil {
		return false, err
	}
	committed := map[string]map[int32]int64{}
	for _, l := range lags {
		if committed[l.Topic] == nil {
			committed[l.Topic] = map[int32]int64{}
		}
		committed[l.Topic][l.Partition] = l.Committed
	}
	for t, ps := range ends {
		for p, end := range ps {
			if end > 0 && committed[t][p] < end {
				return false, nil
			}
		}
	}
	return true, nil
}
