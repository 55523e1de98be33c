package engine

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/alerts"
	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/rules"
	"github.com/churnwatch/churnwatch/state"
)

const day = 24 * time.Hour

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

type evOpt func(*event.Event)

func mk(id string, typ event.Type, at time.Time, opts ...evOpt) event.Event {
	e := event.Event{ID: id, CustomerID: "c1", Type: typ, OccurredAt: at}
	switch typ {
	case event.Usage:
		e.Metric, e.Value = "sessions", 1
	case event.SupportTicket:
		e.TicketID, e.Status, e.Priority = id, event.Opened, event.Normal
	}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func amount(a float64) evOpt { return func(e *event.Event) { e.Amount = a } }
func tier(t string) evOpt    { return func(e *event.Event) { e.Tier, e.HasTier = t, true } }
func signup(t time.Time) evOpt {
	return func(e *event.Event) { e.SignedUpAt = t }
}
func npsScore(s int) evOpt  { return func(e *event.Event) { e.Kind, e.Score = event.NPS, s } }
func value(v float64) evOpt { return func(e *event.Event) { e.Value = v } }

type fired struct {
	rule   string
	status alerts.Status
	at     time.Time
}

func run(t *testing.T, evs []event.Event, until time.Time) []fired {
	t.Helper()
	out, _, err := New(rules.Builtin(), nil).Replay(evs, until)
	if err != nil {
		t.Fatal(err)
	}
	var fs []fired
	for _, a := range out {
		fs = append(fs, fired{a.Rule, a.Status, a.Time})
	}
	return fs
}

func has(fs []fired, f fired) bool {
	for _, x := range fs {
		if x.rule == f.rule && x.status == f.status && x.at.Equal(f.at) {
			return true
		}
	}
	return false
}

func count(fs []fired, rule string) int {
	n := 0
	for _, x := range fs {
		if x.rule == rule {
			n++
		}
	}
	return n
}

func TestTicketSurgeSlidesOut(t *testing.T) {
	evs := []event.Event{
		mk("a", event.SupportTicket, t0),
		mk("b", event.SupportTicket, t0.Add(day)),
		mk("c", event.SupportTicket, t0.Add(2*day)),
	}
	fs := run(t, evs, t0.Add(60*day))
	if !has(fs, fired{"ticket-surge", alerts.Firing, t0.Add(2 * day)}) {
		t.Errorf("no firing at the third ticket: %v", fs)
	}
	if !has(fs, fired{"ticket-surge", alerts.Resolved, t0.Add(30 * day)}) {
		t.Errorf("no resolution 30 days after the first ticket: %v", fs)
	}
	if n := count(fs, "ticket-surge"); n != 2 {
		t.Errorf("%d ticket-surge alerts, want 2 (edge-triggered)", n)
	}
}

func TestVIPAbsenceFromLastPurchaseAndFirstSeen(t *testing.T) {
	evs := []event.Event{
		mk("p0", event.Customer, t0, tier("vip")),
		mk("b1", event.Purchase, t0.Add(time.Hour), amount(10)),
		mk("b2", event.Purchase, t0.Add(10*day), amount(10)),
		// A VIP first seen later, who never buys: measured from first seen.
		{ID: "q0", CustomerID: "c2", Type: event.Customer, OccurredAt: t0.Add(100 * day), Tier: "vip", HasTier: true},
	}
	fs := run(t, evs, t0.Add(400*day))
	if !has(fs, fired{"vip-no-purchase-180d", alerts.Firing, t0.Add(190 * day)}) {
		t.Errorf("c1: want firing at last purchase + 180d: %v", fs)
	}
	out, _, _ := New(rules.Builtin(), nil).Replay(evs, t0.Add(400*day))
	for _, a := range out {
		if a.CustomerID == "c2" && a.Rule == "vip-no-purchase-180d" && !a.Time.Equal(t0.Add(280*day)) {
			t.Errorf("c2 fired at %s, want first seen + 180d = %s", a.Time, t0.Add(280*day))
		}
	}
	// A purchase before the deadline moves it: nothing fires within 180 days.
	fs = run(t, evs[:3], t0.Add(189*day))
	if count(fs, "vip-no-purchase-180d") != 0 {
		t.Errorf("fired before the deadline: %v", fs)
	}
}

func TestPurchaseResolvesAbsence(t *testing.T) {
	evs := []event.Event{
		mk("p0", event.Customer, t0, tier("vip")),
		mk("b1", event.Purchase, t0, amount(10)),
		mk("b2", event.Purchase, t0.Add(200*day), amount(10)),
	}
	fs := run(t, evs, t0.Add(250*day))
	if !has(fs, fired{"vip-no-purchase-180d", alerts.Firing, t0.Add(180 * day)}) ||
		!has(fs, fired{"vip-no-purchase-180d", alerts.Resolved, t0.Add(200 * day)}) {
		t.Errorf("want firing at +180d and resolution at the purchase: %v", fs)
	}
}

func TestLoyaltyMilestoneOncePerMilestone(t *testing.T) {
	var evs []event.Event
	for i := range 26 {
		evs = append(evs, mk("b"+string(rune('a'+i)), event.Purchase, t0.Add(time.Duration(i)*7*day), amount(5)))
	}
	fs := run(t, evs, t0.Add(400*day))
	if !has(fs, fired{"loyalty-milestone", alerts.Firing, t0.Add(9 * 7 * day)}) ||
		!has(fs, fired{"loyalty-milestone", alerts.Firing, t0.Add(24 * 7 * day)}) {
		t.Errorf("want firings at the 10th and 25th purchase: %v", fs)
	}
	if n := count(fs, "loyalty-milestone"); n != 2 {
		t.Errorf("%d loyalty-milestone alerts, want 2 and no resolutions", n)
	}
}

func TestOnboardingStalledAndNPS(t *testing.T) {
	evs := []event.Event{
		mk("s", event.Customer, t0, tier("regular"), signup(t0)),
		mk("f", event.Feedback, t0.Add(2*day), npsScore(3)),
		mk("f2", event.Feedback, t0.Add(40*day), npsScore(9)),
		mk("u", event.Usage, t0.Add(50*day)),
	}
	fs := run(t, evs, t0.Add(60*day))
	for _, want := range []fired{
		{"onboarding-stalled", alerts.Firing, t0.Add(14 * day)},
		{"onboarding-stalled", alerts.Resolved, t0.Add(50 * day)},
		{"nps-detractor", alerts.Firing, t0.Add(2 * day)},
		{"nps-detractor", alerts.Resolved, t0.Add(40 * day)},
	} {
		if !has(fs, want) {
			t.Errorf("missing %v in %v", want, fs)
		}
	}
}

func TestUsageDropAtMidnight(t *testing.T) {
	var evs []event.Event
	day0 := time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)
	for d := range 28 {
		evs = append(evs, mk("u"+string(rune('A'+d)), event.Usage, day0.Add(time.Duration(d)*day), value(10)))
	}
	// Then usage falls to 1 a day.
	for d := 28; d < 40; d++ {
		evs = append(evs, mk("v"+string(rune('A'+d)), event.Usage, day0.Add(time.Duration(d)*day), value(1)))
	}
	fs := run(t, evs, day0.Add(45*day))
	var at time.Time
	for _, f := range fs {
		if f.rule == "usage-drop" && f.status == alerts.Firing {
			at = f.at
		}
	}
	if at.IsZero() {
		t.Fatalf("usage-drop never fired: %v", fs)
	}
	// At midnight starting day 32 the trailing week holds 2×10 + 4×1 = 24
	// against a weekly average of 260/4 = 65 before it: the first instant
	// below half, reached by a window edge, not by an event.
	if want := day0.Truncate(day).Add(32 * day); !at.Equal(want) {
		t.Errorf("usage-drop fired at %s, want %s", at, want)
	}
}

func TestAdvanceInStepsEqualsAtOnce(t *testing.T) {
	evs := []event.Event{
		mk("p0", event.Customer, t0, tier("vip"), signup(t0)),
		mk("a", event.SupportTicket, t0.Add(day)),
		mk("b", event.SupportTicket, t0.Add(3*day)),
		mk("c", event.SupportTicket, t0.Add(4*day)),
		mk("b1", event.Purchase, t0.Add(5*day), amount(10)),
		mk("f", event.Feedback, t0.Add(6*day), npsScore(1)),
	}
	eng := New(rules.Builtin(), nil)
	once, _, _ := eng.Replay(evs, t0.Add(300*day))
	c := state.New("c1")
	var stepped []alerts.Alert
	for i, e := range evs {
		c.Receive(e, int64(i))
	}
	for at := t0; !at.After(t0.Add(300 * day)); at = at.Add(13 * time.Hour) {
		if err := eng.Advance(c, at, func(a alerts.Alert) { stepped = append(stepped, a) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.Advance(c, t0.Add(300*day), func(a alerts.Alert) { stepped = append(stepped, a) }); err != nil {
		t.Fatal(err)
	}
	if len(once) != len(stepped) {
		t.Fatalf("at once %d alerts, in steps %d", len(once), len(stepped))
	}
	ids := map[string]time.Time{}
	for _, a := range once {
		ids[a.EventID()] = a.Time
	}
	for _, a := range stepped {
		if at, ok := ids[a.EventID()]; !ok || !at.Equal(a.Time) {
			t.Errorf("stepped alert %s at %s not in the at-once run", a.EventID(), a.Time)
		}
	}
}

func TestEraseResolvesAndForgets(t *testing.T) {
	del := mk("d", event.Customer, t0.Add(10*day))
	del.Deleted = true
	evs := []event.Event{
		mk("f", event.Feedback, t0, npsScore(2)),
		del,
	}
	out, states, err := New(rules.Builtin(), nil).Replay(evs, t0.Add(20*day))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[1].Status != alerts.Resolved || !out[1].Time.Equal(t0.Add(10*day)) {
		t.Fatalf("want firing then resolution at erasure: %+v", out)
	}
	if c := states["c1"]; !c.Deleted || c.Feedback.NPS != -1 {
		t.Fatalf("state not erased: %+v", c)
	}
}

// A deadline that falls on the instant of an event that does not concern
// the rule must still fire the rule (usage every 8 hours lands on the
// absence deadlines of other rules).
func TestDeadlineSharedWithUnrelatedEvent(t *testing.T) {
	evs := []event.Event{mk("p0", event.Customer, t0, tier("vip"))}
	var last time.Time
	for i := range 6 {
		last = t0.Add(time.Hour + time.Duration(i)*20*day)
		evs = append(evs, mk("b"+string(rune('a'+i)), event.Purchase, last, amount(5)))
	}
	for i := range 3 * 365 {
		evs = append(evs, mk(fmt.Sprintf("u%d", i), event.Usage, t0.Add(time.Duration(i)*8*time.Hour)))
	}
	fs := run(t, evs, t0.Add(400*day))
	if !has(fs, fired{"vip-no-purchase-180d", alerts.Firing, last.Add(180 * day)}) {
		t.Errorf("want vip-no-purchase-180d at last purchase + 180d = %s: %v", last.Add(180*day), fs)
	}
	if !has(fs, fired{"purchase-overdue", alerts.Firing, last.Add(60 * day)}) {
		t.Errorf("want purchase-overdue at last purchase + 3 × 20d: %v", fs)
	}
}

// TestViewsAreCurrent checks every view the rules are evaluated on, and the
// window edges of every step, against those found afresh from the state,
// since the engine finds again only what may have changed since the step
// before: over a synthetic year (at once and in steps of 13 hours), and for
// a customer whose events fall on window edges, who is erased and comes
// back.
func TestViewsAreCurrent(t *testing.T) {
	checked := 0
	checkView = func(c *state.Customer, v *rules.View) {
		checked++
		var fresh rules.View
		c.ViewInto(&fresh)
		if !reflect.DeepEqual(*v, fresh) {
			t.Fatalf("customer %s at %s: view\n%+v\nwant\n%+v", c.ID, c.AsOf, *v, fresh)
		}
	}
	checkEdges = func(c *state.Customer, e state.Edges) {
		if fresh := c.NextEdges(); e != fresh {
			t.Fatalf("customer %s at %s: edges %+v, want %+v", c.ID, c.AsOf, e, fresh)
		}
	}
	defer func() { checkView, checkEdges = nil, nil }()
	midnight := t0.Truncate(day)
	del := mk("del", event.Customer, midnight.Add(40*day))
	del.Deleted = true
	edges := []event.Event{
		mk("u", event.Usage, midnight.Add(-time.Hour), value(20)),
		mk("t", event.SupportTicket, midnight.Add(-time.Hour)),
		mk("p", event.Purchase, midnight.Add(-2*time.Hour), amount(500)),
		mk("p7", event.Purchase, midnight.Add(7*day), amount(5)), // usage moves to the prior weeks
		mk("f7", event.Feedback, midnight.Add(7*day-time.Hour), npsScore(3)),
		mk("u30", event.Usage, midnight.Add(30*day-2*time.Hour)),     // the ticket leaves its window
		mk("c35", event.Customer, midnight.Add(35*day), tier("vip")), // the usage leaves its window
		del,
		mk("back", event.Purchase, midnight.Add(41*day), amount(1)),
		mk("late", event.Usage, midnight.Add(39*day)),
	}
	segment := func(spend float64) string {
		switch {
		case spend >= 100:
			return "A"
		case spend >= 10:
			return "B"
		}
		return "C"
	}
	eng := New(rules.Builtin(), segment)
	year := syntheticYear(t, 100)
	if _, _, err := eng.Replay(append(year, edges...), benchEnd); err != nil {
		t.Fatal(err)
	}
	states := map[string]*state.Customer{}
	for i, e := range append(year, edges...) {
		if states[e.CustomerID] == nil {
			states[e.CustomerID] = state.New(e.CustomerID)
		}
		states[e.CustomerID].Receive(e, int64(i))
	}
	for at := benchEnd.Add(-366 * day); !at.After(benchEnd); at = at.Add(13 * time.Hour) {
		for _, c := range states {
			if err := eng.Advance(c, at, func(alerts.Alert) {}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no view checked")
	}
}
