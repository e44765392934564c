package dnsreport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// lookup asks the servers in order for name/qtype and returns the answer
// records of qtype (CNAMEs in the answer section are followed implicitly by
// keeping every record of qtype). NXDOMAIN and NODATA give no records and no
// error; a server that fails (timeout, SERVFAIL, bad signature) makes the
// next one be asked, and when all fail their errors are joined.
func lookup(ctx context.Context, ex Exchanger, servers []string, name string, qtype uint16) ([]dns.RR, error) {
	var errs []error
	for _, server := range servers {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qtype)
		m.RecursionDesired = true
		m.SetEdns0(dns.DefaultMsgSize, false)
		r, err := ex.Exchange(ctx, m, server)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		var out []dns.RR
		for _, rr := range r.Answer {
			if rr.Header().Rrtype == qtype {
				out = append(out, rr)
			}
		}
		return out, nil
	}
	if len(errs) == 0 {
		return nil, errors.New("dnsreport: no DNS server to ask")
	}
	return nil, fmt.Errorf("dnsreport: look up %s %s: %w", name, dns.TypeToString[qtype], errors.Join(errs...))
}

// ReadSRV returns the SRV records at name as server serves them.
func ReadSRV(ctx context.Context, ex Exchanger, server, name string) ([]*dns.SRV, error) {
	rrs, err := lookup(ctx, ex, []string{server}, name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	out := make([]*dns.SRV, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, rr.(*dns.SRV))
	}
	return out, nil
}

// ReadAddrs returns the A and AAAA addresses at name as server serves them,
// IPv4 first, each family sorted.
func ReadAddrs(ctx context.Context, ex Exchanger, server, name string) ([]netip.Addr, error) {
	return addrsOf(ctx, ex, []string{server}, name)
}

// addrsOf queries A then AAAA. An error is returned only when both
// queries fail.
func addrsOf(ctx context.Context, ex Exchanger, servers []string, name string) ([]netip.Addr, error) {
	var out []netip.Addr
	var errs []error
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := lookup(ctx, ex, servers, name, t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var fam []netip.Addr
		for _, rr := range rrs {
			var ip net.IP
			switch v := rr.(type) {
			case *dns.A:
				ip = v.A
			case *dns.AAAA:
				ip = v.AAAA
			}
			if a, ok := netip.AddrFromSlice(ip); ok {
				fam = append(fam, a.Unmap())
			}
		}
		slices.SortFunc(fam, func(a, b netip.Addr) int { return a.Compare(b) })
		out = append(out, fam...)
	}
	if len(errs) == 2 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Published is what DNS holds for the representatives of a domain: the
// SRV sets, the domain's own addresses and the addresses of every SRV
// target.
type Published struct {
	UDP         []*dns.SRV
	TCP         []*dns.SRV
	DomainAddrs []netip.Addr
	Targets     map[string][]netip.Addr // SRV target name -> A/AAAA
}

// ReadPublished reads the representative records of domain from server
// (normally the primary that takes the updates), for reconciliation.
func ReadPublished(ctx context.Context, ex Exchanger, server, domain string) (Published, error) {
	d := dns.CanonicalName(domain)
	var p Published
	var err error
	if p.UDP, err = ReadSRV(ctx, ex, server, "_sip._udp."+d); err != nil {
		return p, err
	}
	if p.TCP, err = ReadSRV(ctx, ex, server, "_sip._tcp."+d); err != nil {
		return p, err
	}
	if p.DomainAddrs, err = ReadAddrs(ctx, ex, server, d); err != nil {
		return p, err
	}
	p.Targets = map[string][]netip.Addr{}
	for _, srv := range append(slices.Clone(p.UDP), p.TCP...) {
		t := dns.CanonicalName(srv.Target)
		if _, done := p.Targets[t]; done || t == "." {
			continue
		}
		if p.Targets[t], err = ReadAddrs(ctx, ex, server, t); err != nil {
			return p, err
		}
	}
	return p, nil
}

// ReadNode returns what DNS currently holds for the node with label in
// zone/domain (its L.Z. addresses and the port of the SRV pointing at it),
// as a Representative to pass to ReplaceChange. found is false when L.Z.
// has no address.
func ReadNode(ctx context.Context, ex Exchanger, server string, rec RecordConfig, zone, domain, label string) (rep Representative, found bool, err error) {
	rep = rec.Representative(zone, domain, label, nil, 0)
	if rep.IPs, err = ReadAddrs(ctx, ex, server, rep.NodeName()); err != nil {
		return rep, false, err
	}
	srvs, err := ReadSRV(ctx, ex, server, rep.SRVNames()[0])
	if err != nil {
		return rep, false, err
	}
	for _, s := range srvs {
		if dns.CanonicalName(s.Target) == rep.NodeName() {
			rep.Port, rep.Priority, rep.Weight = s.Port, s.Priority, s.Weight
			break
		}
	}
	return rep, len(rep.IPs) > 0, nil
}

// Transfer fetches a whole zone by AXFR over TCP. With a key the request
// is TSIG-signed and every reply message must carry a TSIG that verifies.
func Transfer(ctx context.Context, server, zone string, key *Key, timeout time.Duration) ([]dns.RR, error) {
	server, err := NormalizeServer(server)
	if err != nil {
		return nil, err
	}
	zone = dns.CanonicalName(zone)
	ue := func(rcode int, err error) error {
		return &UpdateError{Server: server, Zone: zone, Rcode: rcode, Err: err}
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return nil, ue(NoReply, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	t := &dns.Transfer{Conn: &dns.Conn{Conn: conn}, DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout}
	m := new(dns.Msg)
	m.SetAxfr(zone)
	if key != nil {
		t.TsigSecret = map[string]string{key.Name: key.Secret}
		m.SetTsig(key.Name, key.Algorithm, tsigFudge, time.Now().Unix())
	}
	envs, err := t.In(m, server)
	if err != nil {
		conn.Close()
		return nil, ue(NoReply, err)
	}
	var out []dns.RR
	var failed error
	for env := range envs {
		if env.Error != nil && failed == nil {
			failed = env.Error
		}
		out = append(out, env.RR...)
	}
	if failed != nil {
		return nil, transferError(server, zone, failed, ctx.Err())
	}
	return out, nil
}

// transferError maps miekg's transfer errors onto UpdateError kinds.
func transferError(server, zone string, err, ctxErr error) error {
	ue := &UpdateError{Server: server, Zone: zone, Rcode: NoReply, Err: err}
	var rcode int
	switch {
	case ctxErr != nil:
		ue.Err = ctxErr
	case errors.Is(err, dns.ErrAuth):
		ue.Rcode, ue.Err = dns.RcodeNotAuth, nil
	case errors.Is(err, dns.ErrNoSig):
		ue.Err = ErrUnsignedReply
	case isTSIGError(err):
		ue.Err = fmt.Errorf("%w: %v", ErrBadReplySignature, err)
	case strings.HasPrefix(err.Error(), "dns: bad xfr rcode:"):
		if _, serr := fmt.Sscanf(err.Error(), "dns: bad xfr rcode: %d", &rcode); serr == nil {
			ue.Rcode, ue.Signed, ue.Err = rcode, true, nil
		}
	}
	return ue
}
