package webhook

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/alerts"
)

func testSecret(t *testing.T, fill string) Secret {
	t.Helper()
	s, err := ParseSecret("whsec_" + strings.Repeat(fill, 8))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signedRequest builds a delivery as Client.Deliver sends it.
func signedRequest(id string, ts time.Time, body []byte, secrets ...Secret) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
	r.Header.Set("Content-Type", ContentType)
	r.Header.Set(HeaderID, id)
	r.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	r.Header.Set(HeaderSignature, Sign(id, ts.Unix(), body, secrets...))
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestSink(t *testing.T) {
	oldKey, newKey, wrongKey := testSecret(t, "QUJD"), testSecret(t, "REVG"), testSecret(t, "R0hJ")
	now := time.Date(2026, 11, 25, 12, 0, 1, 0, time.UTC)
	var got []Delivery
	s := &Sink{
		Secrets:    []Secret{newKey, oldKey},
		Now:        func() time.Time { return now },
		OnDelivery: func(d Delivery) { got = append(got, d) },
	}
	ce, ev := testAlert(t, nil)

	tests := []struct {
		name   string
		req    *http.Request
		status int
		reason string
	}{
		{"signed with the new key", signedRequest(ev.ID, now, ce, newKey), 204, ""},
		{"signed with the old key (rotation)", signedRequest("msg_2", now.Add(-4*time.Minute), []byte(`{"hello":1}`), oldKey), 204, ""},
		{"signed with both keys", signedRequest("msg_3", now.Add(4*time.Minute), ce, wrongKey, oldKey), 204, ""},
		{"duplicate id", signedRequest(ev.ID, now, ce, newKey), 204, ""},
		{"wrong key", signedRequest("msg_4", now, ce, wrongKey), 401, "no matching signature"},
		{"stale timestamp", signedRequest("msg_5", now.Add(-6*time.Minute), ce, newKey), 401, "timestamp outside the tolerance"},
		{"body altered", func() *http.Request {
			r := signedRequest("msg_6", now, ce, newKey)
			r.Body = http.NoBody
			return r
		}(), 401, "no matching signature"},
		{"no signature", func() *http.Request {
			r := signedRequest("msg_7", now, ce, newKey)
			r.Header.Del(HeaderSignature)
			return r
		}(), 401, "missing"},
		{"bad timestamp", func() *http.Request {
			r := signedRequest("msg_8", now, ce, newKey)
			r.Header.Set(HeaderTimestamp, "yesterday")
			return r
		}(), 401, "timestamp"},
		{"GET", httptest.NewRequest(http.MethodGet, "/hook", nil), 405, "only POST"},
		{"too large", signedRequest("msg_9", now, bytes.Repeat([]byte("x"), MaxSinkBody+1), newKey), 413, "limit"},
		{"too large, unknown length", func() *http.Request {
			r := signedRequest("msg_10", now, bytes.Repeat([]byte("x"), MaxSinkBody+1), newKey)
			r.ContentLength = -1
			return r
		}(), 413, "limit"},
	}
	for _, tt := range tests {
		w := serve(s, tt.req)
		if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.reason) {
			t.Errorf("%s: %d %q, want %d %q", tt.name, w.Code, w.Body.String(), tt.status, tt.reason)
		}
	}
	if w := serve(s, httptest.NewRequest(http.MethodPut, "/hook", nil)); w.Header().Get("Allow") != "POST" {
		t.Errorf("405 without Allow: POST")
	}

	wantSeen := map[string]int{ev.ID: 2, "msg_2": 1, "msg_3": 1}
	if seen := s.Seen(); fmt.Sprint(seen) != fmt.Sprint(wantSeen) {
		t.Errorf("Seen = %v, want %v", seen, wantSeen)
	}
	if len(got) != 4 {
		t.Fatalf("%d deliveries reported, want 4", len(got))
	}
	first, dup := got[0], got[3]
	if first.ID != ev.ID || first.Duplicate || !first.Timestamp.Equal(now) || !bytes.Equal(first.Body, ce) {
		t.Errorf("first delivery %+v", first)
	}
	if first.Event == nil || first.Event.Data == nil || first.Event.Data.Rule != "vip-no-purchase-180d" || first.Event.Data.CustomerID != "c-42" {
		t.Errorf("first delivery event %+v", first.Event)
	}
	if !dup.Duplicate || dup.ID != ev.ID {
		t.Errorf("duplicate delivery %+v", dup)
	}
	if got[1].Event != nil {
		t.Errorf("a body that is not a CloudEvent has Event %+v", got[1].Event)
	}

	wantLine := "2026-11-25 12:00:01  ✓ signed  " + ev.ID + "  vip-no-purchase-180d c-42 firing"
	if l := first.Line(); l != wantLine {
		t.Errorf("Line\n got %q\nwant %q", l, wantLine)
	}
	if l := dup.Line(); l != wantLine+"  (duplicate)" {
		t.Errorf("duplicate Line %q", l)
	}
	if l := got[1].Line(); !strings.HasSuffix(l, "msg_2  11 bytes, not an alert") {
		t.Errorf("non-alert Line %q", l)
	}
}

func TestSinkReject(t *testing.T) {
	var reasons []string
	s := &Sink{
		Secrets:  []Secret{testSecret(t, "QUJD")},
		OnReject: func(r *http.Request, status int, err error) { reasons = append(reasons, fmt.Sprint(status, " ", err)) },
	}
	serve(s, signedRequest("msg_1", time.Now(), []byte("{}"), testSecret(t, "REVG")))
	if len(reasons) != 1 || reasons[0] != "401 "+ErrSignature.Error() {
		t.Errorf("OnReject got %q", reasons)
	}
	// No secrets: nothing verifies.
	if w := serve(&Sink{}, signedRequest("msg_1", time.Now(), []byte("{}"), testSecret(t, "QUJD"))); w.Code != 401 {
		t.Errorf("sink without secrets answered %d", w.Code)
	}
}

// TestSinkServer posts to a Sink behind a real server, concurrently, with
// redeliveries.
func TestSinkServer(t *testing.T) {
	key := testSecret(t, "QUJD")
	var mu sync.Mutex
	deliveries := 0
	s := &Sink{Secrets: []Secret{key}, OnDelivery: func(d Delivery) {
		mu.Lock() // OnDelivery calls do not overlap; the race detector checks it
		deliveries++
		mu.Unlock()
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			ce, ev := testAlert(t, func(a *alerts.Alert) {
				a.CustomerID = fmt.Sprintf("c-%d", i%10)
				a.AlertID = alerts.ID(a.Rule, a.CustomerID, a.Time)
			})
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, bytes.NewReader(ce))
			if err != nil {
				t.Error(err)
				return
			}
			ts := time.Now().Unix()
			req.Header.Set(HeaderID, ev.ID)
			req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
			req.Header.Set(HeaderSignature, Sign(ev.ID, ts, ce, key))
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Errorf("delivery %d: %s", i, resp.Status)
			}
		})
	}
	wg.Wait()
	seen := s.Seen()
	if len(seen) != 10 || deliveries != 20 {
		t.Fatalf("%d ids, %d deliveries: %v", len(seen), deliveries, seen)
	}
	for id, n := range seen {
		if n != 2 {
			t.Errorf("%s seen %d times", id, n)
		}
	}
}
