package synth

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// life writes the history of one customer inside the window.
type life struct {
	w     *writer
	p     *persona
	r     *rand.Rand
	start time.Time // first seen: the first profile event
	first time.Time // first use of the product
	tz    time.Duration

	orders, tickets int
	changes         []tierChange // tier changes after the first profile
}

// tierChange is a profile update that changed the tier; the noise delivers
// an older change late for a few of them.
type tierChange struct {
	customerID string
	at, first  time.Time // when, and the customer's first profile
	to         string    // the new tier
}

// tail is how much of the window each archetype needs after a new
// customer's signup for its story to play out.
var tail = map[Archetype]time.Duration{
	Regular: 7 * day, Loyal: 30 * day, VIPLapsing: 0, FadingUsage: 70 * day,
	TicketStorm: 10 * day, Detractor: 30 * day, StalledSignup: 15 * day,
}

func (l *life) run() {
	p, r := l.p, l.r
	span := l.w.end.Sub(l.w.start)
	switch {
	case p.existing:
		l.start = l.w.start.Add(between(r, 0, min(10*day, span/10)))
	case span > tail[p.arch]:
		l.start = l.w.start.Add(between(r, 0, span-tail[p.arch]))
	default:
		l.start = l.w.start
	}
	switch p.country {
	case "US", "CA":
		l.tz = -5 * time.Hour
	case "GB", "IE":
		l.tz = 0
	default:
		l.tz = time.Hour
	}
	signedUp := l.start.Add(-between(r, time.Minute, 30*time.Minute))
	if p.existing {
		signedUp = l.start.Add(-p.tenure)
	}
	l.w.profile(l.start, p.tier, signedUp, p.attributes())
	if p.arch == StalledSignup {
		l.stall()
		return
	}
	// Everyone who really onboards logs in within a day and a half.
	l.first = l.start.Add(between(r, 5*time.Minute, 36*time.Hour))
	l.w.usage(l.first, 1, false)
	end := l.w.end
	switch p.arch {
	case Regular, Loyal:
		l.buy(l.first, end, p.every)
		l.use(l.first, end, 1)
		l.ordinaryTickets(time.Time{})
		l.surveys()
	case VIPLapsing:
		l.lapse()
	case FadingUsage:
		l.fade()
	case TicketStorm:
		l.buy(l.first, end, p.every)
		l.use(l.first, end, 1)
		storm := l.first.Add(between(r, 3*day, max(end.Sub(l.first)-5*day, 3*day+time.Hour)))
		opened := make([]time.Duration, 3+r.IntN(4))
		for k := range opened {
			opened[k] = between(r, 0, 96*time.Hour)
		}
		slices.Sort(opened)
		for _, d := range opened {
			l.ticket(storm.Add(d), true)
		}
		l.ordinaryTickets(storm)
		l.surveys()
	case Detractor:
		l.buy(l.first, end, p.every)
		l.use(l.first, end, 1)
		l.ordinaryTickets(time.Time{})
		l.detract()
	}
}

// stall: a signup who never buys or uses the product; at most the profile
// is completed a few days later.
func (l *life) stall() {
	if l.r.IntN(2) == 0 {
		return
	}
	size := []string{"1-10", "11-50", "51-200", "201-1000"}[l.r.IntN(4)]
	attrs := append(l.p.attributes(), "company_size", size)
	l.w.profile(l.start.Add(between(l.r, day, 10*day)), "", time.Time{}, attrs)
}

// lapse: a VIP buys regularly, then stops at least 200 days before the end
// of the window (so vip-no-purchase-180d fires inside it), and drifts away
// from the product over the following weeks.
func (l *life) lapse() {
	r, end := l.r, l.w.end
	firstBuy := l.first.Add(between(r, time.Hour, 5*day))
	stop := end.Add(-between(r, 202*day, 260*day)) // a purchase moves at most a day
	if stop.Before(firstBuy.Add(2 * day)) {
		stop = firstBuy.Add(2 * day) // window too short for the story to end in it
	}
	n := max(3, int(stop.Sub(firstBuy)/l.p.every)+1)
	gap := stop.Sub(firstBuy) / time.Duration(n-1)
	for k := range n {
		at := firstBuy.Add(time.Duration(k) * gap)
		if k > 0 && k < n-1 {
			at = at.Add(time.Duration((r.Float64() - 0.5) * 0.5 * float64(gap)))
		}
		l.purchase(at)
	}
	drift := stop.Add(between(r, 0, 40*day)).Truncate(day)
	l.use(l.first, drift, 1)
	l.use(drift, drift.Add(21*day), 0.3)
	if r.IntN(100) < 40 {
		l.ticket(stop.Add(-between(r, 0, 30*day)), false)
	}
	if r.IntN(100) < 30 {
		l.feedback(stop.Add(-between(r, 10*day, 60*day)), "nps", 7+r.IntN(2), "")
	}
}

// fade: heavy daily use for at least five weeks, then two to three weeks at
// a fraction of it (usage-drop fires); afterwards some recover, some stay
// low and stop buying, some leave.
func (l *life) fade() {
	r, p, end := l.r, l.p, l.w.end
	earliest := l.first.Add(42 * day)
	fadeAt := earliest.Add(between(r, 0, max(end.Sub(earliest)-21*day, time.Hour))).Truncate(day).Add(day)
	low := 0.05 + 0.25*r.Float64()
	lowUntil := fadeAt.Add(between(r, 14*day, 22*day)).Truncate(day)
	l.use(l.first, fadeAt, 1)
	l.use(fadeAt, lowUntil, low)
	switch n := r.IntN(100); {
	case n < 35: // back to normal
		l.buy(l.first, end, p.every)
		l.use(lowUntil, end, 1)
	case n < 75: // stays low, stops buying
		l.buy(l.first, fadeAt, p.every)
		l.use(lowUntil, end, low)
	default: // gone
		l.buy(l.first, fadeAt, p.every)
	}
	if r.IntN(100) < 30 {
		l.ticket(fadeAt.Add(-between(r, 0, 10*day)), false)
	}
	l.ordinaryTickets(time.Time{})
	l.surveys()
}

// detract: an NPS answer of 0–6; some answer 9–10 in a later survey.
func (l *life) detract() {
	r, end := l.r, l.w.end
	at := l.daytime(l.first.Add(between(r, 3*day, max(end.Sub(l.first)-day, 3*day+time.Hour))))
	if at.After(end) {
		at = end
	}
	l.w.feedback(at, "nps", []int{0, 1, 2, 3, 3, 4, 4, 5, 5, 6, 6, 6}[r.IntN(12)], comment(r, false))
	switch n := r.IntN(100); {
	case n < 40:
		l.feedback(at.Add(between(r, 20*day, 90*day)), "nps", 9+r.IntN(2), comment(r, true))
	case n < 70:
		l.feedback(at.Add(between(r, 60*day, 120*day)), "nps", r.IntN(7), "")
	}
	if r.IntN(100) < 30 {
		l.feedback(at.Add(-between(r, day, 20*day)), "csat", 1+r.IntN(2), "")
	}
}

// buy writes purchases from from to to, about every every apart.
func (l *life) buy(from, to time.Time, every time.Duration) {
	if every <= 0 {
		return
	}
	r := l.r
	for t := from.Add(between(l.r, every/10, every)); !t.After(to); t = t.Add(time.Duration(float64(every) * (0.6 + 0.8*r.Float64()))) {
		l.purchase(t)
	}
}

func (l *life) purchase(t time.Time) {
	at := l.daytime(t)
	if !at.After(l.first) {
		at = l.first.Add(between(l.r, time.Minute, time.Hour))
	}
	l.orders++
	if !l.w.purchase(at, l.p.orderValue(l.r), l.p.currency, l.ref("ord-", l.orders, 3)) {
		return
	}
	if p := l.p; p.upgrade != "" && l.orders == p.upgradeAfter {
		up := at.Add(between(l.r, time.Hour, 3*day))
		if l.w.profile(up, p.upgrade, time.Time{}, p.attributes()) {
			l.changes = append(l.changes, tierChange{customerID: p.id, at: up, first: l.start, to: p.upgrade})
		}
	}
}

// use writes the customer's usage on the days from the day of from up to,
// not including, the day of to, at level times their habit.
func (l *life) use(from, to time.Time, level float64) {
	h, r := l.p.use, l.r
	if to.After(l.w.end) {
		to = l.w.end
	}
	for d := from.Truncate(day); d.Before(to); d = d.Add(day) {
		if h.days == occasional {
			if r.Float64()*7 >= h.perWeek*level {
				continue
			}
			if at := l.daytime(d); !at.Before(from) {
				n := -1 // one session, the default value
				if r.IntN(3) == 0 {
					n = 1 + r.IntN(2)
				}
				l.w.usage(at, n, r.IntN(5) == 0)
			}
			continue
		}
		if h.days&(1<<uint(d.Weekday())) == 0 {
			continue
		}
		n := int(math.Round(h.perDay * level * (0.8 + 0.4*r.Float64())))
		// the nightly roll-up of the product analytics, just before midnight
		at := d.Add(23*time.Hour + between(r, 30*time.Minute, 59*time.Minute))
		if n > 0 && !at.Before(from) {
			l.w.usage(at, n, r.IntN(5) == 0)
		}
	}
}

// ordinaryTickets writes a ticket now and then, never three within a month;
// none within five weeks of storm (when not zero).
func (l *life) ordinaryTickets(storm time.Time) {
	r := l.r
	for t := l.first.Add(between(r, day, 2*perTicket)); t.Before(l.w.end); t = t.Add(33*day + between(r, 0, 2*perTicket)) {
		if !storm.IsZero() && t.After(storm.Add(-35*day)) && t.Before(storm.Add(35*day)) {
			continue
		}
		l.ticket(t, false)
	}
}

// perTicket is the mean time between the ordinary tickets of a customer.
const perTicket = 180 * day

// surveys: a third of the customers answer an NPS survey (7–10) once or
// twice, and some rate the service (CSAT).
func (l *life) surveys() {
	r, end := l.r, l.w.end
	span := end.Sub(l.first)
	if span < 30*day {
		return
	}
	answers := 0
	if r.IntN(100) < 35 {
		answers = 1 + b2i(r.IntN(100) < 30)
	}
	for range answers {
		l.feedback(l.first.Add(between(r, 30*day, span)), "nps", []int{7, 8, 8, 9, 9, 9, 10, 10}[r.IntN(8)], comment(r, true))
	}
	if r.IntN(100) < 15 {
		l.feedback(l.first.Add(between(r, day, span)), "csat", 3+r.IntN(3), "")
	}
}

// ref names the customer's n-th order or ticket: prefix, the customer's
// index in six digits, a dash, n in width digits ("ord-000042-017").
func (l *life) ref(prefix string, n, width int) string {
	b := make([]byte, 0, len(prefix)+8+width)
	b = append(b, prefix...)
	b = appendPadded(b, l.p.idx, 6)
	b = append(b, '-')
	return string(appendPadded(b, n, width))
}

// ticket opens a support ticket at t and follows it through: solved after a
// time that depends on its priority (sometimes reopened), often closed a
// few days later; a few are closed at once as duplicates.
func (l *life) ticket(t time.Time, storm bool) {
	r, w := l.r, l.w
	l.tickets++
	id := l.ref("tk-", l.tickets, 2)
	weights := [4]int{25, 55, 15, 5} // low, normal, high, urgent
	if storm {
		weights = [4]int{5, 30, 40, 25}
	}
	prio, x := 0, r.IntN(100)
	for prio < 3 && x >= weights[prio] {
		x -= weights[prio]
		prio++
	}
	name := [4]string{"low", "normal", "high", "urgent"}[prio]
	channel := []string{"email", "email", "chat", "web", "phone"}[r.IntN(5)]
	at := l.daytime(t)
	if !at.After(l.first) {
		at = l.first.Add(time.Hour)
	}
	if prio == 1 && r.IntN(3) == 0 {
		name = "" // normal is the default
	}
	if !w.ticket(at, id, "opened", name, 0, channel) {
		return
	}
	if r.IntN(100) < 8 {
		w.ticket(at.Add(between(r, 10*time.Minute, 2*day)), id, "closed", "", 0, "")
		return
	}
	resolve := [4]time.Duration{5 * day, 2 * day, day, 8 * time.Hour}[prio]
	solved := at.Add(between(r, resolve/4, resolve*2))
	if r.IntN(100) < 20+15*b2i(storm) {
		w.ticket(solved, id, "solved", "", 0, "")
		reopened := solved.Add(between(r, 6*time.Hour, 3*day))
		w.ticket(reopened, id, "reopened", "", 0, "")
		solved = reopened.Add(between(r, time.Hour, 2*day))
	}
	csat := 0
	if r.IntN(2) == 0 {
		csat = 3 + r.IntN(3)
		if storm {
			csat = []int{1, 1, 2, 2, 3, 4}[r.IntN(6)]
		}
	}
	w.ticket(solved, id, "solved", "", csat, "")
	if r.IntN(2) == 0 {
		w.ticket(solved.Add(between(r, 2*day, 7*day)), id, "closed", "", 0, "")
	}
	if r.IntN(100) < 20 {
		score := 1 + r.IntN(4)
		if storm {
			score = 4 + r.IntN(4)
		}
		w.feedback(solved.Add(between(r, time.Hour, day)), "ces", score, "")
	}
}

// feedback writes a survey answer during the customer's day t, after their
// first use of the product.
func (l *life) feedback(t time.Time, kind string, score int, comment string) {
	at := l.daytime(t)
	if !at.After(l.first) {
		at = l.first.Add(between(l.r, time.Minute, time.Hour))
	}
	l.w.feedback(at, kind, score, comment)
}

// daytime moves t to a random time between 07:00 and 22:00 of the
// customer's local day.
func (l *life) daytime(t time.Time) time.Time {
	d := t.Add(l.tz).Truncate(day)
	return d.Add(-l.tz + between(l.r, 7*time.Hour, 22*time.Hour))
}

func comment(r *rand.Rand, happy bool) string {
	if r.IntN(3) > 0 {
		return ""
	}
	if happy {
		return []string{"Support fixed it fast, thanks!", "Love the new reports", "Great value"}[r.IntN(3)]
	}
	return []string{"Too expensive for what it does", "Support is slow", "Missing the integrations we need", "The app keeps logging me out", "Hard to use"}[r.IntN(5)]
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
