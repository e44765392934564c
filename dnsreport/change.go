package dnsreport

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// RRsetRef names one RRset: all records of Type at Name.
type RRsetRef struct {
	Name string
	Type uint16
}

// Change is the update section of one RFC 2136 UPDATE for Zone. The server
// applies it atomically, in this order: DeleteNames, DeleteRRsets, Delete,
// Add. Delete removes single records (class NONE, RFC 2136 2.5.4) and is
// what callers use for names other nodes share; DeleteNames and
// DeleteRRsets are only for names the sender owns alone.
//
// A Change is a value: the Updater copies the records it sends and never
// modifies them.
type Change struct {
	Zone         string
	DeleteNames  []string   // RFC 2136 2.5.3: every RRset at the name
	DeleteRRsets []RRsetRef // RFC 2136 2.5.2
	Delete       []dns.RR   // RFC 2136 2.5.4: exactly these records
	Add          []dns.RR   // RFC 2136 2.5.1
}

// IsEmpty reports whether the change does nothing.
func (c Change) IsEmpty() bool {
	return len(c.DeleteNames)+len(c.DeleteRRsets)+len(c.Delete)+len(c.Add) == 0
}

// Validate checks that the zone is a domain name, the change is not empty
// and every name lies inside the zone (the server would answer NOTZONE).
func (c Change) Validate() error {
	if _, ok := dns.IsDomainName(c.Zone); !ok || c.Zone == "" {
		return fmt.Errorf("dnsreport: change: zone %q is not a domain name", c.Zone)
	}
	if c.IsEmpty() {
		return fmt.Errorf("dnsreport: change for zone %s is empty", c.Zone)
	}
	zone := dns.Fqdn(c.Zone)
	check := func(name string) error {
		if !dns.IsSubDomain(zone, dns.Fqdn(name)) {
			return fmt.Errorf("dnsreport: change: %s is outside zone %s", name, zone)
		}
		return nil
	}
	for _, n := range c.DeleteNames {
		if err := check(n); err != nil {
			return err
		}
	}
	for _, r := range c.DeleteRRsets {
		if err := check(r.Name); err != nil {
			return err
		}
	}
	for _, set := range [][]dns.RR{c.Delete, c.Add} {
		for _, rr := range set {
			if rr == nil {
				return fmt.Errorf("dnsreport: change for zone %s holds a nil record", zone)
			}
			if err := check(rr.Header().Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// Msg builds the unsigned UPDATE message. Records are copied, so the
// change can be sent again.
func (c Change) Msg() *dns.Msg {
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(c.Zone))
	for _, n := range c.DeleteNames {
		m.Ns = append(m.Ns, &dns.ANY{Hdr: dns.RR_Header{Name: dns.Fqdn(n), Rrtype: dns.TypeANY, Class: dns.ClassANY}})
	}
	for _, r := range c.DeleteRRsets {
		m.Ns = append(m.Ns, &dns.ANY{Hdr: dns.RR_Header{Name: dns.Fqdn(r.Name), Rrtype: r.Type, Class: dns.ClassANY}})
	}
	for _, rr := range c.Delete {
		cp := dns.Copy(rr)
		cp.Header().Class = dns.ClassNONE
		cp.Header().Ttl = 0
		m.Ns = append(m.Ns, cp)
	}
	for _, rr := range c.Add {
		cp := dns.Copy(rr)
		if cp.Header().Class == 0 {
			cp.Header().Class = dns.ClassINET
		}
		m.Ns = append(m.Ns, cp)
	}
	return m
}

// String summarises the change for logs.
func (c Change) String() string {
	var parts []string
	for _, n := range c.DeleteNames {
		parts = append(parts, "delete name "+n)
	}
	for _, r := range c.DeleteRRsets {
		parts = append(parts, fmt.Sprintf("delete %s %s", r.Name, dns.TypeToString[r.Type]))
	}
	for _, rr := range c.Delete {
		parts = append(parts, "delete "+rrText(rr))
	}
	for _, rr := range c.Add {
		parts = append(parts, "add "+rrText(rr))
	}
	return fmt.Sprintf("zone %s: %s", c.Zone, strings.Join(parts, "; "))
}

// rrText is the record without TTL and class, e.g. "n.z. A 192.0.2.1".
func rrText(rr dns.RR) string {
	if rr == nil {
		return "<nil>"
	}
	h := rr.Header()
	data := strings.TrimPrefix(rr.String(), h.String())
	return fmt.Sprintf("%s %s %s", h.Name, dns.TypeToString[h.Rrtype], data)
}
