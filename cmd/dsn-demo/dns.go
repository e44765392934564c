package main

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dsn-ims/dsn/dnsreport"
)

// dnsView reads what the DNS server publishes for the domain, with plain
// unsigned queries as any resolver would.
type dnsView struct {
	server string
	domain string
	ex     dnsreport.Exchanger
}

func newDNSView(server, domain string) *dnsView {
	return &dnsView{server: server, domain: domain, ex: dnsreport.NewNetExchanger(500*time.Millisecond, nil)}
}

// publishedRep is one representative as DNS shows it: the label of an
// _sip._udp SRV target and that target's address with the SRV port.
type publishedRep struct {
	Label string
	Addr  netip.AddrPort
}

func (p publishedRep) String() string { return fmt.Sprintf("%s (%s)", p.Label, p.Addr) }

// reps reads the _sip._udp SRV set and each target's address, sorted by
// label.
func (v *dnsView) reps(ctx context.Context) ([]publishedRep, error) {
	pub, err := dnsreport.ReadPublished(ctx, v.ex, v.server, v.domain)
	if err != nil {
		return nil, err
	}
	var out []publishedRep
	for _, s := range pub.UDP {
		t := dns.CanonicalName(s.Target)
		addrs := pub.Targets[t]
		if len(addrs) == 0 {
			return nil, fmt.Errorf("SRV target %s has no address", t)
		}
		out = append(out, publishedRep{Label: strings.SplitN(t, ".", 2)[0], Addr: netip.AddrPortFrom(addrs[0], s.Port)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Label < out[j].Label })
	return out, nil
}

// mentions reports whether DNS still gives out ip for the domain: in the
// domain's own A/AAAA set or as the address of an SRV target.
func (v *dnsView) mentions(ctx context.Context, ip netip.Addr) (bool, error) {
	pub, err := dnsreport.ReadPublished(ctx, v.ex, v.server, v.domain)
	if err != nil {
		return false, err
	}
	for _, a := range pub.DomainAddrs {
		if a == ip {
			return true, nil
		}
	}
	for _, as := range pub.Targets {
		for _, a := range as {
			if a == ip {
				return true, nil
			}
		}
	}
	return false, nil
}

// provisionENUM publishes the wildcard NAPTR that sends every number
// starting with prefix to sip:<number>@domain, by a TSIG-signed UPDATE of
// the ENUM zone (the reply's signature is verified by the client).
func provisionENUM(ctx context.Context, server string, key *dnsreport.Key, prefix, domain string) (*dns.NAPTR, error) {
	rec, err := dnsreport.ENUMPrefixRecord(prefix, domain, dnsreport.DefaultENUMSuffix, 300*time.Second)
	if err != nil {
		return nil, err
	}
	client, err := dnsreport.NewClient(dnsreport.ClientConfig{Servers: []string{server}, Timeout: 2 * time.Second}, key)
	if err != nil {
		return nil, err
	}
	ch := dnsreport.Change{Zone: dnsreport.DefaultENUMSuffix, Add: []dns.RR{rec}}
	if err := client.Update(ctx, ch); err != nil {
		return nil, fmt.Errorf("ENUM UPDATE: %w", err)
	}
	return rec, nil
}
