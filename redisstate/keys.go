// Package redisstate keeps churnwatch's durable state in Redis: one key per
// customer (its encoded state), one timer set and one watermark record per
// internal partition, the alert index the admin API reads, and the spend
// ranking behind segments. All writes of a batch go out in one pipeline;
// every key is hash-tagged so the layout works on Redis Cluster.
package redisstate

import "strconv"

// Keys are built from a prefix (default "cw"). A customer's key carries the
// customer id as its hash tag: "cw:{<id>}:s". Per-partition keys are tagged
// by partition: "cw:{p3}:timers", "cw:{p3}:wm".
type keys struct{ prefix string }

func (k keys) customer(id string) string { return k.prefix + ":{" + id + "}:s" }
func (k keys) timers(p int) string       { return k.prefix + ":{p" + strconv.Itoa(p) + "}:timers" }
func (k keys) watermark(p int) string    { return k.prefix + ":{p" + strconv.Itoa(p) + "}:wm" }
func (k keys) clock() string             { return k.prefix + ":{clock}:wm" }
func (k keys) firing() string            { return k.prefix + ":{alerts}:firing" }
func (k keys) resolved() string          { return k.prefix + ":{alerts}:resolved" }
func (k keys) alertData() string         { return k.prefix + ":{alerts}:data" }
func (k keys) spend() string             { return k.prefix + ":{segments}:spend365" }
