package synth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"
)

// Live produces events happening now, at about rate messages per second
// across the population of cfg, calling emit for each, until ctx is done;
// then it returns nil. It returns the first error of emit as is.
//
// occurred_at is clock() (in milliseconds); the pace is kept by the real
// timers of package time, so clock may be fake. When emit is slow, Live
// catches up at most one second's worth of messages. The archetype mix is
// that of Generate and each customer keeps to their story: lapsed VIPs do
// not buy, stalled signups neither buy nor use the product, only detractors
// give NPS 0–6, only ticket-storm customers open three tickets within a
// month, and opened tickets get solved. cfg.OtherKeys and cfg.BadEvery
// apply as in Generate; the window of cfg is not used. Event ids start with
// "evt-live-" and the start time, so they never repeat those of the history
// or of an earlier run.
func Live(ctx context.Context, cfg Config, rate float64, clock func() time.Time, emit func(Message) error) error {
	if cfg.Customers <= 0 {
		return errors.New("synth: live traffic needs at least one customer")
	}
	if !(rate > 0) || math.IsInf(rate, 0) {
		return fmt.Errorf("synth: live rate %g events/s, want a positive number", rate)
	}
	l := newLiveStream(cfg, clock())
	tick := min(max(time.Duration(float64(time.Second)/rate), 10*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	began, sent := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		due := int(rate * time.Since(began).Seconds())
		if behind := due - sent; behind > int(rate)+1 {
			sent = due - int(rate) - 1
		}
		for ; sent < due; sent++ {
			if ctx.Err() != nil {
				return nil
			}
			if err := emit(l.next(clock())); err != nil {
				return err
			}
		}
	}
}

// liveStream draws the live events of a population.
type liveStream struct {
	cfg     Config
	r       *rand.Rand
	w       *writer
	cum     []float64 // cumulative activity weights of the customers
	people  map[int]*liveCustomer
	stamp   string // the start time in base 36, part of every id
	orders  int
	pending []Message // to send before drawing a new event
}

// liveCustomer is what live traffic remembers of a customer.
type liveCustomer struct {
	p       *persona
	open    []string    // ticket ids not yet solved
	opened  []time.Time // openings in the last 30 days
	tickets int
}

// activity is how often each archetype shows up in live traffic.
var activity = map[Archetype]float64{
	Regular: 1, Loyal: 1.5, VIPLapsing: 0.2, FadingUsage: 0.3,
	TicketStorm: 1, Detractor: 1, StalledSignup: 0.02,
}

func newLiveStream(cfg Config, t0 time.Time) *liveStream {
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(t0.UnixNano())))
	stamp := strconv.FormatInt(t0.UnixMilli(), 36)
	l := &liveStream{
		cfg: cfg, r: r, people: make(map[int]*liveCustomer), stamp: stamp,
		w: &writer{
			r: r, start: time.Unix(0, 0), end: time.Unix(1<<40, 0), otherKeys: cfg.OtherKeys,
			typeShare: 15, layout: time.RFC3339Nano, prec: time.Millisecond,
			idPrefix: []byte("evt-live-" + stamp + "-"),
		},
		cum: make([]float64, cfg.Customers),
	}
	total := 0.0
	for i := range cfg.Customers {
		total += activity[archetype(cfg.Seed, i)]
		l.cum[i] = total
	}
	return l
}

// next returns the next live message, at now.
func (l *liveStream) next(now time.Time) Message {
	if len(l.pending) > 0 {
		m := l.pending[0]
		l.pending = l.pending[1:]
		return m
	}
	now = now.UTC()
	r := l.r
	i := sort.SearchFloat64s(l.cum, r.Float64()*l.cum[len(l.cum)-1])
	c := l.people[i]
	if c == nil {
		p, _ := newPersona(l.cfg.Seed, i)
		c = &liveCustomer{p: p}
		l.people[i] = c
	}
	w, p := l.w, c.p
	w.cust, w.out = p.id, w.out[:0]
	n := r.IntN(100)
	switch p.arch {
	case StalledSignup:
		w.profile(now, "", time.Time{}, append(p.attributes(), "company_size", "1-10"))
	case VIPLapsing:
		w.usage(now, 1+r.IntN(2), false)
	case FadingUsage:
		if n < 90 || !l.ticket(c, now) {
			w.usage(now, 1, r.IntN(5) == 0)
		}
	case Regular, Loyal, TicketStorm, Detractor:
		buys := 12 + 26*b2i(p.arch == Loyal)
		tickets := 6 + 34*b2i(p.arch == TicketStorm)
		feedback := 4 + 16*b2i(p.arch == Detractor)
		switch {
		case n < buys && p.every > 0:
			l.orders++
			w.purchase(now, p.orderValue(r), p.currency, "ord-live-"+l.stamp+"-"+strconv.Itoa(l.orders))
		case n >= buys && n < buys+tickets && l.ticket(c, now):
		case n >= buys+tickets && n < buys+tickets+feedback:
			score := 7 + r.IntN(4)
			if p.arch == Detractor {
				score = r.IntN(7)
			}
			w.feedback(now, "nps", score, comment(r, score >= 9))
		case n == 99:
			w.profile(now, p.finalTier(), time.Time{}, p.attributes())
		default:
			w.usage(now, 1+r.IntN(3), r.IntN(5) == 0)
		}
	}
	m := w.out[0]
	if l.cfg.BadEvery > 0 && r.IntN(l.cfg.BadEvery) == 0 {
		// a broken copy first; the good message follows
		l.pending = append(l.pending, m)
		m.Value = corrupt(r, m.Topic, m.Value, now)
	}
	return m
}

// ticket moves the customer's tickets on: it solves or closes an open one,
// or opens a new one if the customer's story allows it. It reports whether
// it wrote anything.
func (l *liveStream) ticket(c *liveCustomer, now time.Time) bool {
	r, w := l.r, l.w
	for len(c.opened) > 0 && now.Sub(c.opened[0]) >= 30*day {
		c.opened = c.opened[1:]
	}
	limit := 1 // ordinary customers: one opening a month at most
	if c.p.arch == TicketStorm {
		limit = 6
	}
	if len(c.open) > 0 && (len(c.opened) >= limit || r.IntN(2) == 0) {
		id := c.open[0]
		c.open = c.open[1:]
		if r.IntN(4) == 0 {
			return w.ticket(now, id, "closed", "", 0, "")
		}
		return w.ticket(now, id, "solved", "", 1+r.IntN(5), "")
	}
	if len(c.opened) >= limit {
		return false
	}
	c.tickets++
	id := "tk-" + c.p.id[5:] + "-" + l.stamp + "-" + strconv.Itoa(c.tickets)
	c.open = append(c.open, id)
	c.opened = append(c.opened, now)
	return w.ticket(now, id, "opened", []string{"low", "normal", "high", "urgent"}[r.IntN(4)], 0, "chat")
}
