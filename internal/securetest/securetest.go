// Package securetest gives tests the secured servers churnwatch must work
// with: a fresh certificate authority with a server certificate for
// 127.0.0.1 and localhost and a client certificate, and a Kafka-protocol
// broker (kfake) that requires TLS and SASL.
package securetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Certs are PEM files of a CA and of the certificates it signed.
type Certs struct {
	CAFile                        string
	ServerCertFile, ServerKeyFile string // for 127.0.0.1, ::1 and localhost
	ClientCertFile, ClientKeyFile string // for mutual TLS
	pool                          *x509.CertPool
	server                        tls.Certificate
}

// NewCerts makes a CA and its certificates in a temporary directory.
func NewCerts(t testing.TB) *Certs {
	t.Helper()
	dir := t.TempDir()
	caKey, caCert, caDER := issue(t, "churnwatch test CA", nil, nil, func(c *x509.Certificate) {
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	})
	c := &Certs{CAFile: filepath.Join(dir, "ca.pem"), pool: x509.NewCertPool()}
	c.pool.AddCert(caCert)
	write(t, c.CAFile, "CERTIFICATE", caDER)
	serverKey, _, serverDER := issue(t, "localhost", caCert, caKey, func(c *x509.Certificate) {
		c.DNSNames = []string{"localhost"}
		c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	})
	c.ServerCertFile, c.ServerKeyFile = writePair(t, dir, "server", serverDER, serverKey)
	clientKey, _, clientDER := issue(t, "churnwatch", caCert, caKey, func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
	c.ClientCertFile, c.ClientKeyFile = writePair(t, dir, "client", clientDER, clientKey)
	var err error
	if c.server, err = tls.LoadX509KeyPair(c.ServerCertFile, c.ServerKeyFile); err != nil {
		t.Fatal(err)
	}
	return c
}

// ServerTLS is the TLS configuration of a server presenting the server
// certificate; with clientAuth it requires a client certificate of the CA.
func (c *Certs) ServerTLS(clientAuth bool) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{c.server}, MinVersion: tls.VersionTLS12}
	if clientAuth {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, c.pool
	}
	return cfg
}

func issue(t testing.TB, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, edit func(*x509.Certificate)) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
	edit(tmpl)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, der
}

func writePair(t testing.TB, dir, name string, der []byte, key *ecdsa.PrivateKey) (certFile, keyFile string) {
	t.Helper()
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	write(t, certFile, "CERTIFICATE", der)
	write(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile
}

func write(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Broker is what a secured test broker requires.
type Broker struct {
	TLS       *tls.Config // nil: plaintext
	Mechanism string      // "": no SASL
	User      string
	Password  string
	Topics    []string // created with 2 partitions
}

// Start runs a one-broker kfake cluster on 127.0.0.1 until the test ends
// and returns its address. Like a Kafka broker, it answers a PLAIN login
// with a wrong password with SASL_AUTHENTICATION_FAILED.
func (b Broker) Start(t testing.TB) []string {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	if b.TLS != nil {
		opts = append(opts, kfake.TLS(b.TLS))
	}
	if b.Mechanism != "" {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(b.Mechanism, b.User, b.Password))
	}
	if len(b.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(2, b.Topics...))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	if b.Mechanism == "PLAIN" {
		cluster.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
			cluster.KeepControl()
			return refusePlain(req.(*kmsg.SASLAuthenticateRequest), b.User, b.Password)
		})
	}
	return cluster.ListenAddrs()
}

// refusePlain answers a PLAIN login with a wrong password as a Kafka
// broker does, SASL_AUTHENTICATION_FAILED (kfake only closes the
// connection); a right one is left to kfake.
func refusePlain(req *kmsg.SASLAuthenticateRequest, user, pass string) (kmsg.Response, error, bool) {
	parts := strings.SplitN(string(req.SASLAuthBytes), "\x00", 3)
	if len(parts) == 3 && parts[1] == user && parts[2] == pass {
		return nil, nil, false
	}
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
	msg := "Authentication failed: Invalid username or password"
	resp.ErrorMessage = &msg
	return resp, nil, true
}
