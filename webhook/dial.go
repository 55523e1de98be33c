package webhook

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// AddressError is a connection refused because its address is not
// public; deny_private_addresses asked for that.
type AddressError struct {
	Addr netip.Addr
	Kind string // "loopback", "private", …
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("refused to connect to %s, a %s address (deny_private_addresses is on)", e.Addr, e.Kind)
}

// shared is 100.64.0.0/10, the carrier-grade NAT range, internal to many
// clouds; thisNet is 0.0.0.0/8.
var (
	shared  = netip.MustParsePrefix("100.64.0.0/10")
	thisNet = netip.MustParsePrefix("0.0.0.0/8")
)

// nonPublic says which kind of non-public address a is; "" for a public
// one.
func nonPublic(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsUnspecified() || thisNet.Contains(a):
		return "unspecified"
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsPrivate() || shared.Contains(a):
		return "private"
	case a.IsMulticast() || a.IsInterfaceLocalMulticast():
		return "multicast"
	}
	return ""
}

// publicOnly is a net.Dialer Control function: it runs on the address
// actually dialled, after name resolution, so a name that resolves (or
// later re-resolves) to an internal address is refused too.
func publicOnly(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refused to connect to %q: not an IP address and port (deny_private_addresses is on)", address)
	}
	if kind := nonPublic(ap.Addr()); kind != "" {
		return &AddressError{Addr: ap.Addr().Unmap(), Kind: kind}
	}
	return nil
}

// NewHTTPClient returns the client that sends webhook attempts: it follows
// no redirects (a 3xx is the endpoint's answer) and, with denyPrivate,
// connects to public addresses only and ignores HTTP(S)_PROXY, whose
// address would be the one checked.
func NewHTTPClient(denyPrivate bool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if denyPrivate {
		d.Control = publicOnly
		t.Proxy = nil
	}
	t.DialContext = d.DialContext
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// defaultClient is the client of a Client without one.
var defaultClient = NewHTTPClient(false)
