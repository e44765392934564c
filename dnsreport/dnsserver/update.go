package dnsserver

import (
	"fmt"

	"github.com/miekg/dns"
)

// updateResult is the outcome of one RFC 2136 UPDATE against the store.
type updateResult struct {
	rcode   int
	changes int    // records added, re-timed or removed
	serial  uint32 // zone serial after the update
	reason  string // why a non-NOERROR rcode was chosen, for logs
}

func updateFailed(rcode int, format string, args ...any) updateResult {
	return updateResult{rcode: rcode, reason: fmt.Sprintf(format, args...)}
}

// update runs an UPDATE for the zone named in the zone section (zname,
// class IN): the prerequisites (RFC 2136 section 3.2), the prescan of the
// update section (3.4.1) and, only if both pass, the updates (3.4.2). It holds
// the write lock throughout, so the update is atomic: all of it is applied or
// none. When anything changed, the SOA serial is incremented unless the update
// itself raised it.
//
// A zone we do not serve gives REFUSED; a name inside one of our zones that is
// not a zone apex gives NOTAUTH (RFC 2136 section 3.1.2).
func (s *Store) update(zname string, prereq, updates []dns.RR) updateResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	zname = canonical(zname)
	z := s.zones[zname]
	if z == nil {
		if s.insideZone(zname) {
			return updateFailed(dns.RcodeNotAuth, "%s is not a zone apex", zname)
		}
		return updateFailed(dns.RcodeRefused, "zone %s is not served", zname)
	}
	if r := s.checkPrereqs(z, prereq); r.rcode != dns.RcodeSuccess {
		return r
	}
	if r := s.prescan(z, updates); r.rcode != dns.RcodeSuccess {
		return r
	}
	before := z.soa().Serial
	changes := 0
	for _, rr := range updates {
		changes += z.apply(rr)
	}
	if changes > 0 && !serialGreater(z.soa().Serial, before) {
		soa := dns.Copy(z.soa()).(*dns.SOA)
		soa.Serial = before + 1
		if soa.Serial == 0 { // skip 0 on wrap-around, as BIND does
			soa.Serial = 1
		}
		z.setRRset(z.origin, dns.TypeSOA, []dns.RR{soa})
	}
	return updateResult{rcode: dns.RcodeSuccess, changes: changes, serial: z.soa().Serial}
}

// inZone reports whether name belongs to zone z and not to a more specific
// zone the store also serves.
func (s *Store) inZone(z *Zone, name string) bool {
	return z.contains(name) && s.zoneFor(name) == z
}

// checkPrereqs evaluates the prerequisite section (RFC 2136 section 3.2.5).
func (s *Store) checkPrereqs(z *Zone, prereq []dns.RR) updateResult {
	type key struct {
		name string
		t    uint16
	}
	var temp []key
	want := make(map[key][]dns.RR)
	for _, rr := range prereq {
		h := rr.Header()
		name := canonical(h.Name)
		if h.Ttl != 0 {
			return updateFailed(dns.RcodeFormatError, "prerequisite %s: TTL must be 0", h.Name)
		}
		if !s.inZone(z, name) {
			return updateFailed(dns.RcodeNotZone, "prerequisite %s: outside zone %s", h.Name, z.origin)
		}
		switch h.Class {
		case dns.ClassANY:
			if hasRdata(rr) {
				return updateFailed(dns.RcodeFormatError, "prerequisite %s: class ANY with RDATA", h.Name)
			}
			if h.Rrtype == dns.TypeANY {
				if !z.inUse(name) {
					return updateFailed(dns.RcodeNameError, "prerequisite: name %s not in use", h.Name)
				}
			} else if len(z.rrset(name, h.Rrtype)) == 0 {
				return updateFailed(dns.RcodeNXRrset, "prerequisite: RRset %s %s does not exist", h.Name, dns.Type(h.Rrtype))
			}
		case dns.ClassNONE:
			if hasRdata(rr) {
				return updateFailed(dns.RcodeFormatError, "prerequisite %s: class NONE with RDATA", h.Name)
			}
			if h.Rrtype == dns.TypeANY {
				if z.inUse(name) {
					return updateFailed(dns.RcodeYXDomain, "prerequisite: name %s is in use", h.Name)
				}
			} else if len(z.rrset(name, h.Rrtype)) > 0 {
				return updateFailed(dns.RcodeYXRrset, "prerequisite: RRset %s %s exists", h.Name, dns.Type(h.Rrtype))
			}
		case dns.ClassINET:
			if isMetaType(h.Rrtype) {
				return updateFailed(dns.RcodeFormatError, "prerequisite %s: meta type %s", h.Name, dns.Type(h.Rrtype))
			}
			k := key{name, h.Rrtype}
			if _, ok := want[k]; !ok {
				temp = append(temp, k)
			}
			if indexRR(want[k], rr) < 0 {
				want[k] = append(want[k], rr)
			}
		default:
			return updateFailed(dns.RcodeFormatError, "prerequisite %s: class %s", h.Name, dns.Class(h.Class))
		}
	}
	for _, k := range temp {
		if !sameRRset(z.rrset(k.name, k.t), want[k]) {
			return updateFailed(dns.RcodeNXRrset, "prerequisite: RRset %s %s differs", k.name, dns.Type(k.t))
		}
	}
	return updateResult{rcode: dns.RcodeSuccess}
}

// prescan checks the update section before anything is applied (RFC 2136
// section 3.4.1.3), so that applying can no longer fail.
func (s *Store) prescan(z *Zone, updates []dns.RR) updateResult {
	for _, rr := range updates {
		h := rr.Header()
		if !s.inZone(z, canonical(h.Name)) {
			return updateFailed(dns.RcodeNotZone, "update %s: outside zone %s", h.Name, z.origin)
		}
		switch h.Class {
		case dns.ClassINET:
			if isMetaType(h.Rrtype) {
				return updateFailed(dns.RcodeFormatError, "update %s: cannot add meta type %s", h.Name, dns.Type(h.Rrtype))
			}
			if !hasRdata(rr) {
				return updateFailed(dns.RcodeFormatError, "update %s %s: record to add has no RDATA", h.Name, dns.Type(h.Rrtype))
			}
			if _, err := dns.PackRR(rr, make([]byte, dns.Len(rr)+1), 0, nil, false); err != nil {
				return updateFailed(dns.RcodeFormatError, "update %s %s: bad RDATA: %v", h.Name, dns.Type(h.Rrtype), err)
			}
		case dns.ClassANY:
			if h.Ttl != 0 || hasRdata(rr) || (isMetaType(h.Rrtype) && h.Rrtype != dns.TypeANY) {
				return updateFailed(dns.RcodeFormatError, "update %s: bad delete of RRset %s", h.Name, dns.Type(h.Rrtype))
			}
		case dns.ClassNONE:
			if h.Ttl != 0 || isMetaType(h.Rrtype) {
				return updateFailed(dns.RcodeFormatError, "update %s: bad delete of RR %s", h.Name, dns.Type(h.Rrtype))
			}
		default:
			return updateFailed(dns.RcodeFormatError, "update %s: class %s", h.Name, dns.Class(h.Class))
		}
	}
	return updateResult{rcode: dns.RcodeSuccess}
}

// apply performs one prescanned update RR (RFC 2136 section 3.4.2) and
// returns how many records it changed. Conflicting additions are silently
// ignored, as the RFC requires.
func (z *Zone) apply(rr dns.RR) int {
	h := rr.Header()
	name := canonical(h.Name)
	switch h.Class {
	case dns.ClassINET:
		return z.applyAdd(name, rr)
	case dns.ClassANY:
		if h.Rrtype == dns.TypeANY {
			n := 0
			for t, rrs := range z.names[name] {
				if name == z.origin && (t == dns.TypeSOA || t == dns.TypeNS) {
					continue // 3.4.2.3: the apex keeps its SOA and NS
				}
				n += len(rrs)
				z.setRRset(name, t, nil)
			}
			return n
		}
		if name == z.origin && (h.Rrtype == dns.TypeSOA || h.Rrtype == dns.TypeNS) {
			return 0
		}
		n := len(z.rrset(name, h.Rrtype))
		z.setRRset(name, h.Rrtype, nil)
		return n
	case dns.ClassNONE:
		set := z.rrset(name, h.Rrtype)
		i := indexRR(set, rr)
		switch {
		case i < 0, h.Rrtype == dns.TypeSOA:
			return 0
		case h.Rrtype == dns.TypeNS && name == z.origin && len(set) == 1:
			return 0 // 3.4.2.4: never delete the last apex NS
		}
		rest := append(append([]dns.RR(nil), set[:i]...), set[i+1:]...)
		z.setRRset(name, h.Rrtype, rest)
		return 1
	}
	return 0
}

// applyAdd adds rr to its RRset (RFC 2136 section 3.4.2.2). A CNAME is
// ignored where other data exists and other data where a CNAME exists; an
// SOA replaces the apex SOA only if its serial is not lower; a CNAME replaces
// the existing one; duplicates are ignored. The RRset takes the new record's
// TTL (BIND does the same), so an RRset never has mixed TTLs.
func (z *Zone) applyAdd(name string, rr dns.RR) int {
	h := rr.Header()
	switch h.Rrtype {
	case dns.TypeCNAME:
		if z.hasOtherThan(name, dns.TypeCNAME) {
			return 0
		}
	case dns.TypeSOA:
		if name != z.origin || serialGreater(z.soa().Serial, rr.(*dns.SOA).Serial) {
			return 0
		}
	default:
		if len(z.rrset(name, dns.TypeCNAME)) > 0 {
			return 0
		}
	}
	fresh := dns.Copy(rr)
	fh := fresh.Header()
	fh.Name, fh.Class, fh.Rdlength = name, dns.ClassINET, 0
	if h.Rrtype == dns.TypeCNAME || h.Rrtype == dns.TypeSOA {
		old := z.rrset(name, h.Rrtype)
		if len(old) == 1 && dns.IsDuplicate(old[0], fresh) && old[0].Header().Ttl == fh.Ttl {
			return 0
		}
		z.setRRset(name, h.Rrtype, []dns.RR{fresh})
		return 1
	}
	old := z.rrset(name, h.Rrtype)
	changes := 0
	set := make([]dns.RR, 0, len(old)+1)
	for _, o := range old {
		if o.Header().Ttl != fh.Ttl {
			o = dns.Copy(o)
			o.Header().Ttl = fh.Ttl
			changes++
		}
		set = append(set, o)
	}
	if indexRR(old, fresh) < 0 {
		set = append(set, fresh)
		changes++
	}
	if changes > 0 {
		z.setRRset(name, h.Rrtype, set)
	}
	return changes
}

// sameRRset reports whether two RRsets hold the same RDATA (TTL and class
// ignored).
func sameRRset(have, want []dns.RR) bool {
	if len(have) != len(want) {
		return false
	}
	for _, rr := range want {
		if indexRR(have, rr) < 0 {
			return false
		}
	}
	return true
}

// hasRdata reports whether rr carries RDATA. On the wire RFC 2136 marks
// "no RDATA" with RDLENGTH 0, which the decoder keeps in the header; a
// record built in memory has RDATA if it differs from the empty record of
// its type.
func hasRdata(rr dns.RR) bool {
	h := rr.Header()
	if h.Rdlength != 0 {
		return true
	}
	if _, ok := rr.(*dns.ANY); ok { // what dns.Msg.RemoveRRset and friends build
		return false
	}
	var empty dns.RR
	if newRR, ok := dns.TypeToRR[h.Rrtype]; ok {
		empty = newRR()
	} else {
		empty = new(dns.RFC3597)
	}
	*empty.Header() = *h
	return !dns.IsDuplicate(empty, rr)
}

// serialGreater compares SOA serials in RFC 1982 sequence space.
func serialGreater(a, b uint32) bool { return int32(a-b) > 0 }
