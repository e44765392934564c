package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/sip/registrar"
	"github.com/emiago/sipgo/sip"
)

// hop is one place to send a request: transport ("UDP", "TCP", "TLS")
// and address.
type hop struct {
	Transport string
	Addr      netip.AddrPort
}

func (h hop) String() string { return strings.ToLower(h.Transport) + ":" + h.Addr.String() }

// hopFromSource is the hop of a registrar.Source (a NAT flow).
func hopFromSource(s registrar.Source) hop {
	return hop{Transport: upperTransport(s.Transport), Addr: s.Addr}
}

// parseFlow reads a hop written by hop.String (the dsn-flow Record-Route
// parameter).
func parseFlow(s string) (hop, bool) {
	tr, addr, ok := strings.Cut(s, ":")
	if !ok {
		return hop{}, false
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return hop{}, false
	}
	switch t := upperTransport(tr); t {
	case "UDP", "TCP", "TLS":
		return hop{Transport: t, Addr: ap}, true
	}
	return hop{}, false
}

func upperTransport(t string) string {
	switch strings.ToLower(t) {
	case "", "udp":
		return "UDP"
	case "tcp":
		return "TCP"
	case "tls":
		return "TLS"
	case "ws":
		return "WS"
	case "wss":
		return "WSS"
	}
	return strings.ToUpper(t)
}

func defaultPort(transport string) int {
	if t := upperTransport(transport); t == "TLS" || t == "WSS" {
		return 5061
	}
	return 5060
}

// normHost lower-cases a host, drops a trailing dot and IPv6 brackets, and
// writes IP literals canonically.
func normHost(h string) string {
	h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Unmap().WithZone("").String()
	}
	return h
}

// uriHost writes a host for a URI: IPv6 literals in brackets.
func uriHost(h string) string {
	if ip, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil && ip.Is6() && !ip.Is4In6() {
		return "[" + ip.String() + "]"
	}
	return h
}

// hostPort is a normalised host with an optional port (0: any).
type hostPort struct {
	host string
	port int
}

// identity tells which URIs and addresses mean this node or its domain.
type identity struct {
	domain    string
	advertise hostPort
	aliases   []hostPort
}

func newIdentity(cfg Config) identity {
	id := identity{domain: normHost(cfg.Domain)}
	h, p, _ := splitHostPort(cfg.Advertise)
	id.advertise = hostPort{host: h, port: p}
	for _, a := range cfg.Aliases {
		h, p, _ := splitHostPort(a)
		id.aliases = append(id.aliases, hostPort{host: h, port: p})
	}
	return id
}

// isSelf reports whether host[:port] is this node; port 0 means the
// transport's default port.
func (id *identity) isSelf(host string, port int, transport string) bool {
	h := normHost(host)
	if port == 0 {
		port = defaultPort(transport)
	}
	if h == id.advertise.host && port == id.advertise.port {
		return true
	}
	for _, a := range id.aliases {
		if h == a.host && (a.port == 0 || a.port == port) {
			return true
		}
	}
	return false
}

func (id *identity) isDomain(host string) bool { return normHost(host) == id.domain }

// isSelfURI reports whether a SIP URI addresses this node as a hop: no user
// part and host[:port] of this node, or the bare DSN domain (any node of
// the domain takes requests routed to it).
func (id *identity) isSelfURI(u *sip.Uri) bool {
	if !isSIP(u) || u.User != "" {
		return false
	}
	tr := ""
	if u.UriParams != nil {
		tr, _ = u.UriParams.Get("transport")
	}
	if u.Scheme == "sips" {
		tr = "tls"
	}
	return id.isSelf(u.Host, u.Port, tr) || (u.Port == 0 && id.isDomain(u.Host))
}

// ownsUser reports whether a SIP URI with a user part names a DSN
// subscriber: its host is the DSN domain or this node.
func (id *identity) ownsUser(u *sip.Uri) bool {
	if !isSIP(u) || u.User == "" {
		return false
	}
	return id.isDomain(u.Host) || id.isSelf(u.Host, u.Port, uriTransport(u))
}

func isSIP(u *sip.Uri) bool { return u.Scheme == "sip" || u.Scheme == "sips" || u.Scheme == "" }

// uriTransport is the transport a URI asks for: its transport parameter,
// TLS for sips:, else UDP.
func uriTransport(u *sip.Uri) string {
	if u.Scheme == "sips" {
		return "TLS"
	}
	if u.UriParams != nil {
		if t, ok := u.UriParams.Get("transport"); ok && t != "" {
			return upperTransport(t)
		}
	}
	return "UDP"
}

// errNoResolver: a host name needs DNS but the proxy has no Resolver.
var errNoResolver = errors.New("proxy: no DNS resolver configured")

// hopsForURI returns where to send a request whose next hop is u, in
// fail-over order: an IP literal directly, a host name through RFC 3263.
func (p *Proxy) hopsForURI(ctx context.Context, u *sip.Uri) ([]hop, error) {
	if !isSIP(u) {
		return nil, fmt.Errorf("proxy: next hop %q is not a SIP URI", u.String())
	}
	tr := uriTransport(u)
	if ip, err := netip.ParseAddr(strings.Trim(u.Host, "[]")); err == nil {
		port := u.Port
		if port == 0 {
			port = defaultPort(tr)
		}
		if port < 1 || port > 65535 {
			return nil, fmt.Errorf("proxy: next hop %q: bad port", u.String())
		}
		return []hop{{Transport: tr, Addr: netip.AddrPortFrom(ip.Unmap(), uint16(port))}}, nil
	}
	if p.deps.Resolver == nil {
		return nil, fmt.Errorf("proxy: locate %s: %w", u.Host, errNoResolver)
	}
	// Ask for the URI without user or header parts: only host, port and
	// transport matter to RFC 3263.
	q := "sip:" + uriHost(u.Host)
	if u.Scheme == "sips" {
		q = "sips:" + uriHost(u.Host)
	}
	if u.Port > 0 {
		q += ":" + strconv.Itoa(u.Port)
	}
	if t, ok := u.UriParams.Get("transport"); ok && t != "" {
		q += ";transport=" + strings.ToLower(t)
	}
	targets, err := p.deps.Resolver.Locate(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("proxy: locate %s: %w", q, err)
	}
	hops := make([]hop, 0, len(targets))
	for _, t := range targets {
		hops = append(hops, hop{Transport: upperTransport(t.Transport), Addr: t.Addr})
	}
	if len(hops) == 0 {
		return nil, fmt.Errorf("proxy: locate %s: %w", q, dnsreport.ErrNotFound)
	}
	return hops, nil
}

// hopsForNode returns the hops to another DSN node's SIP address.
func (p *Proxy) hopsForNode(ctx context.Context, addr string) ([]hop, error) {
	u, err := p.nodeURI(addr)
	if err != nil {
		return nil, err
	}
	return p.hopsForURI(ctx, &u)
}

// nodeURI is the URI of a DSN node's SIP address (host:port) over
// Config.NodeTransport.
func (p *Proxy) nodeURI(addr string) (sip.Uri, error) {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return sip.Uri{}, fmt.Errorf("proxy: node address %q: %w", addr, err)
	}
	u := sip.Uri{Scheme: "sip", Host: uriHost(host), Port: port, UriParams: sip.NewParams()}
	if tr := strings.ToLower(p.cfg.NodeTransport); tr != "udp" {
		u.UriParams.Add("transport", tr)
	}
	return u, nil
}
