package reps

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/dsn-ims/dsn/dnsreport"
)

// TransferFunc fetches a whole zone by AXFR from server.
type TransferFunc func(ctx context.Context, server, zone string) ([]dns.RR, error)

// TransferWithKey is the TransferFunc of dnsreport.Transfer: TSIG-signed
// AXFR over TCP, every reply message verified.
func TransferWithKey(key *dnsreport.Key, timeout time.Duration) TransferFunc {
	return func(ctx context.Context, server, zone string) ([]dns.RR, error) {
		return dnsreport.Transfer(ctx, server, zone, key, timeout)
	}
}

// DNSReader reads the representatives' records from the DNS servers that
// take the updates, trying them in order. With Transfer set it first asks
// for the zone by AXFR (one consistent snapshot; TSIG-signed with
// TransferWithKey) and falls back to queries when the transfer fails;
// after a transfer is refused it stops asking for one. Either way
// Published.Targets holds the addresses of the SRV targets inside Zone
// only: an authoritative server refuses questions about other names (an
// operator's static SRV entry pointing elsewhere), and reconciliation
// never touches them. Safe for concurrent use.
type DNSReader struct {
	// Exchanger sends the queries (dnsreport.Client.Exchanger()).
	Exchanger dnsreport.Exchanger
	// Servers are asked in order ("host:port").
	Servers []string
	// Zone is transferred; Domain is the DSN domain whose records are read.
	Zone, Domain string
	// Transfer enables AXFR; nil reads by queries only.
	Transfer TransferFunc

	mu     sync.Mutex
	noAXFR bool
}

// ReadPublished implements Reader.
func (r *DNSReader) ReadPublished(ctx context.Context) (dnsreport.Published, error) {
	if len(r.Servers) == 0 {
		return dnsreport.Published{}, errors.New("reps: DNSReader has no server")
	}
	var errs []error
	for _, s := range r.Servers {
		if r.Transfer != nil && !r.axfrOff() {
			rrs, err := r.Transfer(ctx, s, r.Zone)
			if err == nil {
				return PublishedFromZone(rrs, r.Zone, r.Domain), nil
			}
			if errors.Is(err, dnsreport.ErrRefused) || errors.Is(err, dnsreport.ErrNotAuth) {
				r.mu.Lock()
				r.noAXFR = true
				r.mu.Unlock()
			}
			errs = append(errs, fmt.Errorf("reps: AXFR %s from %s: %w", r.Zone, s, err))
		}
		p, err := r.query(ctx, s)
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return dnsreport.Published{}, errors.Join(errs...)
}

// query reads the records by queries: the SRV sets, the domain's
// addresses and the addresses of every SRV target inside the zone.
func (r *DNSReader) query(ctx context.Context, server string) (dnsreport.Published, error) {
	d := dns.CanonicalName(r.Domain)
	var p dnsreport.Published
	var err error
	if p.UDP, err = dnsreport.ReadSRV(ctx, r.Exchanger, server, "_sip._udp."+d); err != nil {
		return p, err
	}
	if p.TCP, err = dnsreport.ReadSRV(ctx, r.Exchanger, server, "_sip._tcp."+d); err != nil {
		return p, err
	}
	if p.DomainAddrs, err = dnsreport.ReadAddrs(ctx, r.Exchanger, server, d); err != nil {
		return p, err
	}
	p.Targets = map[string][]netip.Addr{}
	for _, t := range inZoneTargets(p, r.Zone) {
		if p.Targets[t], err = dnsreport.ReadAddrs(ctx, r.Exchanger, server, t); err != nil {
			return p, err
		}
	}
	return p, nil
}

// inZoneTargets lists the distinct SRV targets inside zone.
func inZoneTargets(p dnsreport.Published, zone string) []string {
	z := dns.CanonicalName(zone)
	var out []string
	for _, s := range slices.Concat(p.UDP, p.TCP) {
		t := dns.CanonicalName(s.Target)
		if dns.IsSubDomain(z, t) && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func (r *DNSReader) axfrOff() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.noAXFR
}

// PublishedFromZone extracts the representatives' records of domain from
// the records of zone (an AXFR), as DNSReader's queries would read them.
func PublishedFromZone(rrs []dns.RR, zone, domain string) dnsreport.Published {
	d := dns.CanonicalName(domain)
	udp, tcp := "_sip._udp."+d, "_sip._tcp."+d
	var p dnsreport.Published
	addrs := map[string][]netip.Addr{}
	for _, rr := range rrs {
		name := dns.CanonicalName(rr.Header().Name)
		switch v := rr.(type) {
		case *dns.SRV:
			switch name {
			case udp:
				p.UDP = append(p.UDP, v)
			case tcp:
				p.TCP = append(p.TCP, v)
			}
		case *dns.A, *dns.AAAA:
			if a := rrAddr(rr); a.IsValid() {
				addrs[name] = append(addrs[name], a)
			}
		}
	}
	sortAddrs := func(a []netip.Addr) []netip.Addr {
		slices.SortFunc(a, func(x, y netip.Addr) int { return x.Compare(y) })
		return slices.Compact(a)
	}
	p.DomainAddrs = sortAddrs(addrs[d])
	p.Targets = map[string][]netip.Addr{}
	for _, t := range inZoneTargets(p, zone) {
		p.Targets[t] = sortAddrs(addrs[t])
	}
	return p
}
