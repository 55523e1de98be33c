package synth

import "math/rand/v2"

// Archetype is the story a generated customer lives, and the rule of the
// built-in pack (contract §3) it is meant to trip.
type Archetype string

// The archetypes; the comment gives the share of the population and the
// rule each one trips in event time.
const (
	Regular       Archetype = "regular"        // 30 %: steady buying and usage; no rule
	Loyal         Archetype = "loyal"          // 20 %: frequent buyers; loyalty-milestone (10th, 25th…)
	VIPLapsing    Archetype = "vip-lapsing"    // 10 %: a VIP who stops buying; vip-no-purchase-180d
	FadingUsage   Archetype = "fading-usage"   // 10 %: daily usage that falls away; usage-drop
	TicketStorm   Archetype = "ticket-storm"   // 10 %: 3–6 tickets in a few days; ticket-surge
	Detractor     Archetype = "detractor"      // 10 %: NPS 0–6, some turn promoter; nps-detractor
	StalledSignup Archetype = "stalled-signup" // 10 %: signs up, never buys or uses; onboarding-stalled
)

// Archetypes lists every archetype, most common first.
func Archetypes() []Archetype {
	return []Archetype{Regular, Loyal, VIPLapsing, FadingUsage, TicketStorm, Detractor, StalledSignup}
}

// block is the exact archetype mix of every ten consecutive customers. A
// seeded shuffle per block decides who is who, so the mix holds for any
// population of ten or more, and a customer's archetype depends only on the
// seed and its index, never on the population size.
var block = [10]Archetype{Regular, Regular, Regular, Loyal, Loyal, VIPLapsing, FadingUsage, TicketStorm, Detractor, StalledSignup}

// ArchetypeOf returns the archetype of customer i of the population cfg
// describes (only cfg.Seed matters).
func ArchetypeOf(cfg Config, i int) Archetype {
	if i < 0 {
		return Regular
	}
	return archetype(cfg.Seed, i)
}

func archetype(seed int64, i int) Archetype {
	r := rand.New(rand.NewPCG(uint64(seed), streamBlock^uint64(i/len(block))))
	perm := r.Perm(len(block))
	return block[perm[i%len(block)]]
}

// Independent random streams derived from the seed: one per block of the
// archetype shuffle, two per customer (their story, and how its messages
// are presented), one for the noise.
const (
	streamBlock    = 0xb10c << 40
	streamCustomer = 0xc057 << 40
	streamKeys     = 0x4e75 << 40
	streamNoise    = 0xbad << 40
)
