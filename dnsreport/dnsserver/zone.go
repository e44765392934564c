package dnsserver

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// Zone is the in-memory data of one zone: the RRsets of every owner name at
// or below its origin, class IN only. Owner names are stored lower-cased;
// RDATA is kept as given. A Zone is not safe for concurrent use by itself: a
// Store guards the zones it holds, and callers read them through the Store.
type Zone struct {
	origin string
	// names maps an owner name to its RRsets; no empty maps or slices.
	names map[string]map[uint16][]dns.RR
	// exist counts, for every name that exists in the RFC 4592 sense (it owns
	// records or is an empty non-terminal above one), the owners at or below
	// it.
	exist map[string]int
}

// ParseZone reads RFC 1035 master-file text for origin. file only labels
// errors. The zone must have exactly one SOA, at the origin, and at least
// one NS there; every record must be class IN and at or below the origin;
// a CNAME may not share its name with other data. $INCLUDE is refused.
// Exact duplicate records are merged.
func ParseZone(origin string, r io.Reader, file string) (*Zone, error) {
	if err := validateName(origin); err != nil {
		return nil, fmt.Errorf("dnsserver: zone origin: %w", err)
	}
	z := newZone(origin)
	zp := dns.NewZoneParser(r, z.origin, file)
	zp.SetIncludeAllowed(false)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if err := z.load(rr); err != nil {
			return nil, fmt.Errorf("dnsserver: zone %s: %s: %w", z.origin, rr.String(), err)
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("dnsserver: zone %s: %w", z.origin, err)
	}
	if z.soa() == nil {
		return nil, fmt.Errorf("dnsserver: zone %s: %w", z.origin, ErrNoSOA)
	}
	if len(z.rrset(z.origin, dns.TypeNS)) == 0 {
		return nil, fmt.Errorf("dnsserver: zone %s: %w", z.origin, ErrNoNS)
	}
	return z, nil
}

// ParseZoneString is ParseZone on a string.
func ParseZoneString(origin, text string) (*Zone, error) {
	return ParseZone(origin, strings.NewReader(text), "")
}

func newZone(origin string) *Zone {
	return &Zone{
		origin: canonical(origin),
		names:  make(map[string]map[uint16][]dns.RR),
		exist:  make(map[string]int),
	}
}

// load adds one master-file record after the checks ParseZone promises.
func (z *Zone) load(rr dns.RR) error {
	h := rr.Header()
	name := canonical(h.Name)
	switch {
	case h.Class != dns.ClassINET:
		return fmt.Errorf("class %s: only IN is served", dns.Class(h.Class))
	case isMetaType(h.Rrtype):
		return fmt.Errorf("type %s cannot appear in a zone", dns.Type(h.Rrtype))
	case !z.contains(name):
		return ErrOutOfZone
	case h.Rrtype == dns.TypeSOA && name != z.origin:
		return fmt.Errorf("%w: SOA is only allowed at the origin", ErrOutOfZone)
	case h.Rrtype == dns.TypeSOA && z.soa() != nil:
		return ErrSecondSOA
	case h.Rrtype == dns.TypeCNAME && z.hasOtherThan(name, dns.TypeCNAME):
		return ErrCNAMEConflict
	case h.Rrtype != dns.TypeCNAME && len(z.rrset(name, dns.TypeCNAME)) > 0:
		return ErrCNAMEConflict
	case h.Rrtype == dns.TypeCNAME && len(z.rrset(name, dns.TypeCNAME)) > 0:
		return fmt.Errorf("%w: a name has at most one CNAME", ErrCNAMEConflict)
	}
	if !z.hasRR(rr) {
		z.add(rr)
	}
	return nil
}

// Origin returns the zone apex, lower-case and fully qualified.
func (z *Zone) Origin() string { return z.origin }

// Serial returns the SOA serial.
func (z *Zone) Serial() uint32 { return z.soa().Serial }

// Records returns a copy of every record: the SOA first, then the others
// sorted by owner name and type.
func (z *Zone) Records() []dns.RR {
	names := make([]string, 0, len(z.names))
	for n := range z.names {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return lessName(names[i], names[j]) })
	out := []dns.RR{dns.Copy(z.soa())}
	for _, n := range names {
		for _, t := range sortedTypes(z.names[n]) {
			if t == dns.TypeSOA {
				continue
			}
			out = append(out, copyRRs(z.names[n][t])...)
		}
	}
	return out
}

// Lookup returns copies of the records of exactly name and type t (no
// wildcard expansion); dns.TypeANY returns all types at name.
func (z *Zone) Lookup(name string, t uint16) []dns.RR {
	name = canonical(name)
	if t != dns.TypeANY {
		return copyRRs(z.rrset(name, t))
	}
	var out []dns.RR
	for _, typ := range sortedTypes(z.names[name]) {
		out = append(out, copyRRs(z.names[name][typ])...)
	}
	return out
}

func (z *Zone) soa() *dns.SOA {
	if s := z.rrset(z.origin, dns.TypeSOA); len(s) > 0 {
		return s[0].(*dns.SOA)
	}
	return nil
}

// contains reports whether the canonical name is at or below the origin.
func (z *Zone) contains(name string) bool { return dns.IsSubDomain(z.origin, name) }

func (z *Zone) rrset(name string, t uint16) []dns.RR { return z.names[name][t] }

// inUse reports whether name owns at least one record.
func (z *Zone) inUse(name string) bool { return len(z.names[name]) > 0 }

// exists reports whether name exists in the RFC 4592 sense: it owns records
// or is an empty non-terminal.
func (z *Zone) exists(name string) bool { return z.exist[name] > 0 }

func (z *Zone) hasOtherThan(name string, t uint16) bool {
	for typ := range z.names[name] {
		if typ != t {
			return true
		}
	}
	return false
}

// hasRR reports whether the zone holds rr, comparing RDATA and ignoring TTL
// (the class of rr is taken to be IN).
func (z *Zone) hasRR(rr dns.RR) bool {
	return indexRR(z.rrset(canonical(rr.Header().Name), rr.Header().Rrtype), rr) >= 0
}

// add stores a copy of rr (owner lower-cased, class IN) without any checks.
func (z *Zone) add(rr dns.RR) {
	c := dns.Copy(rr)
	h := c.Header()
	h.Name, h.Class, h.Rdlength = canonical(h.Name), dns.ClassINET, 0
	sets := z.names[h.Name]
	if sets == nil {
		sets = make(map[uint16][]dns.RR)
		z.names[h.Name] = sets
		z.adjustExist(h.Name, +1)
	}
	sets[h.Rrtype] = append(sets[h.Rrtype], c)
}

// setRRset replaces the RRset (name, t); an empty rrs deletes it.
func (z *Zone) setRRset(name string, t uint16, rrs []dns.RR) {
	sets := z.names[name]
	if len(rrs) > 0 {
		if sets == nil {
			sets = make(map[uint16][]dns.RR)
			z.names[name] = sets
			z.adjustExist(name, +1)
		}
		sets[t] = rrs
		return
	}
	if sets == nil {
		return
	}
	delete(sets, t)
	if len(sets) == 0 {
		delete(z.names, name)
		z.adjustExist(name, -1)
	}
}

// adjustExist adds delta to the existence count of name and every ancestor
// up to the origin.
func (z *Zone) adjustExist(name string, delta int) {
	for n := name; ; {
		z.exist[n] += delta
		if z.exist[n] <= 0 {
			delete(z.exist, n)
		}
		if n == z.origin {
			return
		}
		next, end := dns.NextLabel(n, 0)
		if end {
			return
		}
		n = n[next:]
	}
}

// indexRR returns the position in rrs of a record with rr's type and RDATA,
// or -1. Classes and TTLs are ignored.
func indexRR(rrs []dns.RR, rr dns.RR) int {
	probe := dns.Copy(rr)
	for i, z := range rrs {
		ph := probe.Header()
		ph.Class, ph.Name = z.Header().Class, z.Header().Name
		if dns.IsDuplicate(z, probe) {
			return i
		}
	}
	return -1
}

func copyRRs(rrs []dns.RR) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
	}
	return out
}

func sortedTypes(sets map[uint16][]dns.RR) []uint16 {
	ts := make([]uint16, 0, len(sets))
	for t := range sets {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return ts
}

// lessName orders names canonically (RFC 4034 section 6.1) closely enough
// for stable output: by labels from the root down.
func lessName(a, b string) bool {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if la[i] != lb[j] {
			return la[i] < lb[j]
		}
	}
	return len(la) < len(lb)
}

// canonical lower-cases name and makes it fully qualified.
func canonical(name string) string { return dns.CanonicalName(name) }

// isMetaType reports types that never appear as zone data.
func isMetaType(t uint16) bool {
	switch t {
	case dns.TypeNone, dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB,
		dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY:
		return true
	}
	return false
}
