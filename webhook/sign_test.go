package webhook

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks specification's published example.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSpecificationVector(t *testing.T) {
	key, err := ParseSecret(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := Sign(vectorID, vectorTimestamp, []byte(vectorBody), key); got != vectorSignature {
		t.Fatalf("Sign = %s, want %s", got, vectorSignature)
	}
	at := time.Unix(vectorTimestamp, 0)
	if err := Verify(vectorID, "1614265330", vectorSignature, []byte(vectorBody), at, 5*time.Minute, key); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestVerify(t *testing.T) {
	key, _ := ParseSecret(vectorSecret)
	other, _ := ParseSecret("whsec_" + strings.Repeat("QUJD", 8))
	at := time.Unix(vectorTimestamp, 0)
	body := []byte(vectorBody)
	both := Sign(vectorID, vectorTimestamp, body, other, key)
	tests := []struct {
		name        string
		id, ts, sig string
		body        []byte
		now         time.Time
		secrets     []Secret
		want        error
	}{
		{"rotation: new and old signatures", vectorID, "1614265330", both, body, at, []Secret{key}, nil},
		{"rotation: receiver holds the other key", vectorID, "1614265330", both, body, at, []Secret{other}, nil},
		{"altered body", vectorID, "1614265330", vectorSignature, []byte(`{"test": 2432232315}`), at, []Secret{key}, ErrSignature},
		{"other id", "msg_other", "1614265330", vectorSignature, body, at, []Secret{key}, ErrSignature},
		{"wrong key", vectorID, "1614265330", vectorSignature, body, at, []Secret{other}, ErrSignature},
		{"unknown version only", vectorID, "1614265330", "v2," + strings.TrimPrefix(vectorSignature, "v1,"), body, at, []Secret{key}, ErrSignature},
		{"too old", vectorID, "1614265330", vectorSignature, body, at.Add(6 * time.Minute), []Secret{key}, ErrTimestamp},
		{"from the future", vectorID, "1614265330", vectorSignature, body, at.Add(-6 * time.Minute), []Secret{key}, ErrTimestamp},
		{"bad timestamp", vectorID, "soon", vectorSignature, body, at, []Secret{key}, ErrTimestamp},
		{"missing id", "", "1614265330", vectorSignature, body, at, []Secret{key}, ErrMissingHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.id, tt.ts, tt.sig, tt.body, tt.now, 5*time.Minute, tt.secrets...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseSecret(t *testing.T) {
	if _, err := ParseSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"); err != nil {
		t.Errorf("secret without prefix: %v", err)
	}
	for _, bad := range []string{"whsec_not base64!", "whsec_c2hvcnQ=", ""} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
		}
	}
	key, _ := ParseSecret(vectorSecret)
	if s := fmt.Sprint(key); strings.Contains(s, "MfKQ") || fmt.Sprintf("%v", key) != "whsec_…" {
		t.Errorf("a secret prints as %q", s)
	}
}
