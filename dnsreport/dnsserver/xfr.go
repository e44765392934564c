package dnsserver

import "github.com/miekg/dns"

// maxEnvelopeBytes bounds the uncompressed size of the records in one AXFR
// message, well below the 64 KiB DNS-over-TCP limit.
const maxEnvelopeBytes = 16 << 10

// transfer returns the zone with the given origin as AXFR envelopes (RFC
// 5936): SOA, every other record, SOA again, split over messages. The
// snapshot is taken under the read lock and is consistent; nothing is held
// while the caller sends it. rcode is REFUSED for a zone we do not serve and
// NOTAUTH for a non-apex name inside one.
func (s *Store) transfer(origin string) (envelopes [][]dns.RR, rcode int) {
	s.mu.RLock()
	origin = canonical(origin)
	z := s.zones[origin]
	switch {
	case z == nil && s.insideZone(origin):
		s.mu.RUnlock()
		return nil, dns.RcodeNotAuth
	case z == nil:
		s.mu.RUnlock()
		return nil, dns.RcodeRefused
	}
	rrs := append(z.Records(), dns.Copy(z.soa()))
	s.mu.RUnlock()

	var cur []dns.RR
	size := 0
	for _, rr := range rrs {
		l := dns.Len(rr)
		if len(cur) > 0 && size+l > maxEnvelopeBytes {
			envelopes = append(envelopes, cur)
			cur, size = nil, 0
		}
		cur = append(cur, rr)
		size += l
	}
	return append(envelopes, cur), dns.RcodeSuccess
}
