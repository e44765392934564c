package dnsserver

import (
	"github.com/miekg/dns"
)

// maxCNAMEChain bounds how many CNAMEs a single answer follows.
const maxCNAMEChain = 8

// answer is the outcome of a query against the store.
type answer struct {
	rcode         int
	authoritative bool
	answer        []dns.RR
	ns            []dns.RR
	extra         []dns.RR
}

// findKind classifies a single-zone lookup.
type findKind int

const (
	foundData  findKind = iota // records of the asked type (or ANY)
	foundCNAME                 // a CNAME to follow
	noData                     // the name exists, the type does not
	nxDomain                   // the name does not exist
	delegated                  // the name is at or below a zone cut
)

// query answers (qname, qtype) per RFC 1034 section 4.3.2 and RFC 4592:
// exact names win over wildcards, an existing name (even an empty
// non-terminal) blocks wildcard synthesis, and the wildcard used is the one
// at the closest encloser. CNAMEs are followed within the served zones.
func (s *Store) query(qname string, qtype uint16) answer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	z := s.zoneFor(canonical(qname))
	if z == nil {
		return answer{rcode: dns.RcodeRefused}
	}
	res := answer{authoritative: true}
	owner := qname
	seen := make(map[string]bool)
	for hop := 0; ; hop++ {
		name := canonical(owner)
		seen[name] = true
		kind, rrs := z.find(name, qtype)
		switch kind {
		case foundData, foundCNAME:
			res.answer = append(res.answer, withOwner(rrs, owner)...)
		case noData:
			res.ns = []dns.RR{z.negativeSOA()}
		case nxDomain:
			res.rcode = dns.RcodeNameError
			res.ns = []dns.RR{z.negativeSOA()}
		case delegated:
			res.authoritative = hop > 0 // a referral is not an authoritative answer
			res.ns = copyRRs(rrs)
		}
		if kind != foundCNAME {
			break
		}
		target := rrs[0].(*dns.CNAME).Target
		next := s.zoneFor(canonical(target))
		if next == nil || seen[canonical(target)] || hop+1 >= maxCNAMEChain {
			break // the resolver goes on from here
		}
		z, owner = next, target
	}
	res.extra = s.additional(append(append([]dns.RR(nil), res.answer...), res.ns...))
	return res
}

// find looks name up in one zone; rrs holds the data for foundData,
// foundCNAME (the CNAME) and delegated (the NS RRset of the cut).
func (z *Zone) find(name string, qtype uint16) (findKind, []dns.RR) {
	if cut := z.cut(name, qtype); cut != nil {
		return delegated, cut
	}
	sets := z.names[name]
	if len(sets) == 0 {
		if z.exists(name) {
			return noData, nil
		}
		sets = z.names["*."+z.closestEncloser(name)]
		if len(sets) == 0 {
			return nxDomain, nil
		}
	}
	if qtype == dns.TypeANY {
		var all []dns.RR
		for _, t := range sortedTypes(sets) {
			all = append(all, sets[t]...)
		}
		return foundData, all
	}
	if rrs := sets[qtype]; len(rrs) > 0 {
		return foundData, rrs
	}
	if rrs := sets[dns.TypeCNAME]; len(rrs) > 0 {
		return foundCNAME, rrs
	}
	return noData, nil
}

// cut returns the NS RRset of the highest zone cut (a non-apex name owning
// NS) at or above name, or nil. A DS query for the cut itself is answered
// from this side of the cut.
func (z *Zone) cut(name string, qtype uint16) []dns.RR {
	var found []dns.RR
	for n := name; n != z.origin; {
		if ns := z.rrset(n, dns.TypeNS); len(ns) > 0 && !(n == name && qtype == dns.TypeDS) {
			found = ns // keep walking up: the highest cut wins
		}
		next, end := dns.NextLabel(n, 0)
		if end {
			break
		}
		n = n[next:]
	}
	return found
}

// closestEncloser returns the longest existing ancestor of a name that does
// not exist (RFC 4592 section 3.3.1); the origin always exists.
func (z *Zone) closestEncloser(name string) string {
	for n := name; n != z.origin; {
		if z.exists(n) {
			return n
		}
		next, end := dns.NextLabel(n, 0)
		if end {
			break
		}
		n = n[next:]
	}
	return z.origin
}

// negativeSOA returns the SOA for the authority section of a negative
// answer, its TTL lowered to the SOA minimum (RFC 2308 section 5).
func (z *Zone) negativeSOA() dns.RR {
	soa := dns.Copy(z.soa()).(*dns.SOA)
	soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	return soa
}

// additional returns the A and AAAA records the store holds for the targets
// of NS, SRV and MX records in rrs (glue and RFC 2782 additional data).
func (s *Store) additional(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	seen := make(map[string]bool)
	for _, rr := range rrs {
		var target string
		switch v := rr.(type) {
		case *dns.NS:
			target = v.Ns
		case *dns.SRV:
			target = v.Target
		case *dns.MX:
			target = v.Mx
		default:
			continue
		}
		target = canonical(target)
		if seen[target] {
			continue
		}
		seen[target] = true
		z := s.zoneFor(target)
		if z == nil {
			continue
		}
		out = append(out, copyRRs(z.rrset(target, dns.TypeA))...)
		out = append(out, copyRRs(z.rrset(target, dns.TypeAAAA))...)
	}
	return out
}

// withOwner returns copies of rrs named owner (the name as asked, which
// matters for wildcard synthesis and keeps the question's spelling).
func withOwner(rrs []dns.RR, owner string) []dns.RR {
	out := copyRRs(rrs)
	for _, rr := range out {
		rr.Header().Name = owner
	}
	return out
}
