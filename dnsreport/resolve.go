package dnsreport

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Target is one place to send a SIP request: a transport ("udp", "tcp" or
// "tls") and an address.
type Target struct {
	Transport string
	Addr      netip.AddrPort
}

func (t Target) String() string { return t.Transport + ":" + t.Addr.String() }

// Resolver answers the two questions a SIP node asks DNS.
type Resolver interface {
	// ENUM maps an E.164 number to a SIP URI (RFC 6116). ErrNotFound when
	// the number has no usable E2U+sip NAPTR.
	ENUM(ctx context.Context, number string) (string, error)
	// Locate turns a SIP URI into targets in fail-over order (RFC 3263):
	// a numeric host is used as is; an explicit port means A/AAAA only;
	// otherwise NAPTR (SIP+D2U, SIP+D2T; SIPS+D2T for sips:) -> SRV ->
	// A/AAAA, else SRV _sip._udp then _sip._tcp (_sips._tcp for sips:,
	// only the given transport with ;transport=), else A/AAAA on 5060
	// (5061 for TLS). ErrNotFound when DNS names no address.
	Locate(ctx context.Context, uri string) ([]Target, error)
}

var _ Resolver = (*DNSResolver)(nil)

// maxNAPTRHops bounds chains of non-terminal NAPTR records.
const maxNAPTRHops = 5

// DNSResolver is the Resolver over an Exchanger. Safe for concurrent use;
// calls block on DNS for at most a few queries' timeouts.
type DNSResolver struct {
	cfg     ResolverConfig
	servers []string
	ex      Exchanger

	mu  sync.Mutex // guards rng
	rng *rand.Rand
}

// NewResolver makes a resolver. ex nil means the network (miekg/dns,
// unsigned queries, cfg.Timeout per query); rng orders SRV records of
// equal priority by weight (RFC 2782).
func NewResolver(cfg ResolverConfig, ex Exchanger, rng *rand.Rand) (*DNSResolver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, errors.New("dnsreport: NewResolver needs a random source")
	}
	var servers []string
	if cfg.Server == "system" {
		cc, err := dns.ClientConfigFromFile(cfg.ResolvConf)
		if err != nil {
			return nil, fmt.Errorf("dnsreport: resolver: read %s: %w", cfg.ResolvConf, err)
		}
		for _, s := range cc.Servers {
			servers = append(servers, net.JoinHostPort(s, cc.Port))
		}
		if len(servers) == 0 {
			return nil, fmt.Errorf("dnsreport: resolver: %s names no nameserver", cfg.ResolvConf)
		}
	} else {
		s, _ := NormalizeServer(cfg.Server) // checked by Validate
		servers = []string{s}
	}
	if ex == nil {
		ex = NewNetExchanger(cfg.Timeout, nil)
	}
	return &DNSResolver{cfg: cfg, servers: servers, ex: ex, rng: rng}, nil
}

// ENUM implements Resolver.
func (r *DNSResolver) ENUM(ctx context.Context, number string) (string, error) {
	aus, err := NormalizeE164(number)
	if err != nil {
		return "", err
	}
	name, err := ENUMName(aus, r.cfg.ENUMSuffix)
	if err != nil {
		return "", err
	}
	var skipped []string
	for hop := 0; hop < maxNAPTRHops; hop++ {
		rrs, err := lookup(ctx, r.ex, r.servers, name, dns.TypeNAPTR)
		if err != nil {
			return "", err
		}
		if len(rrs) == 0 {
			return "", fmt.Errorf("%w: no NAPTR record at %s for %s", ErrNotFound, name, aus)
		}
		next := ""
		for _, n := range sortNAPTR(rrs) {
			uri, follow, why := enumStep(n, aus)
			if uri != "" {
				return uri, nil
			}
			if follow != "" {
				next = follow
				break
			}
			skipped = append(skipped, why)
		}
		if next == "" {
			return "", fmt.Errorf("%w: no usable E2U+sip NAPTR at %s for %s (%s)", ErrNotFound, name, aus, strings.Join(skipped, "; "))
		}
		name = next
	}
	return "", fmt.Errorf("%w: more than %d non-terminal NAPTR hops for %s", ErrNotFound, maxNAPTRHops, aus)
}

// enumStep applies one NAPTR to the number: a terminal sip record gives a
// URI, a non-terminal one the next domain to ask; otherwise why it was
// skipped.
func enumStep(n *dns.NAPTR, aus string) (uri, follow, why string) {
	flags := strings.ToLower(unescapeCharString(n.Flags))
	service := unescapeCharString(n.Service)
	rx := unescapeCharString(n.Regexp)
	switch {
	case flags == "":
		// Non-terminal (RFC 3403): continue at the replacement, or at the
		// domain the regexp produces.
		if n.Replacement != "" && n.Replacement != "." {
			return "", dns.CanonicalName(n.Replacement), ""
		}
		if rx != "" {
			if sub, err := parseSubstitution(rx); err == nil {
				if d, ok := sub.apply(aus); ok {
					if _, isName := dns.IsDomainName(d); isName {
						return "", dns.CanonicalName(d), ""
					}
				}
			}
		}
		return "", "", fmt.Sprintf("non-terminal NAPTR %q leads nowhere", service)
	case !strings.Contains(flags, "u"):
		return "", "", fmt.Sprintf("flags %q are not for ENUM", flags)
	case !enumServiceHasSIP(service):
		return "", "", fmt.Sprintf("service %q", service)
	}
	sub, err := parseSubstitution(rx)
	if err != nil {
		return "", "", err.Error()
	}
	out, ok := sub.apply(aus)
	if !ok {
		return "", "", fmt.Sprintf("regexp %q does not match %s", rx, aus)
	}
	if !isSIPURI(out) {
		return "", "", fmt.Sprintf("result %q is not a SIP URI", out)
	}
	return out, "", ""
}

// sortNAPTR orders by Order, then Preference (RFC 3403).
func sortNAPTR(rrs []dns.RR) []*dns.NAPTR {
	var out []*dns.NAPTR
	for _, rr := range rrs {
		if n, ok := rr.(*dns.NAPTR); ok {
			out = append(out, n)
		}
	}
	slices.SortStableFunc(out, func(a, b *dns.NAPTR) int {
		return cmp.Or(cmp.Compare(a.Order, b.Order), cmp.Compare(a.Preference, b.Preference))
	})
	return out
}

// sipURI is the part of a SIP URI that server location needs.
type sipURI struct {
	secure    bool
	host      string // without brackets
	port      uint16 // 0 when absent
	transport string // "" when absent
}

func parseSIPURI(s string) (sipURI, error) {
	var u sipURI
	rest := strings.TrimSpace(s)
	lower := strings.ToLower(rest)
	switch {
	case strings.HasPrefix(lower, "sips:"):
		u.secure, rest = true, rest[5:]
	case strings.HasPrefix(lower, "sip:"):
		rest = rest[4:]
	default:
		return u, fmt.Errorf("dnsreport: %q is not a sip: or sips: URI", s)
	}
	rest, _, _ = strings.Cut(rest, "?")
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	hostport, params, _ := strings.Cut(rest, ";")
	maddr := ""
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "transport":
			u.transport = strings.ToLower(strings.TrimSpace(v))
		case "maddr":
			maddr = strings.TrimSpace(v)
		}
	}
	host := hostport
	if strings.HasPrefix(hostport, "[") {
		end := strings.Index(hostport, "]")
		if end < 0 {
			return u, fmt.Errorf("dnsreport: URI %q: unclosed [ in host", s)
		}
		host = hostport[1:end]
		if tail := hostport[end+1:]; tail != "" {
			if !strings.HasPrefix(tail, ":") {
				return u, fmt.Errorf("dnsreport: URI %q: junk after host", s)
			}
			p, err := strconv.ParseUint(tail[1:], 10, 16)
			if err != nil || p == 0 {
				return u, fmt.Errorf("dnsreport: URI %q: bad port", s)
			}
			u.port = uint16(p)
		}
	} else if h, p, ok := strings.Cut(hostport, ":"); ok {
		pn, err := strconv.ParseUint(p, 10, 16)
		if err != nil || pn == 0 {
			return u, fmt.Errorf("dnsreport: URI %q: bad port %q", s, p)
		}
		host, u.port = h, uint16(pn)
	}
	if maddr != "" {
		host = strings.Trim(maddr, "[]")
	}
	if host == "" {
		return u, fmt.Errorf("dnsreport: URI %q has no host", s)
	}
	u.host = host
	switch u.transport {
	case "", "udp", "tcp", "tls":
	default:
		return u, fmt.Errorf("dnsreport: URI %q: transport %q is not supported (udp, tcp, tls)", s, u.transport)
	}
	if u.secure && u.transport != "" {
		u.transport = "tls" // sips: is always TLS over TCP (RFC 3261 26.2.2)
	}
	return u, nil
}

func (u sipURI) defaultTransport() string {
	if u.secure {
		return "tls"
	}
	if u.transport != "" {
		return u.transport
	}
	return "udp"
}

func defaultPort(transport string) uint16 {
	if transport == "tls" {
		return 5061
	}
	return 5060
}

// srvPrefix is the SRV owner prefix for a transport (RFC 3263 4.1).
func srvPrefix(transport string) string {
	switch transport {
	case "tls":
		return "_sips._tcp."
	case "tcp":
		return "_sip._tcp."
	}
	return "_sip._udp."
}

// naptrTransport maps an RFC 3263 NAPTR service to a transport.
func naptrTransport(service string) string {
	switch strings.ToUpper(service) {
	case "SIP+D2U":
		return "udp"
	case "SIP+D2T":
		return "tcp"
	case "SIPS+D2T":
		return "tls"
	}
	return ""
}

// Locate implements Resolver (RFC 3263 section 4).
func (r *DNSResolver) Locate(ctx context.Context, uri string) ([]Target, error) {
	u, err := parseSIPURI(uri)
	if err != nil {
		return nil, err
	}
	tr := u.defaultTransport()
	if ip, err := netip.ParseAddr(u.host); err == nil {
		port := u.port
		if port == 0 {
			port = defaultPort(tr)
		}
		return []Target{{Transport: tr, Addr: netip.AddrPortFrom(ip.Unmap(), port)}}, nil
	}
	host := dns.CanonicalName(u.host)
	var out []Target
	switch {
	case u.port != 0:
		// An explicit port means A/AAAA only (RFC 3263 4.2).
		if out, err = r.addrTargets(ctx, host, tr, u.port); err != nil {
			return nil, err
		}
	case u.transport == "":
		if out, err = r.viaNAPTR(ctx, host, u.secure); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 && u.port == 0 {
		if out, err = r.viaSRVFallback(ctx, host, u); err != nil {
			return nil, err
		}
		if len(out) == 0 {
			if out, err = r.addrTargets(ctx, host, tr, defaultPort(tr)); err != nil {
				return nil, err
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: DNS names no address for %s", ErrNotFound, uri)
	}
	return dedupTargets(out), nil
}

// viaSRVFallback asks the SRV names of the transports the URI allows: the
// given one, or UDP then TCP for sip: and TLS for sips:.
func (r *DNSResolver) viaSRVFallback(ctx context.Context, host string, u sipURI) ([]Target, error) {
	transports := []string{u.defaultTransport()}
	if u.transport == "" && !u.secure {
		transports = []string{"udp", "tcp"}
	}
	var out []Target
	for _, t := range transports {
		ts, err := r.viaSRV(ctx, srvPrefix(t)+host, t)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

// viaNAPTR follows the host's SIP NAPTR records ("s" flag) to SRV.
func (r *DNSResolver) viaNAPTR(ctx context.Context, host string, secure bool) ([]Target, error) {
	rrs, err := lookup(ctx, r.ex, r.servers, host, dns.TypeNAPTR)
	if err != nil {
		return nil, err
	}
	var out []Target
	for _, n := range sortNAPTR(rrs) {
		t := naptrTransport(unescapeCharString(n.Service))
		// sips: needs TLS; for sip: this node speaks UDP and TCP only.
		if t == "" || secure != (t == "tls") || !strings.EqualFold(unescapeCharString(n.Flags), "s") {
			continue
		}
		if n.Replacement == "" || n.Replacement == "." {
			continue
		}
		ts, err := r.viaSRV(ctx, n.Replacement, t)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

// viaSRV resolves an SRV name to targets in RFC 2782 order. A target
// whose addresses cannot be looked up is skipped unless none resolves.
func (r *DNSResolver) viaSRV(ctx context.Context, name, transport string) ([]Target, error) {
	rrs, err := lookup(ctx, r.ex, r.servers, name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	srvs := make([]*dns.SRV, 0, len(rrs))
	for _, rr := range rrs {
		srvs = append(srvs, rr.(*dns.SRV))
	}
	r.mu.Lock()
	srvs = OrderSRV(srvs, r.rng)
	r.mu.Unlock()
	var out []Target
	var firstErr error
	for _, s := range srvs {
		if s.Target == "." {
			continue // "service decidedly not available" (RFC 2782)
		}
		ts, err := r.addrTargets(ctx, s.Target, transport, s.Port)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		out = append(out, ts...)
	}
	if len(out) == 0 && firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// addrTargets gives the A/AAAA addresses of host with port.
func (r *DNSResolver) addrTargets(ctx context.Context, host, transport string, port uint16) ([]Target, error) {
	addrs, err := addrsOf(ctx, r.ex, r.servers, host)
	if err != nil {
		return nil, err
	}
	out := make([]Target, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, Target{Transport: transport, Addr: netip.AddrPortFrom(a, port)})
	}
	return out, nil
}

func dedupTargets(ts []Target) []Target {
	seen := map[Target]bool{}
	out := ts[:0:0]
	for _, t := range ts {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// OrderSRV sorts SRV records by priority and, within a priority, by the
// weighted random selection of RFC 2782 (records of weight 0 first in the
// running sum, so they are picked rarely but not never). The input is not
// modified. rng must not be shared with other goroutines during the call.
func OrderSRV(srvs []*dns.SRV, rng *rand.Rand) []*dns.SRV {
	// "Any order, except that weight 0 comes first": shuffle, then a
	// stable sort, so records of equal weight class are in random order.
	sorted := slices.Clone(srvs)
	rng.Shuffle(len(sorted), func(i, j int) { sorted[i], sorted[j] = sorted[j], sorted[i] })
	slices.SortStableFunc(sorted, func(a, b *dns.SRV) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), boolCmp(a.Weight == 0, b.Weight == 0))
	})
	out := make([]*dns.SRV, 0, len(sorted))
	for start := 0; start < len(sorted); {
		end := start
		for end < len(sorted) && sorted[end].Priority == sorted[start].Priority {
			end++
		}
		group := slices.Clone(sorted[start:end])
		for len(group) > 0 {
			sum := 0
			for _, s := range group {
				sum += int(s.Weight)
			}
			pick := rng.IntN(sum + 1)
			run, i := 0, 0
			for i = range group {
				run += int(group[i].Weight)
				if run >= pick {
					break
				}
			}
			out = append(out, group[i])
			group = slices.Delete(group, i, i+1)
		}
		start = end
	}
	return out
}

// boolCmp orders true before false.
func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}
