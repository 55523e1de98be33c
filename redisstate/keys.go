// Package redisstate keeps churnwatch's durable state in Redis. Everything
// one internal partition's batch writes lives under that partition's hash
// tag ("cw:{p3}:…") and goes out as one MULTI/EXEC transaction, so on Redis
// Cluster a batch reaches one node in one atomic unit: the states of the
// partition's customers, its timers (bucketed by the hour they fall due),
// its watermark record and clock, and its share of the aggregates: the
// KPI counters and the spend histogram behind segments. Nothing else is
// kept per customer. The alert index the admin API reads is tagged
// {alerts}; its values are absolute, so a batch replayed after a crash
// rewrites the same entries.
package redisstate

import "strconv"

// Layout is the version of the key layout; Store.Init records it.
const Layout = "2"

// Keys are built from a prefix (default "cw"):
//
//	cw:{meta}                 hash: layout version, internal partitions
//	cw:{p3}:c:<id>            a customer's encoded state
//	cw:{p3}:ti                timer index: bucket hour → earliest due (ms)
//	cw:{p3}:t:<hour>          timer bucket: customer id → due (ms into the hour)
//	cw:{p3}:wm, cw:{p3}:clock watermark record, event-time clock (ms)
//	cw:{p3}:kpi               KPI counters (see Counters)
//	cw:{p3}:spend             spend histogram (see SpendBucket)
//	cw:{alerts}:firing|resolved|data  the alert index (alerts.Alert.AppendBinary by id)
type keys struct{ prefix string }

func (k keys) tag(p int) string                  { return k.prefix + ":{p" + strconv.Itoa(p) + "}:" }
func (k keys) customer(p int, id string) string  { return k.tag(p) + "c:" + id }
func (k keys) timerIndex(p int) string           { return k.tag(p) + "ti" }
func (k keys) timerBucket(p int, h int64) string { return k.tag(p) + "t:" + strconv.FormatInt(h, 10) }
func (k keys) watermark(p int) string            { return k.tag(p) + "wm" }
func (k keys) clock(p int) string                { return k.tag(p) + "clock" }
func (k keys) kpi(p int) string                  { return k.tag(p) + "kpi" }
func (k keys) spend(p int) string                { return k.tag(p) + "spend" }
func (k keys) meta() string                      { return k.prefix + ":{meta}" }
func (k keys) firing() string                    { return k.prefix + ":{alerts}:firing" }
func (k keys) resolved() string                  { return k.prefix + ":{alerts}:resolved" }
func (k keys) alertData() string                 { return k.prefix + ":{alerts}:data" }

// legacySpend is a key every earlier layout with a customer had.
func (k keys) legacySpend() string { return k.prefix + ":{segments}:spend365" }
