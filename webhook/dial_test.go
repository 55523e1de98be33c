package webhook

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestNonPublic(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1":        "loopback",
		"::1":              "loopback",
		"::ffff:127.0.0.2": "loopback",
		"10.1.2.3":         "private",
		"172.16.0.1":       "private",
		"192.168.1.1":      "private",
		"fd00::1":          "private",
		"100.64.0.1":       "private",
		"169.254.169.254":  "link-local",
		"fe80::1":          "link-local",
		"0.0.0.0":          "unspecified",
		"::":               "unspecified",
		"0.1.2.3":          "unspecified",
		"239.1.2.3":        "multicast",
		"93.184.216.34":    "",
		"2606:4700::1111":  "",
		"172.32.0.1":       "",
	} {
		if got := nonPublic(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
}

// TestDenyPrivateAddresses: with deny_private_addresses the client does
// not connect to a loopback receiver, whether the URL names the address or
// a name that resolves to it, and the attempt is dead-lettered at once with
// the reason; without it the same receiver gets the delivery.
func TestDenyPrivateAddresses(t *testing.T) {
	key, _ := ParseSecret(vectorSecret)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	byName := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	deny := &Client{HTTP: NewHTTPClient(true)}
	for _, u := range []string{srv.URL, byName} {
		ep := &Endpoint{Name: "internal", URL: u + "/secret-path", Secrets: []Secret{key}, Timeout: 5 * time.Second}
		r := deny.Deliver(context.Background(), ep, Message{ID: "a-firing", Body: []byte(`{}`)})
		var refused *AddressError
		if r.Outcome != DeadLetter || !errors.As(r.Err, &refused) || refused.Kind != "loopback" {
			t.Fatalf("%s: %v %v, want a dead letter refused as loopback", u, r.Outcome, r.Err)
		}
		if msg := r.Err.Error(); !strings.Contains(msg, "a loopback address (deny_private_addresses is on)") || strings.Contains(msg, "secret-path") {
			t.Errorf("reason %q: want the address and the setting, not the URL path", msg)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("the receiver got %d requests, want none", hits.Load())
	}
	allow := &Client{HTTP: NewHTTPClient(false)}
	ep := &Endpoint{Name: "sink", URL: byName, Secrets: []Secret{key}, Timeout: 5 * time.Second}
	if r := allow.Deliver(context.Background(), ep, Message{ID: "a-firing", Body: []byte(`{}`)}); r.Outcome != Delivered || hits.Load() != 1 {
		t.Errorf("without deny_private_addresses: %v %v, %d requests", r.Outcome, r.Err, hits.Load())
	}
}

func TestDenyPrivateConfig(t *testing.T) {
	lookup := func(string) (string, bool) { return "", false }
	file := func(deny bool, url string) []byte {
		s := "endpoints:\n  - name: a\n    url: " + url + "\n    secret: " + vectorSecret + "\n"
		if deny {
			s += "deny_private_addresses: true\n"
		}
		return []byte(s)
	}
	cfg, err := LoadConfig("w.yaml", file(false, "http://127.0.0.1:9000/"), lookup)
	if err != nil || cfg.DenyPrivate {
		t.Fatalf("default: %v, deny %v; want off (the demo and the sink are on localhost)", err, cfg != nil && cfg.DenyPrivate)
	}
	if cfg, err := LoadConfig("w.yaml", file(true, "https://crm.example.com/hook"), lookup); err != nil || !cfg.DenyPrivate {
		t.Fatalf("on with a name: %v", err)
	}
	for _, u := range []string{"http://10.0.0.5/hook", "http://[::1]:8080/", "http://169.254.169.254/latest"} {
		_, err := LoadConfig("w.yaml", file(true, u), lookup)
		if err == nil || !strings.Contains(err.Error(), "refused by deny_private_addresses") {
			t.Errorf("%s: %v, want a refusal", u, err)
		}
	}
}
