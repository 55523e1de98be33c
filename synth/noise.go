package synth

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"
)

// noise returns what real upstream systems send besides the good events of
// a history (given in parts): about one invalid message in cfg.BadEvery, a
// few exact re-sends of good messages, and tier changes that arrive after a
// newer one.
func noise(cfg Config, start, end time.Time, parts [][]Message, changes []tierChange) []Message {
	var offsets []int // of each part in the whole history
	n := 0
	for _, p := range parts {
		offsets = append(offsets, n)
		n += len(p)
	}
	if n == 0 {
		return nil
	}
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), streamNoise))
	pick := func() Message {
		k := r.IntN(n)
		p := sort.SearchInts(offsets, k+1) - 1
		return parts[p][k-offsets[p]]
	}
	var msgs []Message
	later := func(t time.Time, lo, hi time.Duration) time.Time {
		if t = t.Add(between(r, lo, hi)).Truncate(time.Second); t.After(end) {
			return end
		}
		return t
	}
	for range max(1, (n+cfg.BadEvery/2)/cfg.BadEvery) {
		src := pick()
		msgs = append(msgs, Message{Topic: src.Topic, Key: clone(src.Key), Value: corrupt(r, src.Topic, src.Value, end), At: later(src.At, 0, 2*time.Minute)})
	}
	for range max(2, n/(4*cfg.BadEvery)) {
		src := pick()
		msgs = append(msgs, Message{Topic: src.Topic, Key: clone(src.Key), Value: clone(src.Value), At: later(src.At, time.Second, time.Hour)})
	}

	// An older tier change delivered a few hours after the upgrade that
	// followed it: the upgrade must win, being the later by occurred_at.
	w := &writer{r: r, start: start, end: end, layout: time.RFC3339, prec: time.Second}
	for k, j := range r.Perm(len(changes))[:min(len(changes), max(2, cfg.Customers/100))] {
		c := changes[j]
		older := c.at.Add(-between(r, day, 5*day))
		if !older.After(c.first) {
			older = c.first.Add(c.at.Sub(c.first) / 2)
		}
		w.cust = c.customerID
		w.idPrefix, w.seq = fmt.Appendf(w.idPrefix[:0], "evt-%s-late%d-", c.customerID, k), 0
		if w.profile(older, stepBelow(c.to), time.Time{}, nil) {
			w.out[len(w.out)-1].At = later(c.at, 10*time.Minute, 6*time.Hour)
		}
	}
	return append(msgs, w.out...)
}

// stepBelow is the tier under t on the ladder regular < silver < gold < vip.
func stepBelow(t string) string {
	switch t {
	case "vip":
		return "gold"
	case "gold":
		return "silver"
	}
	return "regular"
}

// corrupt returns a broken variant of the good message value of topic, as
// upstream bugs produce them. Event validation rejects every one of them,
// evaluated at any time before end plus a day.
func corrupt(r *rand.Rand, topic string, value []byte, end time.Time) []byte {
	var m map[string]any
	if err := json.Unmarshal(value, &m); err != nil {
		return clone(value)
	}
	at, _ := m["occurred_at"].(string)
	generic := []func(){
		func() { delete(m, "id") },
		func() { delete(m, "customer_id") },
		func() { delete(m, "occurred_at") },
		func() { m["customer_id"] = "" },
		func() { m["customer_id"] = 1000 + r.IntN(9000) },
		func() { // a local time without zone
			if t, err := time.Parse(time.RFC3339, at); err == nil {
				m["occurred_at"] = t.Format("2006-01-02 15:04:05")
			}
		},
		func() { m["occurred_at"] = end.Add(between(r, 2*day, 400*day)).Format(time.RFC3339) }, // a clock years off
		func() { m["type"] = []string{"refund", "pageview", "Purchase"}[r.IntN(3)] },
	}
	var specific []func()
	switch topic {
	case TopicPurchases:
		specific = []func(){
			func() { m["amount"] = -toFloat(m["amount"]) - 1 },
			func() { m["amount"] = strconv.FormatFloat(toFloat(m["amount"]), 'f', 2, 64) },
			func() { delete(m, "amount") },
			func() { m["currency"] = []string{"euro", "US$", "gbp"}[r.IntN(3)] },
		}
	case TopicTickets:
		specific = []func(){
			func() { m["status"] = []string{"pending", "in_progress", "escalated", "Open"}[r.IntN(4)] },
			func() { delete(m, "status") },
			func() { delete(m, "ticket_id") },
			func() { m["priority"] = []string{"critical", "P1", "medium"}[r.IntN(3)] },
			func() { m["csat"] = []float64{0, 6, 4.5}[r.IntN(3)] },
		}
	case TopicUsage:
		specific = []func(){
			func() { m["value"] = -1 - float64(r.IntN(5)) },
			func() { m["value"] = strconv.Itoa(1 + r.IntN(9)) },
			func() { m["metric"] = "" },
		}
	case TopicCustomers:
		specific = []func(){
			func() { m["signed_up_at"] = "03/01/2026" },
			func() { m["attributes"] = map[string]any{"seats": 12, "plan": "team"} },
			func() { m["tier"] = 3 },
		}
	case TopicFeedback:
		specific = []func(){
			func() {
				m["score"] = map[any]float64{"nps": 11, "csat": 6, "ces": 8}[m["kind"]]
				if m["score"] == 0.0 {
					m["score"] = -1
				}
			},
			func() { m["score"] = 7.5 },
			func() { delete(m, "score") },
			func() { m["kind"] = []string{"stars", "NPS", "thumbs"}[r.IntN(3)] },
		}
	}
	switch k := r.IntN(len(generic) + len(specific) + 2); {
	case k < len(generic):
		generic[k]()
	case k < len(generic)+len(specific):
		specific[k-len(generic)]()
	case k == len(generic)+len(specific):
		// cut short by a producer that died mid-write
		return clone(value[:1+r.IntN(len(value)-2)])
	default:
		// a CSV line sent to the JSON topic
		return fmt.Appendf(nil, "%v,%v,%s", m["customer_id"], at, typeOf(topic))
	}
	b, err := json.Marshal(m)
	if err != nil {
		return clone(value[:len(value)/2])
	}
	return b
}

func toFloat(v any) float64 {
	f, _ := v.(float64)
	return f
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
