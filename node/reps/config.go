package reps

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dsn-ims/dsn/dnsreport"
)

// Config holds the tunables of representative election, neighbour watch and
// reconciliation. Every node of a fleet must use the same K, SlotSeed, Zone,
// Domain and Records (Priority/Weight): they decide who is chosen and which
// records a neighbour's delete must match. Dependencies are in Deps.
type Config struct {
	// K is how many representatives the ring has (-reps). Rings with fewer
	// than K nodes make every node a representative.
	K int
	// SlotSeed names the K ring points whose owners are the
	// representatives (point i = HashKey(SlotSeed) + i*2^64/K).
	SlotSeed string
	// Zone is the DNS zone updated (-dns-zone), Domain the DSN SIP domain
	// (-domain); Domain must lie inside Zone.
	Zone   string
	Domain string
	// Records gives the TTL, SRV priority and weight of the records.
	Records dnsreport.RecordConfig

	// ElectInterval is the period of the election (K ring look-ups). Ring
	// events near this node also trigger one, at most once per
	// ProbeInterval.
	ElectInterval time.Duration
	// LookupTimeout bounds the K look-ups of one election.
	LookupTimeout time.Duration

	// ProbeInterval is how often a watcher asks each representative it
	// watches for its neighbours (the liveness probe).
	ProbeInterval time.Duration
	// RetryInterval is the faster period used while a representative is
	// suspect (it missed a probe, or the ring reported it failed).
	RetryInterval time.Duration
	// ProbeTimeout bounds one probe.
	ProbeTimeout time.Duration
	// SuspectAfter is how many consecutive probes must fail before a
	// watcher deletes a representative's records.
	SuspectAfter int
	// MinSilence: a representative that answered this watcher (or started
	// being watched) less than MinSilence ago is never deleted, whatever
	// the miss count.
	MinSilence time.Duration
	// ForgetAfter is how long a watcher keeps probing a representative it
	// deleted, to cancel a still pending delete if it answers again.
	ForgetAfter time.Duration

	// ReconcileInterval is how often a representative compares DNS with
	// the live nodes (0 disables reconciliation).
	ReconcileInterval time.Duration
	// ReconcileConfirmations is how many consecutive reconciliations must
	// find an entry dead before it is deleted.
	ReconcileConfirmations int
	// Protected lists node labels (the first label of an SRV target in
	// Zone) that reconciliation never deletes: static entries an operator
	// put next to the representatives.
	Protected []string

	// WithdrawStale makes a node that is not chosen on its first election
	// delete its own records once: a representative that restarts after
	// losing its slot leaves nothing behind.
	WithdrawStale bool
}

// DefaultConfig returns production defaults: 2 representatives; a dead
// representative's records are deleted about 0.5-0.8 s after it stops
// answering (4 failed probes, the first 200 ms after the last answer, then
// every 100 ms, and at least 600 ms of silence). Zone and Domain must be set.
func DefaultConfig() Config {
	return Config{
		K:                      2,
		SlotSeed:               "dsn/representatives",
		Records:                dnsreport.DefaultConfig().Records,
		ElectInterval:          time.Second,
		LookupTimeout:          2 * time.Second,
		ProbeInterval:          200 * time.Millisecond,
		RetryInterval:          100 * time.Millisecond,
		ProbeTimeout:           300 * time.Millisecond,
		SuspectAfter:           4,
		MinSilence:             600 * time.Millisecond,
		ForgetAfter:            5 * time.Minute,
		ReconcileInterval:      10 * time.Second,
		ReconcileConfirmations: 2,
		WithdrawStale:          true,
	}
}

// FastConfig is DefaultConfig with short periods for tests.
func FastConfig(zone, domain string) Config {
	c := DefaultConfig()
	c.Zone, c.Domain = zone, domain
	c.ElectInterval = 100 * time.Millisecond
	c.LookupTimeout = 500 * time.Millisecond
	c.ProbeInterval = 20 * time.Millisecond
	c.RetryInterval = 10 * time.Millisecond
	c.ProbeTimeout = 50 * time.Millisecond
	c.SuspectAfter = 3
	c.MinSilence = 40 * time.Millisecond
	c.ForgetAfter = time.Second
	c.ReconcileInterval = 200 * time.Millisecond
	return c
}

// Validate checks every field and the fields against each other.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, msg string, args ...any) {
		errs = append(errs, fmt.Errorf("reps: config %s: "+msg, append([]any{field}, args...)...))
	}
	if c.K < 1 || c.K > 64 {
		bad("K", "must be in 1..64, got %d", c.K)
	}
	if c.SlotSeed == "" {
		bad("SlotSeed", "must not be empty")
	}
	zoneOK, domainOK := validName(c.Zone), validName(c.Domain)
	if !zoneOK {
		bad("Zone", "%q is not a domain name (-dns-zone)", c.Zone)
	}
	if !domainOK {
		bad("Domain", "%q is not a domain name (-domain)", c.Domain)
	}
	if zoneOK && domainOK && !dns.IsSubDomain(dns.Fqdn(c.Zone), dns.Fqdn(c.Domain)) {
		bad("Domain", "%s is not inside zone %s", c.Domain, c.Zone)
	}
	if err := c.Records.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("reps: config Records: %w", err))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ElectInterval", c.ElectInterval}, {"LookupTimeout", c.LookupTimeout},
		{"ProbeInterval", c.ProbeInterval}, {"RetryInterval", c.RetryInterval},
		{"ProbeTimeout", c.ProbeTimeout}, {"ForgetAfter", c.ForgetAfter},
	} {
		if d.v <= 0 {
			bad(d.name, "must be positive, got %s", d.v)
		}
	}
	if c.RetryInterval > c.ProbeInterval {
		bad("RetryInterval", "(%s) must not exceed ProbeInterval (%s)", c.RetryInterval, c.ProbeInterval)
	}
	if c.SuspectAfter < 1 {
		bad("SuspectAfter", "must be at least 1, got %d", c.SuspectAfter)
	}
	if c.MinSilence < 0 {
		bad("MinSilence", "must not be negative, got %s", c.MinSilence)
	}
	if c.ReconcileInterval < 0 {
		bad("ReconcileInterval", "must not be negative, got %s", c.ReconcileInterval)
	}
	if c.ReconcileConfirmations < 1 {
		bad("ReconcileConfirmations", "must be at least 1, got %d", c.ReconcileConfirmations)
	}
	for i, p := range c.Protected {
		if n, ok := dns.IsDomainName(p); !ok || n != 1 || strings.Contains(p, ".") {
			bad(fmt.Sprintf("Protected[%d]", i), "%q is not a single DNS label", p)
		}
	}
	return errors.Join(errs...)
}

func validName(s string) bool {
	_, ok := dns.IsDomainName(s)
	return ok && s != "" && s != "."
}
