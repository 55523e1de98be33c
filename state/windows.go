package state

import (
	"sort"
	"time"

	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/rules"
)

// View returns what rules read of the customer at event time c.AsOf.
func (c *Customer) View() *rules.View {
	v := &rules.View{}
	c.ViewInto(v)
	return v
}

// ViewInto fills v with what rules read of the customer at c.AsOf,
// reusing v's maps. The attributes are the profile's own map, or an empty
// one (v's, when it was empty already) for a profile without attributes.
func (c *Customer) ViewInto(v *rules.View) { c.UpdateView(v, rules.AllVars) }

// UpdateView is ViewInto for the parts of v that parts names, and now: the
// other parts are left as they are, for a caller that knows them to be
// current (filled from the same state, with no event applied to them and
// no window edge of theirs passed since).
func (c *Customer) UpdateView(v *rules.View, parts rules.Vars) {
	now := c.AsOf
	v.Now = now
	if parts&rules.CustomerVar != 0 {
		attrs := c.Profile.Attributes
		if attrs == nil {
			if attrs = v.Customer.Attributes; attrs == nil || len(attrs) > 0 {
				attrs = map[string]string{}
			}
		}
		v.Customer = rules.Customer{
			ID: c.ID, Tier: c.Profile.Tier, SignedUpAt: c.Profile.SignedUpAt,
			HasSignup: !c.Profile.SignedUpAt.IsZero(), FirstSeen: c.FirstSeen,
			Segment: c.Segment, Attributes: attrs,
		}
	}
	if parts&rules.FeedbackVar != 0 {
		v.Feedback = rules.Feedback{
			NPS: int64(c.Feedback.NPS), NPSCategory: NPSCategory(c.Feedback.NPS),
			CSAT: int64(c.Feedback.CSAT), CES: int64(c.Feedback.CES),
		}
	}
	if parts&rules.LastSeenVar != 0 {
		clear(v.LastSeen)
		if v.LastSeen == nil {
			v.LastSeen = make(map[string]time.Time, 5)
		}
		for _, t := range event.Types() {
			if at := c.LastSeen[t]; !at.IsZero() {
				v.LastSeen[t.String()] = at
			}
		}
	}
	if parts&rules.PurchasesVar != 0 {
		c.purchasesView(&v.Purchases, now)
	}
	if parts&rules.TicketsVar != 0 {
		c.ticketsView(&v.Tickets, now)
	}
	if parts&rules.UsageVar != 0 {
		c.usageView(&v.Usage, now)
	}
}

func (c *Customer) purchasesView(v *rules.Purchases, now time.Time) {
	p := &c.Purchases
	*v = rules.Purchases{Count: p.Count, Total: p.Total, First: p.First, Last: p.Last}
	if p.Count >= 2 {
		v.Interval = p.Last.Sub(p.First) / time.Duration(p.Count-1)
	}
	for _, x := range p.Recent {
		age := now.Sub(x.At)
		if age < 0 || age >= PurchaseWindow {
			continue
		}
		v.Spend365 += x.Amount
		if age < 90*Day {
			v.Spend90 += x.Amount
		}
		if age < 30*Day {
			v.Spend30 += x.Amount
		}
	}
}

func (c *Customer) ticketsView(v *rules.Tickets, now time.Time) {
	t := &c.Tickets
	*v = rules.Tickets{Open: int64(len(t.Open)), Last: t.Last, LatestCSAT: int64(t.LatestCSAT)}
	for _, at := range t.Opened {
		age := now.Sub(at)
		if age < 0 || age >= TicketWindow {
			continue
		}
		v.Opened30++
		if age < 7*Day {
			v.Opened7++
		}
	}
}

func (c *Customer) usageView(v *rules.Usage, now time.Time) {
	metrics := v.Metrics
	clear(metrics)
	if metrics == nil {
		metrics = make(map[string]rules.MetricUsage, len(c.Usage))
	}
	*v = rules.Usage{Last: c.LastSeen[event.Usage], Metrics: metrics}
	today := DayOf(now)
	for m, buckets := range c.Usage {
		var mu rules.MetricUsage
		for _, b := range buckets {
			switch age := today - b.Day; {
			case age < 0:
			case age < 7:
				mu.Last7 += b.Value
			case age < UsageDays:
				mu.Prior28 += b.Value
			}
		}
		mu.WeeklyAvg28 = mu.Prior28 / 4
		metrics[m] = mu
		v.Last7 += mu.Last7
		v.Prior28 += mu.Prior28
	}
	v.WeeklyAvg28 = v.Prior28 / 4
}

// Spend365 is the spend of the trailing 365 days at AsOf.
func (c *Customer) Spend365() float64 {
	var sum float64
	for _, x := range c.Purchases.Recent {
		if age := c.AsOf.Sub(x.At); age >= 0 && age < PurchaseWindow {
			sum += x.Amount
		}
	}
	return sum
}

// NPSCategory names an NPS score: promoter 9–10, passive 7–8, detractor
// 0–6, "" for none.
func NPSCategory(score int) string {
	switch {
	case score >= 9:
		return "promoter"
	case score >= 7:
		return "passive"
	case score >= 0:
		return "detractor"
	}
	return ""
}

// Edges holds the next instant after AsOf at which each kind of trailing
// window changes; zero when it will not.
type Edges struct {
	Purchases, Tickets, Usage time.Time
}

// Next is the earliest of the edges, or zero.
func (e Edges) Next() time.Time {
	var next time.Time
	for _, t := range [...]time.Time{e.Purchases, e.Tickets, e.Usage} {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// At returns the view variables whose trailing windows change at t:
// purchases (and customer, whose segment follows the spend), tickets,
// usage.
func (e Edges) At(t time.Time) rules.Vars {
	var moved rules.Vars
	if e.Purchases.Equal(t) {
		moved |= rules.PurchasesVar | rules.CustomerVar
	}
	if e.Tickets.Equal(t) {
		moved |= rules.TicketsVar
	}
	if e.Usage.Equal(t) {
		moved |= rules.UsageVar
	}
	return moved
}

// NextEdges returns when each kind of trailing window next changes: a
// purchase leaves the 30/90/365-day window, a ticket opening the 7/30-day
// window, a usage day the 7-day or the prior-28-day window. The detail
// lists are sorted, so each window costs one binary search.
func (c *Customer) NextEdges() Edges {
	var e Edges
	c.UpdateEdges(&e, rules.AllVars)
	return e
}

// UpdateEdges is NextEdges for the kinds of window that kinds names
// (PurchasesVar, TicketsVar, UsageVar): the other edges of e are left as
// they are, for a caller that knows them to be current (found for the same
// state, with no event of their kind applied since and AsOf not past them).
func (c *Customer) UpdateEdges(e *Edges, kinds rules.Vars) {
	earliest := func(next *time.Time, t time.Time) {
		if next.IsZero() || t.Before(*next) {
			*next = t
		}
	}
	if kinds&rules.PurchasesVar != 0 {
		e.Purchases = time.Time{}
		p := c.Purchases.Recent
		for _, w := range [...]time.Duration{30 * Day, 90 * Day, PurchaseWindow} {
			// The first purchase whose window end lies after AsOf.
			i := sort.Search(len(p), func(i int) bool { return p[i].At.Add(w).After(c.AsOf) })
			if i < len(p) {
				earliest(&e.Purchases, p[i].At.Add(w))
			}
		}
	}
	if kinds&rules.TicketsVar != 0 {
		e.Tickets = time.Time{}
		o := c.Tickets.Opened
		for _, w := range [...]time.Duration{7 * Day, TicketWindow} {
			i := sort.Search(len(o), func(i int) bool { return o[i].Add(w).After(c.AsOf) })
			if i < len(o) {
				earliest(&e.Tickets, o[i].Add(w))
			}
		}
	}
	if kinds&rules.UsageVar != 0 {
		// Usage windows move at UTC midnights.
		e.Usage = time.Time{}
		today := DayOf(c.AsOf)
		for _, buckets := range c.Usage {
			for _, shift := range [...]int32{7, UsageDays} {
				i := sort.Search(len(buckets), func(i int) bool { return buckets[i].Day+shift > today })
				if i < len(buckets) {
					earliest(&e.Usage, DayStart(buckets[i].Day+shift))
				}
			}
		}
	}
}
