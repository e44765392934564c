package dnsserver

import "errors"

// Sentinel errors callers may branch on; returned errors wrap them with %w.
var (
	// ErrNoSOA: zone data has no SOA record at the origin.
	ErrNoSOA = errors.New("dnsserver: zone has no SOA at its origin")
	// ErrNoNS: zone data has no NS record at the origin.
	ErrNoNS = errors.New("dnsserver: zone has no NS at its origin")
	// ErrSecondSOA: zone data has more than one SOA.
	ErrSecondSOA = errors.New("dnsserver: zone has more than one SOA")
	// ErrOutOfZone: a record's owner is not at or below the zone origin.
	ErrOutOfZone = errors.New("dnsserver: record outside the zone")
	// ErrCNAMEConflict: a CNAME shares its name with other data.
	ErrCNAMEConflict = errors.New("dnsserver: CNAME and other data at the same name")
	// ErrDuplicateZone: two zones have the same origin.
	ErrDuplicateZone = errors.New("dnsserver: zone served twice")
	// ErrNoZone: no zone with the given origin is served.
	ErrNoZone = errors.New("dnsserver: no such zone")
	// ErrClosed: the server was already closed.
	ErrClosed = errors.New("dnsserver: server closed")
)
