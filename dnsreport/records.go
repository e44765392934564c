package dnsreport

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Representative is what one representative node publishes (INTERFACE.md,
// "What a representative publishes"), for zone Z, domain D and node label L:
//
//	L.Z.          A/AAAA  the node's SIP IPs
//	_sip._udp.D.  SRV     Priority Weight Port L.Z.
//	_sip._tcp.D.  SRV     Priority Weight Port L.Z.
//	D.            A/AAAA  the node's SIP IPs
//
// L.Z. belongs to this node alone; the other names are shared by all
// representatives, so they are only ever changed record by record.
// Every node computing a Representative for the same peer must use the same
// Priority and Weight, or a neighbour's delete would not match.
type Representative struct {
	Zone     string       // Z, e.g. "dsn.example.com."
	Domain   string       // D, equal to Z or below it
	Label    string       // L, one DNS label derived from the node name
	IPs      []netip.Addr // the node's SIP addresses (v4 and/or v6)
	Port     uint16       // the node's SIP port
	TTL      time.Duration
	Priority uint16
	Weight   uint16
}

// NodeLabel turns a node name into one DNS label: lower case, characters
// other than letters, digits and '-' become '-', at most 63 octets.
func NodeLabel(name string) (string, error) {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	l := strings.Trim(b.String(), "-")
	if l == "" {
		return "", fmt.Errorf("dnsreport: node name %q gives an empty DNS label", name)
	}
	if len(l) > 63 {
		l = strings.TrimRight(l[:63], "-")
	}
	return l, nil
}

// Validate checks the names, addresses, port and TTL.
func (r Representative) Validate() error {
	if _, ok := dns.IsDomainName(r.Zone); !ok || r.Zone == "" {
		return fmt.Errorf("dnsreport: representative: zone %q is not a domain name", r.Zone)
	}
	if _, ok := dns.IsDomainName(r.Domain); !ok || r.Domain == "" {
		return fmt.Errorf("dnsreport: representative: domain %q is not a domain name", r.Domain)
	}
	if !dns.IsSubDomain(dns.Fqdn(r.Zone), dns.Fqdn(r.Domain)) {
		return fmt.Errorf("dnsreport: representative: domain %s is not inside zone %s; set the DNS zone to the domain or a parent of it", r.Domain, r.Zone)
	}
	if n, ok := dns.IsDomainName(r.Label); !ok || n != 1 || strings.Contains(r.Label, ".") {
		return fmt.Errorf("dnsreport: representative: label %q is not a single DNS label", r.Label)
	}
	if len(r.IPs) == 0 {
		return fmt.Errorf("dnsreport: representative %s: no IP address", r.Label)
	}
	for _, ip := range r.IPs {
		if !ip.IsValid() || ip.IsUnspecified() {
			return fmt.Errorf("dnsreport: representative %s: address %v cannot be published (give a concrete advertise address)", r.Label, ip)
		}
	}
	if r.Port == 0 {
		return fmt.Errorf("dnsreport: representative %s: SIP port is 0", r.Label)
	}
	if r.TTL < time.Second {
		return fmt.Errorf("dnsreport: representative %s: TTL %v is below one second", r.Label, r.TTL)
	}
	return nil
}

// NodeName is L.Z., the node's own name.
func (r Representative) NodeName() string {
	return dns.CanonicalName(r.Label + "." + dns.Fqdn(r.Zone))
}

func (r Representative) ttl() uint32 { return uint32(r.TTL / time.Second) }

// addrRRs builds A/AAAA records at name for the node's IPs.
func (r Representative) addrRRs(name string) []dns.RR {
	var out []dns.RR
	for _, ip := range r.ips() {
		if ip.Is4() {
			out = append(out, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: r.ttl()}, A: net.IP(ip.AsSlice())})
		} else {
			out = append(out, &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: r.ttl()}, AAAA: net.IP(ip.AsSlice())})
		}
	}
	return out
}

// ips returns the addresses unmapped, deduplicated and sorted.
func (r Representative) ips() []netip.Addr {
	out := make([]netip.Addr, 0, len(r.IPs))
	for _, ip := range r.IPs {
		out = append(out, ip.Unmap())
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out)
}

// SRVNames are the two SRV owner names under the domain.
func (r Representative) SRVNames() []string {
	d := dns.CanonicalName(r.Domain)
	return []string{"_sip._udp." + d, "_sip._tcp." + d}
}

func (r Representative) srvRRs() []dns.RR {
	var out []dns.RR
	for _, name := range r.SRVNames() {
		out = append(out, &dns.SRV{
			Hdr:      dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: r.ttl()},
			Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: r.NodeName(),
		})
	}
	return out
}

// Records returns exactly the records this node publishes, in a fixed
// order: L.Z. addresses, the SRV records, D. addresses.
func (r Representative) Records() []dns.RR {
	out := r.addrRRs(r.NodeName())
	out = append(out, r.srvRRs()...)
	return append(out, r.addrRRs(dns.CanonicalName(r.Domain))...)
}

// PublishChange replaces whatever addresses L.Z. had (the node's own name,
// possibly stale from an earlier run) and adds the node's records.
// Applying it twice leaves the same data.
func (r Representative) PublishChange() (Change, error) {
	if err := r.Validate(); err != nil {
		return Change{}, err
	}
	return Change{
		Zone: dns.CanonicalName(r.Zone),
		DeleteRRsets: []RRsetRef{
			{Name: r.NodeName(), Type: dns.TypeA},
			{Name: r.NodeName(), Type: dns.TypeAAAA},
		},
		Add: r.Records(),
	}, nil
}

// DeleteChange removes exactly this node's records: its SRV and D.
// address records one by one (class NONE) and every RRset at L.Z.; other
// nodes' records are untouched. Deleting what is not there is a no-op, so
// the change may be sent any number of times, by any number of nodes.
func (r Representative) DeleteChange() (Change, error) {
	if err := r.Validate(); err != nil {
		return Change{}, err
	}
	del := r.srvRRs()
	del = append(del, r.addrRRs(dns.CanonicalName(r.Domain))...)
	return Change{
		Zone:        dns.CanonicalName(r.Zone),
		DeleteNames: []string{r.NodeName()},
		Delete:      del,
	}, nil
}

// ReplaceChange moves the node from old (what DNS holds for it, e.g. from
// ReadNode) to r: it deletes old's records that r does not publish and then
// publishes r.
func (r Representative) ReplaceChange(old Representative) (Change, error) {
	ch, err := r.PublishChange()
	if err != nil {
		return Change{}, err
	}
	keep := map[string]bool{}
	for _, rr := range r.Records() {
		keep[rrKey(rr)] = true
	}
	oldDel, err := old.DeleteChange()
	if err != nil {
		return ch, nil // nothing usable to remove
	}
	for _, rr := range oldDel.Delete {
		if !keep[rrKey(rr)] {
			ch.Delete = append(ch.Delete, rr)
		}
	}
	return ch, nil
}

// rrKey identifies a record by owner, type and data (not TTL).
func rrKey(rr dns.RR) string { return strings.ToLower(rrText(rr)) }
