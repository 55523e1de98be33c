// Package synth generates a synthetic but believable customer population as
// JSON messages in the input format of contract §1: loyal buyers, VIPs who
// lapse, usage that fades, ticket storms, detractors and stalled signups,
// each of which really trips its rule in event time. `churnwatch demo` and
// the benchmarks use it; it does no I/O.
package synth

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// Default source topics.
const (
	TopicPurchases = "purchases"
	TopicTickets   = "support-tickets"
	TopicUsage     = "usage"
	TopicCustomers = "customers"
	TopicFeedback  = "feedback"
)

// Topics lists the source topics.
func Topics() []string {
	return []string{TopicPurchases, TopicTickets, TopicUsage, TopicCustomers, TopicFeedback}
}

// Message is one Kafka message for a source topic.
type Message struct {
	Topic string
	Key   []byte    // usually the customer id; sometimes empty, nil or another id
	Value []byte    // JSON
	At    time.Time // when it is sent: its occurred_at, or later for late arrivals
}

// Config of a population.
type Config struct {
	Customers  int
	Seed       int64
	Start, End time.Time // history window
	// BadEvery > 0 makes about one message in BadEvery invalid, and adds
	// re-sent duplicates and late, out-of-order profile updates.
	BadEvery int
	// OtherKeys is the share of messages keyed by something other than the
	// customer id (empty, null, an order or ticket id).
	OtherKeys float64
}

// Archetype of a customer.
type Archetype string

// The archetypes and their share of the population.
const (
	Regular       Archetype = "regular"        // 30 %
	Loyal         Archetype = "loyal"          // 20 %
	VIPLapsing    Archetype = "vip-lapsing"    // 10 %
	FadingUsage   Archetype = "fading-usage"   // 10 %
	TicketStorm   Archetype = "ticket-storm"   // 10 %
	Detractor     Archetype = "detractor"      // 10 %
	StalledSignup Archetype = "stalled-signup" // 10 %
)

var mix = []struct {
	upTo int
	a    Archetype
}{{30, Regular}, {50, Loyal}, {60, VIPLapsing}, {70, FadingUsage}, {80, TicketStorm}, {90, Detractor}, {100, StalledSignup}}

// ArchetypeOf returns the archetype of customer i.
func ArchetypeOf(cfg Config, i int) Archetype {
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(i)*2+1))
	n := r.IntN(100)
	for _, m := range mix {
		if n < m.upTo {
			return m.a
		}
	}
	return Regular
}

// CustomerID names customer i.
func CustomerID(i int) string { return fmt.Sprintf("cust-%06d", i) }

const day = 24 * time.Hour

// gen builds one customer's messages.
type gen struct {
	cfg Config
	r   *rand.Rand
	id  string
	n   int
	out []Message
	pfx string // event id prefix
}

func (g *gen) emit(topic string, at time.Time, fields map[string]any) {
	if at.After(g.cfg.End) || at.Before(g.cfg.Start) {
		return
	}
	g.n++
	if g.pfx == "" {
		g.pfx = "evt"
	}
	fields["id"] = fmt.Sprintf("%s-%s-%d", g.pfx, g.id, g.n)
	fields["customer_id"] = g.id
	fields["occurred_at"] = at.UTC().Format(time.RFC3339Nano)
	if g.r.IntN(4) == 0 {
		fields["type"] = map[string]string{TopicPurchases: "purchase", TopicTickets: "support_ticket",
			TopicUsage: "usage", TopicCustomers: "customer", TopicFeedback: "feedback"}[topic]
	}
	v, _ := json.Marshal(fields)
	key := []byte(g.id)
	if g.r.Float64() < g.cfg.OtherKeys {
		switch g.r.IntN(3) {
		case 0:
			key = nil
		case 1:
			key = []byte{}
		default:
			key = []byte(fmt.Sprintf("upstream-%d", g.r.IntN(1_000_000)))
		}
	}
	g.out = append(g.out, Message{Topic: topic, Key: key, Value: v, At: at})
}

func (g *gen) purchase(at time.Time, scale float64) {
	cur := []string{"EUR", "EUR", "USD", "USD", "USD", "GBP"}[g.r.IntN(6)]
	amount := float64(int((20+g.r.ExpFloat64()*60*scale)*100)) / 100
	g.emit(TopicPurchases, at, map[string]any{"amount": amount, "currency": cur, "order_id": fmt.Sprintf("ord-%s-%d", g.id[5:], g.n)})
}

func (g *gen) usage(from, to time.Time, perDay float64) {
	for d := from.Truncate(day).Add(day); d.Before(to); d = d.Add(day) {
		v := float64(int(perDay*(0.75+0.5*g.r.Float64()) + 0.5))
		if v > 0 {
			g.emit(TopicUsage, d.Add(time.Duration(8+g.r.IntN(12))*time.Hour), map[string]any{"value": v})
		}
	}
}

func (g *gen) ticket(at time.Time, unhappy bool) {
	tid := fmt.Sprintf("tk-%s-%d", g.id[5:], g.n)
	prio := []string{"low", "normal", "normal", "high", "urgent"}[g.r.IntN(5)]
	g.emit(TopicTickets, at, map[string]any{"ticket_id": tid, "status": "opened", "priority": prio})
	csat := 4 + g.r.IntN(2)
	if unhappy {
		csat = 1 + g.r.IntN(3)
	}
	g.emit(TopicTickets, at.Add(time.Duration(2+g.r.IntN(9*24))*time.Hour), map[string]any{"ticket_id": tid, "status": "solved", "csat": csat})
}

func (g *gen) buyEvery(from, to time.Time, every time.Duration, scale float64) time.Time {
	last := time.Time{}
	for at := from.Add(time.Duration(g.r.Int64N(int64(every)))); at.Before(to); at = at.Add(every/2 + time.Duration(g.r.Int64N(int64(every)))) {
		g.purchase(at, scale)
		last = at
	}
	return last
}

// customer generates customer i's history.
func customer(cfg Config, i int) []Message {
	g := &gen{cfg: cfg, r: rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(i)*2)), id: CustomerID(i)}
	span := cfg.End.Sub(cfg.Start)
	a := ArchetypeOf(cfg, i)
	start := cfg.Start.Add(time.Duration(g.r.Int64N(int64(span)/2 + 1)))
	tier := "regular"
	if a == VIPLapsing || (a == Loyal && g.r.IntN(3) == 0) {
		tier = "vip"
		start = cfg.Start.Add(time.Duration(g.r.Int64N(int64(span)/8 + 1)))
	}
	if a == StalledSignup {
		start = cfg.Start.Add(time.Duration(g.r.Int64N(int64(max(span-20*day, day)))))
	}
	plans := []string{"starter", "team", "business", "enterprise"}
	countries := []string{"DE", "FR", "GB", "US", "NL", "ES"}
	g.emit(TopicCustomers, start, map[string]any{"tier": tier, "signed_up_at": start.UTC().Format(time.RFC3339),
		"attributes": map[string]string{"plan": plans[g.r.IntN(4)], "country": countries[g.r.IntN(6)], "account_manager": fmt.Sprintf("am-%02d", g.r.IntN(20))}})
	end := cfg.End
	switch a {
	case Regular:
		g.buyEvery(start, end, 45*day, 1)
		g.usage(start, end, 2)
		if g.r.IntN(3) == 0 {
			g.ticket(start.Add(time.Duration(g.r.Int64N(int64(end.Sub(start))+1))), false)
		}
	case Loyal:
		g.buyEvery(start, end, 10*day, 1.5)
		g.usage(start, end, 3)
	case VIPLapsing:
		stop := end.Add(-time.Duration(200+g.r.IntN(60)) * day)
		g.buyEvery(start, stop, 18*day, 4)
		g.usage(start, stop.Add(30*day), 3)
	case FadingUsage:
		fade := start.Add(60*day + time.Duration(g.r.Int64N(int64(max(end.Sub(start)-70*day, day)))))
		g.buyEvery(start, end, 40*day, 1)
		g.usage(start, fade, 6)
		g.usage(fade, end, 0.5)
	case TicketStorm:
		g.buyEvery(start, end, 35*day, 1)
		g.usage(start, end, 2)
		storm := start.Add(time.Duration(g.r.Int64N(int64(end.Sub(start)) + 1)))
		for k := range 3 + g.r.IntN(4) {
			g.ticket(storm.Add(time.Duration(k)*day+time.Duration(g.r.IntN(20))*time.Hour), true)
		}
	case Detractor:
		g.buyEvery(start, end, 30*day, 1)
		g.usage(start, end, 2)
		at := start.Add(time.Duration(g.r.Int64N(int64(end.Sub(start)) + 1)))
		g.emit(TopicFeedback, at, map[string]any{"kind": "nps", "score": g.r.IntN(7)})
		if g.r.IntN(10) < 3 {
			g.emit(TopicFeedback, at.Add(time.Duration(20+g.r.IntN(60))*day), map[string]any{"kind": "nps", "score": 9 + g.r.IntN(2)})
		}
	case StalledSignup:
		if g.r.IntN(2) == 0 {
			g.emit(TopicCustomers, start.Add(2*day), map[string]any{"attributes": map[string]string{"plan": "trial"}})
		}
	}
	if a != StalledSignup && g.r.IntN(4) == 0 {
		g.emit(TopicFeedback, start.Add(time.Duration(g.r.Int64N(int64(end.Sub(start))+1))), map[string]any{"kind": "csat", "score": 3 + g.r.IntN(3)})
	}
	return g.out
}

// Generate returns the whole history, sorted by At.
func Generate(cfg Config) []Message {
	var out []Message
	for i := range cfg.Customers {
		out = append(out, customer(cfg, i)...)
	}
	if cfg.BadEvery > 0 {
		out = addNoise(cfg, out)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// addNoise adds what real upstream systems send: invalid messages, exact
// re-sends and profile updates that arrive after newer ones.
func addNoise(cfg Config, msgs []Message) []Message {
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), 0xbad))
	n := len(msgs)
	for k := 0; k < n/cfg.BadEvery; k++ {
		m := msgs[r.IntN(n)]
		at := m.At.Add(time.Minute)
		var v string
		switch k % 5 {
		case 0:
			v = `{"id": "broken-` + fmt.Sprint(k) + `", "customer_id": ` // truncated JSON
		case 1:
			v = fmt.Sprintf(`{"id":"bad-%d","customer_id":"cust-x","occurred_at":"%s"}`, k, at.Format(time.RFC3339)) // no amount
		case 2:
			v = fmt.Sprintf(`{"id":"bad-%d","customer_id":"cust-x","occurred_at":"%s","amount":-5}`, k, at.Format(time.RFC3339))
		case 3:
			v = fmt.Sprintf(`{"id":"bad-%d","customer_id":"cust-x","occurred_at":"%s","amount":5}`, k, cfg.End.Add(30*day).Format(time.RFC3339))
		case 4:
			v = fmt.Sprintf(`{"id":"bad-%d","occurred_at":"%s","amount":5}`, k, at.Format(time.RFC3339)) // no customer
		}
		msgs = append(msgs, Message{Topic: TopicPurchases, Key: []byte("bad"), Value: []byte(v), At: at})
		dup := msgs[r.IntN(n)]
		dup.At = dup.At.Add(time.Duration(r.IntN(3600)) * time.Second)
		msgs = append(msgs, dup)
	}
	// A few tier changes that upstream delivers a day after a newer one.
	for k := 0; k < cfg.Customers/50; k++ {
		i := r.IntN(cfg.Customers)
		at := cfg.End.Add(-time.Duration(10+r.IntN(100)) * day)
		older, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("evt-late-%d", k), "customer_id": CustomerID(i),
			"occurred_at": at.Format(time.RFC3339), "tier": "regular"})
		newer, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("evt-late-%d-n", k), "customer_id": CustomerID(i),
			"occurred_at": at.Add(time.Hour).Format(time.RFC3339), "tier": "gold"})
		msgs = append(msgs,
			Message{Topic: TopicCustomers, Key: []byte(CustomerID(i)), Value: newer, At: at.Add(time.Hour)},
			Message{Topic: TopicCustomers, Key: []byte(CustomerID(i)), Value: older, At: at.Add(2 * time.Hour)})
	}
	return msgs
}

// Live emits events happening now, about rate per second across the
// population, until ctx ends.
func Live(ctx context.Context, cfg Config, rate float64, clock func() time.Time, emit func(Message) error) error {
	if rate <= 0 || cfg.Customers <= 0 {
		<-ctx.Done()
		return nil
	}
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(time.Now().UnixNano())))
	interval := time.Duration(float64(time.Second) / rate)
	t := time.NewTicker(max(interval, time.Millisecond))
	defer t.Stop()
	seq := 0
	pfx := fmt.Sprintf("live%d", time.Now().UnixNano())
	per := max(1, int(float64(time.Millisecond)/float64(interval)))
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for range per {
			i := r.IntN(cfg.Customers)
			seq++
			now := clock()
			g := &gen{cfg: Config{End: now.Add(time.Hour), OtherKeys: cfg.OtherKeys}, r: r, id: CustomerID(i), n: seq, pfx: pfx}
			a := ArchetypeOf(cfg, i)
			switch k := r.IntN(100); {
			case a == StalledSignup:
				continue
			case a == VIPLapsing || (a == FadingUsage && k < 80):
				continue // lapsed and fading customers stay quiet
			case k < 60:
				g.emit(TopicUsage, now, map[string]any{"value": float64(1 + r.IntN(4))})
			case k < 80:
				g.purchase(now, 1)
			case k < 90:
				g.emit(TopicTickets, now, map[string]any{"ticket_id": fmt.Sprintf("tk-live-%d-%d", seq, i), "status": "opened"})
			default:
				g.emit(TopicFeedback, now, map[string]any{"kind": "nps", "score": r.IntN(11)})
			}
			for _, m := range g.out {
				if err := emit(m); err != nil {
					return err
				}
			}
		}
	}
}
