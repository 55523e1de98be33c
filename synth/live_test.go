package synth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/churnwatch/churnwatch/event"
)

// runLive runs Live for d of fake time and returns what it emitted.
func runLive(t *testing.T, cfg Config, rate float64, d time.Duration) []Message {
	t.Helper()
	var msgs []Message
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), d)
		defer cancel()
		err := Live(ctx, cfg, rate, time.Now, func(m Message) error {
			msgs = append(msgs, m)
			return nil
		})
		if err != nil {
			t.Errorf("Live: %v", err)
		}
		if ctx.Err() == nil {
			t.Error("Live returned before its context was done")
		}
	})
	return msgs
}

func TestLiveRate(t *testing.T) {
	for _, rate := range []float64{0.5, 5, 20, 250, 2000} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			const d = 20 * time.Second
			msgs := runLive(t, year(300, 31), rate, d)
			want := rate * d.Seconds()
			if got := float64(len(msgs)); math.Abs(got-want) > 0.02*want+1 {
				t.Errorf("%d messages in %s at %g/s, want about %.0f", len(msgs), d, rate, want)
			}
			ids := map[string]bool{}
			for _, m := range msgs {
				e, err := decode(m, m.At)
				if err != nil {
					t.Fatalf("%s: %v", m.Value, err)
				}
				if !e.OccurredAt.Equal(m.At) || ids[e.ID] {
					t.Fatalf("occurred_at %s, At %s, id %s seen before: %v", e.OccurredAt, m.At, e.ID, ids[e.ID])
				}
				ids[e.ID] = true
			}
		})
	}
}

// TestLiveRealTime runs Live on the real clock for a moment.
func TestLiveRealTime(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	n := 0
	began := time.Now()
	err := Live(ctx, year(100, 32), 200, time.Now, func(m Message) error {
		if _, err := decode(m, time.Now()); err != nil {
			t.Errorf("%s: %v", m.Value, err)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("Live took %s to stop", took)
	}
	if n < 20 || n > 80 {
		t.Errorf("%d messages in 300 ms at 200/s, want about 60", n)
	}
}

func TestLiveStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		n := 0
		err := Live(ctx, year(50, 33), 1000, time.Now, func(Message) error {
			if n++; n == 50 {
				cancel()
			}
			return nil
		})
		if err != nil || n != 50 {
			t.Errorf("after cancel: err %v, %d messages, want nil and 50", err, n)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("broker gone")
		n := 0
		err := Live(t.Context(), year(50, 33), 1000, time.Now, func(Message) error {
			if n++; n == 3 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) || n != 3 {
			t.Errorf("emit failing: err %v after %d messages, want %v after 3", err, n, boom)
		}
	})
}

func TestLiveInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		rate float64
	}{
		{"no customers", year(0, 1), 10},
		{"zero rate", year(10, 1), 0},
		{"negative rate", year(10, 1), -1},
		{"NaN rate", year(10, 1), math.NaN()},
		{"infinite rate", year(10, 1), math.Inf(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			called := false
			err := Live(t.Context(), tc.cfg, tc.rate, time.Now, func(Message) error { called = true; return nil })
			if err == nil || called {
				t.Errorf("err %v, emitted %v; want an error and nothing emitted", err, called)
			}
		})
	}
}

// TestLiveStories: in live traffic every customer keeps to their story.
func TestLiveStories(t *testing.T) {
	cfg := year(200, 34)
	cfg.BadEvery, cfg.OtherKeys = 100, 0.1
	msgs := runLive(t, cfg, 500, 60*time.Second)
	perArch := map[Archetype]int{}
	bad := 0
	open := map[string]bool{}
	opened := map[string]int{}
	for _, m := range msgs {
		e, err := decode(m, m.At)
		if err != nil {
			bad++
			continue
		}
		var i int
		fmt.Sscanf(e.CustomerID, "cust-%d", &i)
		a := ArchetypeOf(cfg, i)
		perArch[a]++
		switch {
		case a == StalledSignup && e.Type != event.Customer,
			a == VIPLapsing && e.Type == event.Purchase,
			a != Detractor && e.Type == event.Feedback && e.Kind == event.NPS && e.Score <= 6:
			t.Errorf("%s customer %d: %s", a, i, m.Value)
		}
		if e.Type == event.SupportTicket {
			switch e.Status {
			case event.Opened:
				open[e.TicketID] = true
				opened[e.CustomerID]++
				if a != TicketStorm && opened[e.CustomerID] > 1 {
					t.Errorf("%s customer %d opened %d tickets in a minute", a, i, opened[e.CustomerID])
				}
			case event.Solved, event.Closed:
				if !open[e.TicketID] {
					t.Errorf("ticket %s %s before it was opened", e.TicketID, e.Status)
				}
				delete(open, e.TicketID)
			}
		}
	}
	t.Logf("%d messages, %d bad, by archetype %v", len(msgs), bad, perArch)
	if share := float64(bad) * 100 / float64(len(msgs)); share < 0.7 || share > 1.3 {
		t.Errorf("%d bad of %d, want about 1 in 100", bad, len(msgs))
	}
	for _, a := range []Archetype{Regular, Loyal, TicketStorm, Detractor} {
		if perArch[a] < len(msgs)/20 {
			t.Errorf("only %d messages of %s customers", perArch[a], a)
		}
	}
	storms := 0
	for id, n := range opened {
		var i int
		fmt.Sscanf(id, "cust-%d", &i)
		if n >= 3 && ArchetypeOf(cfg, i) == TicketStorm {
			storms++
		}
	}
	if storms == 0 {
		t.Error("no ticket storm in live traffic")
	}
}
