package admin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const testToken = "t0ken-of-the-admin-api-0123456789"

// route is one request of the API.
type route struct{ method, path, body string }

// protectedRoutes read customer data or change state.
var protectedRoutes = []route{
	{"GET", "/api/customers/known", ""},
	{"GET", "/api/alerts?status=firing", ""},
	{"GET", "/api/silences", ""},
	{"POST", "/api/silences", `{"customer_id":"c1","duration":"1h","comment":"x"}`},
	{"DELETE", "/api/silences/s1", ""},
	{"GET", "/api/webhooks", ""},
	{"POST", "/api/webhooks/crm/enable", ""},
	{"GET", "/api/webhooks/dead-letters", ""},
	{"POST", "/api/webhooks/dead-letters/replay", `{"endpoint":"crm"}`},
	{"GET", "/api/webhooks/suppressed", ""},
}

// openRoutes are aggregate or operational.
var openRoutes = []route{{"GET", "/healthz", ""}, {"GET", "/readyz", ""}, {"GET", "/metrics", ""}, {"GET", "/api/kpis", ""}}

func authAPI(token string, unauthenticated bool) http.Handler {
	return API{
		Source: &fake{}, Deliveries: &fakeDeliveries{}, Token: token, Unauthenticated: unauthenticated,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("churnwatch_up 1\n")) }),
		KPIs:    func(context.Context) (any, error) { return map[string]int{"customers": 1}, nil },
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}.Handler()
}

func call(h http.Handler, rt route, authorization string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(rt.method, rt.path, strings.NewReader(rt.body))
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestAuth: every route with customer data or that changes state answers
// 401 with a Bearer challenge without the right token, and works with it;
// health, readiness, metrics and KPIs need none.
func TestAuth(t *testing.T) {
	h := authAPI(testToken, false)
	for _, rt := range protectedRoutes {
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + testToken + "x", "Basic " + testToken, testToken} {
			rec := call(h, rt, auth)
			if rec.Code != http.StatusUnauthorized || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s with %q: %d %q, want 401 with a Bearer challenge", rt.method, rt.path, auth, rec.Code, rec.Header().Get("WWW-Authenticate"))
			}
		}
		for _, auth := range []string{"Bearer " + testToken, "bearer " + testToken} {
			if rec := call(h, rt, auth); rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden || rec.Code >= 500 {
				t.Errorf("%s %s with the token (%q): %d %s", rt.method, rt.path, auth, rec.Code, rec.Body)
			}
		}
	}
	for _, rt := range openRoutes {
		if rec := call(h, rt, ""); rec.Code != http.StatusOK {
			t.Errorf("%s %s without a token: %d, want 200", rt.method, rt.path, rec.Code)
		}
	}
	if rec := call(h, protectedRoutes[0], "Bearer wrong"); !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("a wrong token: challenge %q lacks invalid_token", rec.Header().Get("WWW-Authenticate"))
	}
}

// TestAuthWithoutToken: with no token configured the protected routes are
// closed (403, saying which setting opens them) unless unauthenticated
// access was asked for.
func TestAuthWithoutToken(t *testing.T) {
	closed, open := authAPI("", false), authAPI("", true)
	for _, rt := range protectedRoutes {
		rec := call(closed, rt, "Bearer anything")
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "admin_token (CHURNWATCH_ADMIN_TOKEN)") {
			t.Errorf("%s %s without a configured token: %d %s, want 403 naming admin_token", rt.method, rt.path, rec.Code, rec.Body)
		}
		if rec := call(open, rt, ""); rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden || rec.Code >= 500 {
			t.Errorf("%s %s unauthenticated: %d %s", rt.method, rt.path, rec.Code, rec.Body)
		}
	}
	for _, rt := range openRoutes {
		if rec := call(closed, rt, ""); rec.Code != http.StatusOK {
			t.Errorf("%s %s: %d, want 200", rt.method, rt.path, rec.Code)
		}
	}
}

func TestTokenEqual(t *testing.T) {
	if !tokenEqual(testToken, testToken) || tokenEqual(testToken, testToken[:10]) || tokenEqual("", testToken) || tokenEqual(testToken+" ", testToken) {
		t.Error("tokenEqual")
	}
}
