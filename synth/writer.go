package synth

import (
	"math/rand/v2"
	"strconv"
	"time"
	"unicode/utf8"
)

// writer turns events into Messages. It writes the JSON by hand into an
// arena shared by many messages (the values of a year of history are a few
// tens of megabytes), in a fixed field order, and decides how each message
// is presented: with or without the optional type field, and keyed by the
// customer id or by something else. Those choices come from their own
// random stream, so a customer's story is the same whatever OtherKeys says.
type writer struct {
	r          *rand.Rand // presentation: type field, keys
	start, end time.Time  // events outside the window are dropped
	otherKeys  float64
	typeShare  int           // percent of messages that carry the type field
	layout     string        // of occurred_at
	prec       time.Duration // occurred_at is truncated to this

	cust     string // customer id of the events being written
	idPrefix []byte // event id = idPrefix + sequence number
	seq      int

	buf   []byte
	mark  int
	topic string
	at    time.Time
	out   []Message
}

const arenaChunk = 256 << 10

// begin starts the message of one event: its id, customer and time.
func (w *writer) begin(topic string, at time.Time) {
	if cap(w.buf)-len(w.buf) < 1024 {
		w.buf = make([]byte, 0, arenaChunk)
	}
	at = at.Truncate(w.prec)
	w.mark, w.topic, w.at = len(w.buf), topic, at
	w.seq++
	b := append(w.buf, `{"id":"`...)
	b = append(b, w.idPrefix...)
	b = strconv.AppendInt(b, int64(w.seq), 10)
	b = append(b, `","customer_id":`...)
	b = appendString(b, w.cust)
	b = append(b, `,"occurred_at":"`...)
	b = at.AppendFormat(b, w.layout)
	b = append(b, '"')
	if w.r.IntN(100) < w.typeShare {
		b = append(b, `,"type":"`...)
		b = append(b, typeOf(topic)...)
		b = append(b, '"')
	}
	w.buf = b
}

func (w *writer) key(k string) {
	w.buf = append(w.buf, ',')
	w.buf = appendString(w.buf, k)
	w.buf = append(w.buf, ':')
}

func (w *writer) str(k, v string) {
	w.key(k)
	w.buf = appendString(w.buf, v)
}

func (w *writer) int(k string, v int) {
	w.key(k)
	w.buf = strconv.AppendInt(w.buf, int64(v), 10)
}

func (w *writer) money(k string, v float64) {
	w.key(k)
	w.buf = strconv.AppendFloat(w.buf, v, 'f', 2, 64)
}

func (w *writer) time(k string, t time.Time) {
	w.key(k)
	w.buf = append(w.buf, '"')
	w.buf = t.AppendFormat(w.buf, w.layout)
	w.buf = append(w.buf, '"')
}

// object writes pairs (key, value, key, value…) as a JSON object of strings.
func (w *writer) object(k string, pairs []string) {
	w.key(k)
	w.buf = append(w.buf, '{')
	for i := 0; i+1 < len(pairs); i += 2 {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = appendString(w.buf, pairs[i])
		w.buf = append(w.buf, ':')
		w.buf = appendString(w.buf, pairs[i+1])
	}
	w.buf = append(w.buf, '}')
}

// finish ends the message. upstream is the id an upstream system might
// key it by instead of the customer id (an order or ticket id), or "".
// It reports whether the event fell inside the window and was kept.
func (w *writer) finish(upstream string) bool {
	if w.at.Before(w.start) || w.at.After(w.end) {
		w.buf = w.buf[:w.mark]
		w.seq--
		return false
	}
	w.buf = append(w.buf, '}')
	value := w.buf[w.mark:len(w.buf):len(w.buf)]
	// Always two draws, so that the values do not depend on OtherKeys.
	u, k := w.r.Float64(), w.r.IntN(6)
	var key []byte
	switch {
	case u >= w.otherKeys:
		key = w.bytes(w.cust)
	case upstream != "" && k < 4:
		key = w.bytes(upstream)
	case k%2 == 0:
		key = nil
	default:
		key = w.buf[len(w.buf):len(w.buf):len(w.buf)]
	}
	w.out = append(w.out, Message{Topic: w.topic, Key: key, Value: value, At: w.at})
	return true
}

// bytes copies s into the arena.
func (w *writer) bytes(s string) []byte {
	n := len(w.buf)
	w.buf = append(w.buf, s...)
	return w.buf[n:len(w.buf):len(w.buf)]
}

// The events of contract §1.

func (w *writer) profile(at time.Time, tier string, signedUp time.Time, attrs []string) bool {
	w.begin(TopicCustomers, at)
	if tier != "" {
		w.str("tier", tier)
	}
	if !signedUp.IsZero() {
		w.time("signed_up_at", signedUp)
	}
	if attrs != nil {
		w.object("attributes", attrs)
	}
	return w.finish("")
}

func (w *writer) purchase(at time.Time, amount float64, currency, order string) bool {
	w.begin(TopicPurchases, at)
	w.money("amount", amount)
	w.str("currency", currency)
	w.str("order_id", order)
	return w.finish(order)
}

// usage reports sessions; with sessions < 0 the value is left to its
// default (one session).
func (w *writer) usage(at time.Time, sessions int, explicitMetric bool) bool {
	w.begin(TopicUsage, at)
	if explicitMetric {
		w.str("metric", "sessions")
	}
	if sessions >= 0 {
		w.int("value", sessions)
	}
	return w.finish("")
}

// ticket writes one status change; priority "" and csat 0 are left out.
func (w *writer) ticket(at time.Time, id, status, priority string, csat int, channel string) bool {
	w.begin(TopicTickets, at)
	w.str("ticket_id", id)
	w.str("status", status)
	if priority != "" {
		w.str("priority", priority)
	}
	if csat > 0 {
		w.int("csat", csat)
	}
	if channel != "" {
		w.str("channel", channel) // not in the contract: ignored, as upstream extras are
	}
	return w.finish(id)
}

func (w *writer) feedback(at time.Time, kind string, score int, comment string) bool {
	w.begin(TopicFeedback, at)
	w.str("kind", kind)
	w.int("score", score)
	if comment != "" {
		w.str("comment", comment)
	}
	return w.finish("")
}

func typeOf(topic string) string {
	switch topic {
	case TopicPurchases:
		return "purchase"
	case TopicTickets:
		return "support_ticket"
	case TopicUsage:
		return "usage"
	case TopicCustomers:
		return "customer"
	case TopicFeedback:
		return "feedback"
	}
	return ""
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x80 {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}
