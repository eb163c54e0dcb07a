package ssf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Egress says where push delivery may connect. A receiver chooses a push
// stream's endpoint_url and the Authorization header writ sends with it,
// so without a check writ could be made to POST into its own network: the
// cloud metadata service, a database on loopback, an admin port. By
// default every address that is not public unicast is refused, on the
// address actually dialled (a net.Dialer Control, after DNS resolution),
// so a name that resolves, or re-resolves, to a forbidden address gets
// nowhere. Receivers on a private network are allowed explicitly.
type Egress struct {
	// Allow lists address ranges push may reach although they are not
	// public: e.g. 10.1.2.0/24 for receivers on a private network.
	Allow []netip.Prefix
	// AllowHosts lists host names push may reach whatever they resolve
	// to (exact, case-insensitive; no wildcards).
	AllowHosts []string
}

// ParseEgress reads an allow-list of CIDRs ("10.0.0.0/8"), addresses
// ("10.1.2.3") and host names ("feed.internal.example").
func ParseEgress(entries []string) (Egress, error) {
	var e Egress
	for _, s := range entries {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			return Egress{}, errors.New("an empty entry")
		case strings.Contains(s, "/"):
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return Egress{}, fmt.Errorf("%q is not a CIDR range: %v", s, err)
			}
			e.Allow = append(e.Allow, p.Masked())
		default:
			if a, err := netip.ParseAddr(s); err == nil {
				e.Allow = append(e.Allow, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
				continue
			}
			if strings.ContainsAny(s, ":*?[]@ ") {
				return Egress{}, fmt.Errorf("%q is neither a CIDR range, an address nor a host name", s)
			}
			e.AllowHosts = append(e.AllowHosts, strings.ToLower(strings.TrimSuffix(s, ".")))
		}
	}
	return e, nil
}

// metadata are cloud metadata services at addresses a plain
// public/private test does not catch (most sit at 169.254.169.254, which
// is link-local).
var metadata = []netip.Prefix{
	netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud
	netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS over IPv6
}

// forbiddenRanges are special-purpose ranges (RFC 6890 and successors)
// that are not covered by netip's predicates.
var forbiddenRanges = []struct {
	p   netip.Prefix
	why string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified (this-network) address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "a protocol-assignment address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a local NAT64 address"},
	{netip.MustParsePrefix("2001::/23"), "an IETF protocol-assignment address"},
	{netip.MustParsePrefix("2002::/16"), "a 6to4 address"},
}

// ForbiddenAddr says why push may not reach a, or "" when a is a public
// unicast address. An IPv4 address inside IPv6 (mapped, or NAT64 at
// 64:ff9b::/96) is judged as the IPv4 address it carries.
func ForbiddenAddr(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		if nat64 := netip.MustParsePrefix("64:ff9b::/96"); nat64.Contains(a) {
			b := a.As16()
			a = netip.AddrFrom4([4]byte(b[12:]))
		}
	}
	for _, m := range metadata {
		if m.Contains(a) {
			return "a cloud metadata address"
		}
	}
	switch {
	case !a.IsValid():
		return "not an address"
	case a == netip.AddrFrom4([4]byte{169, 254, 169, 254}):
		return "a cloud metadata address"
	case a.IsUnspecified():
		return "an unspecified address"
	case a.IsLoopback():
		return "a loopback address"
	case a.IsLinkLocalUnicast():
		return "a link-local address"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "a multicast address"
	case a.IsPrivate():
		return "a private address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address"
	}
	for _, r := range forbiddenRanges {
		if r.p.Contains(a) {
			return r.why
		}
	}
	return ""
}

// allowedAddr reports whether push may connect to a.
func (e Egress) allowedAddr(a netip.Addr) error {
	a = a.Unmap()
	for _, p := range e.Allow {
		if p.Contains(a) {
			return nil
		}
	}
	if why := ForbiddenAddr(a); why != "" {
		return fmt.Errorf("push may not connect to %s: it is %s (allow it in the push allow-list if a receiver really lives there)", a, why)
	}
	return nil
}

func (e Egress) allowedHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, h := range e.AllowHosts {
		if h == host {
			return true
		}
	}
	return false
}

// CheckURL is a push endpoint check (Options.CheckEndpoint): https, and
// a host that is not a forbidden address written literally, nor a
// loopback name. Names are checked again, on what they resolve to, when
// the push client dials.
func (e Egress) CheckURL(u *url.URL) error {
	if err := RequireHTTPS(u); err != nil {
		return err
	}
	host := u.Hostname()
	if e.allowedHost(host) {
		return nil
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		return e.allowedAddr(a)
	}
	if isLoopbackName(host) {
		return fmt.Errorf("push may not connect to %s: it names this host", host)
	}
	if strings.Trim(host, "0123456789.") == "" || strings.HasPrefix(strings.ToLower(host), "0x") {
		// 2130706433 or 0x7f.1 are addresses to some resolvers.
		return fmt.Errorf("host %q looks like an address in an unusual notation; write the address plainly", host)
	}
	return nil
}

func isLoopbackName(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost") || h == "localhost.localdomain"
}

// Client returns the HTTP client push delivery uses: it dials only
// addresses e allows (checked on the resolved address, in the dialer's
// Control), uses no proxy from the environment (a proxy would dial on its
// behalf, unchecked), follows no redirects and gives up after timeout.
func (e Egress) Client(timeout time.Duration) *http.Client {
	checked := &net.Dialer{Timeout: timeout, Control: e.control}
	plain := &net.Dialer{Timeout: timeout}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err == nil && e.allowedHost(host) {
				return plain.DialContext(ctx, network, addr)
			}
			return checked.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: timeout,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// control refuses a connection to a forbidden address; it runs after name
// resolution, once per address tried.
func (e Egress) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("push: cannot check the address %q: %v", address, err)
	}
	return e.allowedAddr(ap.Addr())
}
