// Package state is the per-customer state of contract §2: what churnwatch
// remembers about one customer, how an event changes it, the trailing
// windows derived from it at an instant of event time, and its compact
// binary encoding. It does no I/O and knows nothing of rules or Kafka.
package state

import (
	"cmp"
	"slices"
	"sort"
	"time"

	"github.com/churnwatch/churnwatch/event"
)

// Day is 24 hours of event time; windows are whole multiples of it.
const Day = 24 * time.Hour

// Retention of detail kept for windows and de-duplication.
const (
	PurchaseWindow = 365 * Day // purchases kept with their exact times
	TicketWindow   = 30 * Day  // ticket openings kept with their exact times
	UsageDays      = 35        // daily usage buckets kept per metric
	DedupDays      = 35        // event ids remembered for at least this many days (of event time)…
	MaxDedupIDs    = 1024      // …but never more than this many
	// MaxMetrics bounds the usage metrics kept per customer; usage of
	// further metrics counts under OtherMetric. The bound also keeps rule
	// evaluation within its statically checked cost.
	MaxMetrics  = 32
	OtherMetric = "other"
)

// Customer is one customer's state. AsOf is the event time up to which the
// state is complete: every event at or before it has been applied, and the
// rules have been evaluated at every instant up to it where they could
// change. Events after AsOf wait in Pending.
type Customer struct {
	ID        string
	AsOf      time.Time
	FirstSeen time.Time
	Offset    int64 // last applied offset of the internal topic; -1 when none
	Deleted   bool  // erased (GDPR); only AsOf and Offset survive
	LastSeen  [6]time.Time

	Profile   Profile
	Purchases Purchases
	Tickets   Tickets
	Usage     map[string][]Bucket // metric → daily buckets, oldest first
	Feedback  Feedback

	Segment string
	Risk    int      // the risk score; its reasons are worded on read (engine.Explain)
	Active  []Active // alert episodes holding now

	// Deadline is the earliest instant after AsOf at which a rule's result
	// can change without a new event (absence clauses), or zero.
	Deadline time.Time

	Pending []event.Event // received, occurred_at after AsOf, in event order
	Seen    []Seen        // recent event ids, for de-duplication
}

// Profile is the latest-by-occurred_at profile; each part keeps the time of
// the update it came from, so an older update arriving late changes nothing.
type Profile struct {
	Tier       string
	TierAt     time.Time
	SignedUpAt time.Time
	SignupAt   time.Time
	Attributes map[string]string
	AttrsAt    time.Time
}

// Purchases is the purchase history: lifetime figures and the purchases of
// the trailing PurchaseWindow with their exact times.
type Purchases struct {
	Count       int64
	Total       float64
	First, Last time.Time
	Recent      []Purchase
}

// Purchase is one purchase kept for the trailing windows.
type Purchase struct {
	At     time.Time
	Amount float64
}

// Tickets is the support-ticket history.
type Tickets struct {
	Open       []uint64    // hashes of the ids of open tickets
	Opened     []time.Time // openings in the trailing TicketWindow
	Last       time.Time
	LatestCSAT int
	CSATAt     time.Time
}

// Bucket is one UTC day of one usage metric; Day counts days since the Unix epoch.
type Bucket struct {
	Day   int32
	Value float64
}

// Feedback holds the latest score of each kind (-1 when none) and its time.
type Feedback struct {
	NPS, CSAT, CES       int
	NPSAt, CSATAt, CESAt time.Time
}

// Active is an alert episode in progress.
type Active struct {
	Rule    string
	Since   time.Time
	AlertID string
}

// Seen remembers one applied or pending event id: a 48-bit hash
// (SeenHash) and the UTC day of its occurred_at. Within the most ids a
// customer keeps, two ids share a hash with a chance of 1,024 in 2^48 at
// most (3.6·10^-12 per event); duplicates that the pipeline itself makes
// (redeliveries, events forwarded again) are recognised by offsets, not by
// this.
type Seen struct {
	Hash uint64
	Day  int32
}

// SeenHash is the hash an event id is remembered by.
func SeenHash(id string) uint64 { return HashID(id) & (1<<48 - 1) }

// New returns the empty state of a customer never seen before.
func New(id string) *Customer {
	return &Customer{ID: id, Offset: -1, Feedback: Feedback{NPS: -1, CSAT: -1, CES: -1}}
}

// Receive takes an event read at offset of the internal topic. It returns
// false, changing nothing, when the offset was applied before (a redelivery
// after a crash) or the event id was seen before (an upstream duplicate).
// Accepted events wait in Pending until the engine advances past them.
func (c *Customer) Receive(e event.Event, offset int64) bool {
	if offset <= c.Offset {
		return false
	}
	c.Offset = offset
	h := SeenHash(e.ID)
	for _, s := range c.Seen {
		if s.Hash == h {
			return false
		}
	}
	c.Seen = append(c.Seen, Seen{Hash: h, Day: DayOf(e.OccurredAt)})
	i := sort.Search(len(c.Pending), func(i int) bool { return !c.Pending[i].Before(&e) })
	c.Pending = slices.Insert(c.Pending, i, e)
	return true
}

// Grow makes room for n more received events, so that receiving them
// allocates nothing.
func (c *Customer) Grow(n int) {
	c.Pending = slices.Grow(c.Pending, n)
	c.Seen = slices.Grow(c.Seen, n)
}

// Apply changes the state by one event at the event time c.AsOf, which the
// engine has set to max(AsOf, e.OccurredAt).
func (c *Customer) Apply(e *event.Event) {
	if e.Type == event.Customer && e.Deleted {
		c.erase()
		return
	}
	if c.Deleted {
		// A customer erased earlier and seen again starts afresh.
		c.Deleted = false
	}
	at := e.OccurredAt
	if c.FirstSeen.IsZero() || at.Before(c.FirstSeen) {
		c.FirstSeen = at
	}
	if at.After(c.LastSeen[e.Type]) {
		c.LastSeen[e.Type] = at
	}
	switch e.Type {
	case event.Purchase:
		p := &c.Purchases
		p.Count++
		p.Total += e.Amount
		if p.First.IsZero() || at.Before(p.First) {
			p.First = at
		}
		if at.After(p.Last) {
			p.Last = at
		}
		if c.AsOf.Sub(at) < PurchaseWindow {
			i, _ := slices.BinarySearchFunc(p.Recent, at, func(x Purchase, t time.Time) int { return x.At.Compare(t) })
			p.Recent = slices.Insert(p.Recent, i, Purchase{At: at, Amount: e.Amount})
		}
	case event.SupportTicket:
		c.ticket(e)
	case event.Usage:
		c.usage(e)
	case event.Customer:
		pr := &c.Profile
		if e.HasTier && !at.Before(pr.TierAt) {
			pr.Tier, pr.TierAt = e.Tier, at
		}
		if !e.SignedUpAt.IsZero() && !at.Before(pr.SignupAt) {
			pr.SignedUpAt, pr.SignupAt = e.SignedUpAt, at
		}
		if e.Attributes != nil && !at.Before(pr.AttrsAt) {
			pr.Attributes, pr.AttrsAt = e.Attributes, at
		}
	case event.Feedback:
		f := &c.Feedback
		switch e.Kind {
		case event.NPS:
			if !at.Before(f.NPSAt) {
				f.NPS, f.NPSAt = e.Score, at
			}
		case event.CSAT:
			if !at.Before(f.CSATAt) {
				f.CSAT, f.CSATAt = e.Score, at
			}
		case event.CES:
			if !at.Before(f.CESAt) {
				f.CES, f.CESAt = e.Score, at
			}
		}
	}
}

func (c *Customer) ticket(e *event.Event) {
	t := &c.Tickets
	at := e.OccurredAt
	if at.After(t.Last) {
		t.Last = at
	}
	if e.CSAT > 0 && !at.Before(t.CSATAt) {
		t.LatestCSAT, t.CSATAt = e.CSAT, at
	}
	h := HashID(e.TicketID)
	i := slices.Index(t.Open, h)
	switch e.Status {
	case event.Opened, event.Reopened:
		if i >= 0 {
			return
		}
		t.Open = append(t.Open, h)
		if e.Status == event.Opened && c.AsOf.Sub(at) < TicketWindow {
			j, _ := slices.BinarySearchFunc(t.Opened, at, time.Time.Compare)
			t.Opened = slices.Insert(t.Opened, j, at)
		}
	case event.Solved, event.Closed:
		if i >= 0 {
			t.Open = slices.Delete(t.Open, i, i+1)
		}
	}
}

func (c *Customer) usage(e *event.Event) {
	day := DayOf(e.OccurredAt)
	if DayOf(c.AsOf)-day >= UsageDays {
		return
	}
	if c.Usage == nil {
		c.Usage = make(map[string][]Bucket)
	}
	metric := e.Metric
	if _, ok := c.Usage[metric]; !ok && len(c.Usage) >= MaxMetrics-1 && metric != OtherMetric {
		metric = OtherMetric
	}
	b := c.Usage[metric]
	i, found := slices.BinarySearchFunc(b, day, func(x Bucket, d int32) int { return int(x.Day - d) })
	if found {
		b[i].Value += e.Value
	} else {
		b = slices.Insert(b, i, Bucket{Day: day, Value: e.Value})
	}
	c.Usage[metric] = b
}

// erase forgets everything about the customer but the bookkeeping that keeps
// redelivered and duplicate events from bringing the data back.
func (c *Customer) erase() {
	*c = Customer{
		ID: c.ID, AsOf: c.AsOf, Offset: c.Offset, Deleted: true,
		Pending: c.Pending, Seen: c.Seen, Active: c.Active,
		Feedback: Feedback{NPS: -1, CSAT: -1, CES: -1},
	}
}

// Prune drops detail that no window at or after AsOf can read.
func (c *Customer) Prune() {
	p := &c.Purchases
	n := 0
	for n < len(p.Recent) && c.AsOf.Sub(p.Recent[n].At) >= PurchaseWindow {
		n++
	}
	p.Recent = slices.Delete(p.Recent, 0, n)
	t := &c.Tickets
	n = 0
	for n < len(t.Opened) && c.AsOf.Sub(t.Opened[n]) >= TicketWindow {
		n++
	}
	t.Opened = slices.Delete(t.Opened, 0, n)
	today := DayOf(c.AsOf)
	for m, b := range c.Usage {
		n = 0
		for n < len(b) && today-b[n].Day >= UsageDays {
			n++
		}
		if b = slices.Delete(b, 0, n); len(b) == 0 {
			delete(c.Usage, m)
		} else {
			c.Usage[m] = b
		}
	}
	bySeen := func(a, b Seen) int { return cmp.Compare(a.Day, b.Day) }
	if !slices.IsSortedFunc(c.Seen, bySeen) { // usually they are, from the last Prune on
		slices.SortStableFunc(c.Seen, bySeen)
	}
	n = 0
	// An id of day d is kept while today−d ≤ DedupDays: at least DedupDays
	// whole days after its occurred_at.
	for n < len(c.Seen) && (len(c.Seen)-n > MaxDedupIDs || today-c.Seen[n].Day > DedupDays) {
		n++
	}
	c.Seen = slices.Delete(c.Seen, 0, n)
}

// DayOf returns the UTC day of t, counted from the Unix epoch.
func DayOf(t time.Time) int32 {
	s := t.Unix()
	d := s / 86400
	if s < 0 && s%86400 != 0 {
		d--
	}
	return int32(d)
}

// DayStart is the UTC midnight that begins day d.
func DayStart(d int32) time.Time { return time.Unix(int64(d)*86400, 0).UTC() }
