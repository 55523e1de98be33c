package synth

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// CustomerID names customer i: "cust-000042".
func CustomerID(i int) string {
	b := make([]byte, 0, 12)
	return string(appendCustomerID(b, i))
}

func appendCustomerID(b []byte, i int) []byte {
	b = append(b, "cust-"...)
	return appendPadded(b, i, 6)
}

// appendPadded appends n in decimal, zero-padded to width digits.
func appendPadded(b []byte, n, width int) []byte {
	var d [20]byte
	s := strconv.AppendInt(d[:0], int64(n), 10)
	for k := len(s); k < width; k++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// persona is what stays true of a customer whatever the window: who they
// are, where they pay from and how they buy and use the product. History
// and live traffic both derive their events from it.
type persona struct {
	idx  int
	id   string
	arch Archetype

	country, currency string
	plan, channel     string
	manager           string // account manager, "" for none
	tier              string // tier of the first profile
	upgrade           string // tier the customer is promoted to later, "" for none
	upgradeAfter      int    // … after this many purchases

	existing bool          // signed up before the window opened
	tenure   time.Duration // how long before first being seen, when existing

	basket float64       // median order value
	every  time.Duration // typical time between purchases; 0: does not buy
	use    habit
}

// habit is how a customer uses the product: a daily aggregate of sessions
// on the weekdays in days, or single sessions now and then.
type habit struct {
	days    uint8   // weekday mask (bit 0 = Sunday); 0 = occasional sessions
	perDay  float64 // sessions on an active day
	perWeek float64 // occasional sessions per week, when days == 0
}

const (
	everyDay   = 0x7f
	weekdays   = 0x3e // Monday to Friday
	occasional = 0
)

var countries = []struct {
	code, currency string
	weight         int
}{
	{"US", "USD", 30}, {"CA", "USD", 3}, {"GB", "GBP", 15}, {"DE", "EUR", 16}, {"FR", "EUR", 10},
	{"NL", "EUR", 8}, {"ES", "EUR", 6}, {"IT", "EUR", 5}, {"IE", "EUR", 4}, {"AT", "EUR", 3},
}

var (
	managers = []string{"a.keller", "j.moreau", "s.patel", "m.rossi", "l.jansen", "k.obrien", "t.nguyen", "e.garcia"}
	channels = []string{"organic", "organic", "paid-search", "referral", "partner", "sales"}
)

func newPersona(seed int64, i int) (*persona, *rand.Rand) {
	r := rand.New(rand.NewPCG(uint64(seed), streamCustomer^uint64(i)))
	p := &persona{idx: i, id: CustomerID(i), arch: archetype(seed, i), tier: "regular"}

	w := r.IntN(100)
	for _, c := range countries {
		if w -= c.weight; w < 0 {
			p.country, p.currency = c.code, c.currency
			break
		}
	}
	p.channel = channels[r.IntN(len(channels))]
	switch n := r.IntN(100); {
	case n < 40:
		p.plan = "starter"
	case n < 70:
		p.plan = "team"
	case n < 90:
		p.plan = "business"
	default:
		p.plan = "enterprise"
	}
	p.existing = r.IntN(100) < 35
	p.basket = 60 * lognormal(r, 0.5)
	p.every = between(r, 25*day, 90*day)
	p.use = randomHabit(r)

	switch p.arch {
	case Regular:
		if r.IntN(100) < 8 {
			p.tier = "gold"
		}
		if r.IntN(100) < 15 {
			p.every = 0 // uses the product, buys through a reseller
		}
	case Loyal:
		p.existing = r.IntN(100) < 60
		p.basket = 45 * lognormal(r, 0.4)
		p.every = between(r, 5*day, 18*day)
		switch n := r.IntN(100); {
		case n < 30:
			p.tier = "vip"
		case n < 45:
			p.upgrade, p.upgradeAfter = "vip", 10
		case n < 55:
			p.tier = "gold"
		case n < 65:
			p.upgrade, p.upgradeAfter = "gold", 5
		}
	case VIPLapsing:
		p.existing, p.tier = true, "vip"
		p.plan = []string{"business", "enterprise"}[r.IntN(2)]
		p.basket = 350 * lognormal(r, 0.5)
		p.every = between(r, 10*day, 28*day)
		if r.IntN(2) == 0 {
			p.use = habit{days: weekdays, perDay: 2.5 + 2*r.Float64()}
		}
	case FadingUsage:
		p.existing = r.IntN(100) < 15
		p.use = habit{days: everyDay, perDay: 2.5 + 3.5*r.Float64()}
		if r.IntN(100) < 20 {
			p.every = 0
		}
	case TicketStorm, Detractor:
		p.every = between(r, 20*day, 70*day)
		if r.IntN(100) < 10 {
			p.every = 0
		}
	case StalledSignup:
		p.existing, p.plan, p.every, p.use = false, "trial", 0, habit{}
	}
	if p.existing {
		p.tenure = between(r, 60*day, 5*365*day)
	}
	if p.tier != "regular" || p.upgrade != "" || p.plan == "business" || p.plan == "enterprise" {
		p.manager = managers[r.IntN(len(managers))]
	}
	return p, r
}

// randomHabit draws a usage habit: a few heavy daily users, office-hours
// users, and occasional users whose weekly total stays under the floor of
// the usage-drop rule (5 a week).
func randomHabit(r *rand.Rand) habit {
	switch n := r.IntN(100); {
	case n < 5:
		return habit{days: everyDay, perDay: 2 + 3*r.Float64()}
	case n < 23:
		return habit{days: weekdays, perDay: 2.5 + 2.5*r.Float64()}
	default:
		return habit{perWeek: 0.5 + r.Float64()}
	}
}

// finalTier is the tier the customer ends up with.
func (p *persona) finalTier() string {
	if p.upgrade != "" {
		return p.upgrade
	}
	return p.tier
}

// attributes of the customer's profile, as key/value pairs.
func (p *persona) attributes() []string {
	a := []string{"plan", p.plan, "country", p.country, "channel", p.channel}
	if p.manager != "" {
		a = append(a, "account_manager", p.manager)
	}
	return a
}

// orderValue draws the amount of one order around the customer's basket:
// mostly shop prices ending in .99 or .00, sometimes a computed total, and
// once in a while a free order paid by a voucher.
func (p *persona) orderValue(r *rand.Rand) float64 {
	if r.IntN(200) == 0 {
		return 0
	}
	v := p.basket * lognormal(r, 0.35)
	switch r.IntN(3) {
	case 0:
		return math.Max(math.Floor(v), 1) - 0.01
	case 1:
		return math.Max(math.Round(v), 1)
	}
	return math.Round(v*100) / 100
}

// lognormal returns a factor with median 1 and spread sigma.
func lognormal(r *rand.Rand, sigma float64) float64 { return math.Exp(r.NormFloat64() * sigma) }

// between returns a duration drawn uniformly from [lo, hi).
func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.Int64N(int64(hi-lo)))
}
