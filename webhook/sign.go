// Package webhook delivers alerts to CRM endpoints as Standard Webhooks
// (https://www.standardwebhooks.com): signed HTTP POSTs whose
// webhook-signature is "v1,<base64 HMAC-SHA256 of id.timestamp.body>".
// This file holds the signing and its verification; delivery, retries and
// the dispatcher build on it.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of a Standard Webhooks request.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix marks a Standard Webhooks secret.
const secretPrefix = "whsec_"

// Secret is a signing key.
type Secret []byte

// ParseSecret reads "whsec_<base64>" (the prefix may be left out). The key
// must be 24 to 64 bytes, as the specification recommends.
func ParseSecret(s string) (Secret, error) {
	raw := strings.TrimPrefix(strings.TrimSpace(s), secretPrefix)
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, errors.New("webhook secret: not whsec_ followed by base64")
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("webhook secret: key of %d bytes, want 24 to 64", len(key))
	}
	return key, nil
}

// String masks the key, so a secret never reaches a log.
func (s Secret) String() string { return secretPrefix + "…" }

// Sign returns the webhook-signature header for a message: one "v1,<sig>"
// per secret, separated by spaces, so receivers holding either the old or
// the new secret accept it during a rotation.
func Sign(id string, timestamp int64, body []byte, secrets ...Secret) string {
	sigs := make([]string, len(secrets))
	for i, s := range secrets {
		sigs[i] = "v1," + base64.StdEncoding.EncodeToString(mac(s, id, timestamp, body))
	}
	return strings.Join(sigs, " ")
}

func mac(key Secret, id string, timestamp int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(strconv.FormatInt(timestamp, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verification errors.
var (
	ErrMissingHeaders = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrTimestamp      = errors.New("webhook: timestamp outside the tolerance")
	ErrSignature      = errors.New("webhook: no matching signature")
)

// Verify checks a received message against secrets: its timestamp must be
// within tolerance of now and one of its v1 signatures must match one of
// the secrets (compared in constant time).
func Verify(id, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration, secrets ...Secret) error {
	if id == "" || timestamp == "" || signature == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	for _, s := range secrets {
		want := mac(s, id, ts, body)
		for _, part := range strings.Fields(signature) {
			version, sig, ok := strings.Cut(part, ",")
			if !ok || version != "v1" {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(sig)
			if err == nil && hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return ErrSignature
}
