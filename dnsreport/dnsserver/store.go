package dnsserver

import (
	"fmt"
	"sort"
	"sync"

	"github.com/miekg/dns"
)

// Store is the set of zones a server is authoritative for, guarded by one
// RWMutex: queries and transfers take the read lock, an UPDATE takes the
// write lock for its whole check-and-apply step, and no lock is held while a
// message is sent. All methods are safe for concurrent use and return copies.
type Store struct {
	mu    sync.RWMutex
	zones map[string]*Zone // by canonical origin
}

// NewStore takes ownership of zones: callers must not use them afterwards.
func NewStore(zones ...*Zone) (*Store, error) {
	s := &Store{zones: make(map[string]*Zone, len(zones))}
	for _, z := range zones {
		if _, dup := s.zones[z.origin]; dup {
			return nil, fmt.Errorf("%w: %s", ErrDuplicateZone, z.origin)
		}
		s.zones[z.origin] = z
	}
	return s, nil
}

// Origins returns the origins served, sorted.
func (s *Store) Origins() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.zones))
	for o := range s.zones {
		out = append(out, o)
	}
	sort.Strings(out)
	return out
}

// Lookup returns the records of exactly name and type t (dns.TypeANY: all
// types) from the zone holding name, without wildcard expansion. It is meant
// for inspection (tests, dsnctl-like tools), not for answering queries.
func (s *Store) Lookup(name string, t uint16) []dns.RR {
	s.mu.RLock()
	defer s.mu.RUnlock()
	z := s.zoneFor(canonical(name))
	if z == nil {
		return nil
	}
	return z.Lookup(name, t)
}

// Serial returns the SOA serial of the zone with the given origin.
func (s *Store) Serial(origin string) (uint32, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	z, ok := s.zones[canonical(origin)]
	if !ok {
		return 0, fmt.Errorf("%w: %s", ErrNoZone, origin)
	}
	return z.Serial(), nil
}

// Records returns a copy of all records of the zone with the given origin,
// SOA first.
func (s *Store) Records(origin string) ([]dns.RR, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	z, ok := s.zones[canonical(origin)]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoZone, origin)
	}
	return z.Records(), nil
}

// zoneFor returns the most specific zone holding the canonical name, or nil.
// The caller holds the lock.
func (s *Store) zoneFor(name string) *Zone {
	for n := name; ; {
		if z, ok := s.zones[n]; ok {
			return z
		}
		next, end := dns.NextLabel(n, 0)
		if end {
			if z, ok := s.zones["."]; ok {
				return z
			}
			return nil
		}
		n = n[next:]
	}
}

// insideZone reports whether the canonical name is at or below some origin
// (used to tell NOTAUTH from REFUSED). The caller holds the lock.
func (s *Store) insideZone(name string) bool { return s.zoneFor(name) != nil }
