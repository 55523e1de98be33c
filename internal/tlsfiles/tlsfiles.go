// Package tlsfiles builds a client TLS configuration from PEM files named by
// settings: a CA bundle to trust, a client certificate and key for mutual
// TLS, and the switch that turns verification off.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Files names the PEM files of one TLS client. Errors name the settings
// Prefix+"_ca_file", Prefix+"_cert_file" and Prefix+"_key_file".
type Files struct {
	Prefix             string // e.g. "kafka_tls"
	CAFile             string // CAs to trust; empty: the system's
	CertFile, KeyFile  string // client certificate for mutual TLS; both or neither
	InsecureSkipVerify bool   // accept any server certificate (testing only)
}

// Set reports whether any file or the skip switch is given.
func (f Files) Set() bool {
	return f.CAFile != "" || f.CertFile != "" || f.KeyFile != "" || f.InsecureSkipVerify
}

// Config reads the files into a TLS 1.2+ client configuration.
func (f Files) Config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: f.InsecureSkipVerify} //nolint:gosec // an explicit setting
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s_ca_file: %w", f.Prefix, err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s_ca_file %s: no PEM certificate in it", f.Prefix, f.CAFile)
		}
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, fmt.Errorf("%s_cert_file and %s_key_file: give both (a client certificate and its key) or neither", f.Prefix, f.Prefix)
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s_cert_file %s, %s_key_file %s: %w", f.Prefix, f.CertFile, f.Prefix, f.KeyFile, unwrapPath(err))
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// unwrapPath drops the path an *os.PathError repeats.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
