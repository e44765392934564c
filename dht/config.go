package dht

import (
	"errors"
	"fmt"
	"time"
)

// Config holds the tunables of a ring member. Identity (the Peer) and
// dependencies (Transport, clock, randomness, logger) are constructor
// arguments, not configuration.
type Config struct {
	// SuccessorListLen is how many successors each node tracks. It bounds
	// how many consecutive node failures the ring survives without a
	// partition; it must be at least Replicas.
	SuccessorListLen int
	// Replicas is how many copies of every record the ring keeps: the owner
	// plus Replicas-1 successors.
	Replicas int
	// MaxLookupHops bounds one iterative lookup.
	MaxLookupHops int
	// LookupRetries is how many times a lookup restarts after routing around
	// an unreachable node.
	LookupRetries int
	// SyncBuckets is the number of sub-arcs an owner's range is split into
	// for anti-entropy digests with its replicas.
	SyncBuckets int
	// MaxBatch bounds how many records one Store RPC carries.
	MaxBatch int
	// TombstoneTTL is how long a delete marker outlives the delete, so a
	// stale replica cannot resurrect the record.
	TombstoneTTL time.Duration

	// Driver timing (used by Driver, not by the synchronous Node methods).

	// StabilizeInterval is the period of stabilize + check-predecessor.
	StabilizeInterval time.Duration
	// FixFingersInterval is the period of a full finger-table refresh.
	FixFingersInterval time.Duration
	// MaintainInterval is the period of replication maintenance.
	MaintainInterval time.Duration
	// ProbeInterval is how often the immediate neighbours are pinged.
	ProbeInterval time.Duration
	// ProbeTimeout bounds one neighbour ping (the neighbours of a probe
	// round are pinged concurrently) and the driver's check-predecessor.
	ProbeTimeout time.Duration
	// SuspectAfter is how many consecutive failed probes make a neighbour
	// suspect; it is then removed from the ring state. Detection time is
	// about SuspectAfter * ProbeInterval for a crash (refused at once) and
	// SuspectAfter * (ProbeInterval + ProbeTimeout) for a silent peer.
	SuspectAfter int
	// RPCTimeout bounds each RPC issued by the driver's rounds.
	RPCTimeout time.Duration
	// Jitter is the fraction (0..1) by which driver periods are randomised.
	Jitter float64
}

// DefaultConfig returns production defaults: a crashed neighbour is
// suspected in about a second (5 probes 200 ms apart).
func DefaultConfig() Config {
	return Config{
		SuccessorListLen:   8,
		Replicas:           3,
		MaxLookupHops:      64,
		LookupRetries:      8,
		SyncBuckets:        64,
		MaxBatch:           1024,
		TombstoneTTL:       5 * time.Minute,
		StabilizeInterval:  500 * time.Millisecond,
		FixFingersInterval: 2 * time.Second,
		MaintainInterval:   2 * time.Second,
		ProbeInterval:      200 * time.Millisecond,
		ProbeTimeout:       300 * time.Millisecond,
		SuspectAfter:       4,
		RPCTimeout:         2 * time.Second,
		Jitter:             0.2,
	}
}

// FastConfig is DefaultConfig with short periods for tests on loopback.
func FastConfig() Config {
	c := DefaultConfig()
	c.StabilizeInterval = 50 * time.Millisecond
	c.FixFingersInterval = 100 * time.Millisecond
	c.MaintainInterval = 100 * time.Millisecond
	c.ProbeInterval = 50 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.SuspectAfter = 3
	c.RPCTimeout = 500 * time.Millisecond
	return c
}

// Validate checks every field and the fields against each other.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, msg string, args ...any) {
		errs = append(errs, fmt.Errorf("dht: config %s: "+msg, append([]any{field}, args...)...))
	}
	if c.Replicas < 1 {
		bad("Replicas", "must be at least 1, got %d", c.Replicas)
	}
	if c.SuccessorListLen < 1 {
		bad("SuccessorListLen", "must be at least 1, got %d", c.SuccessorListLen)
	}
	if c.SuccessorListLen < c.Replicas {
		bad("SuccessorListLen", "(%d) must be >= Replicas (%d) so every replica holder is tracked", c.SuccessorListLen, c.Replicas)
	}
	if c.MaxLookupHops < 1 {
		bad("MaxLookupHops", "must be at least 1, got %d", c.MaxLookupHops)
	}
	if c.LookupRetries < 1 {
		bad("LookupRetries", "must be at least 1, got %d", c.LookupRetries)
	}
	if c.SyncBuckets < 1 || c.SyncBuckets > 4096 {
		bad("SyncBuckets", "must be in 1..4096, got %d", c.SyncBuckets)
	}
	if c.MaxBatch < 1 {
		bad("MaxBatch", "must be at least 1, got %d", c.MaxBatch)
	}
	if c.TombstoneTTL <= 0 {
		bad("TombstoneTTL", "must be positive, got %s", c.TombstoneTTL)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"StabilizeInterval", c.StabilizeInterval}, {"FixFingersInterval", c.FixFingersInterval},
		{"MaintainInterval", c.MaintainInterval}, {"ProbeInterval", c.ProbeInterval},
		{"ProbeTimeout", c.ProbeTimeout}, {"RPCTimeout", c.RPCTimeout},
	} {
		if d.v <= 0 {
			bad(d.name, "must be positive, got %s", d.v)
		}
	}
	if c.SuspectAfter < 1 {
		bad("SuspectAfter", "must be at least 1, got %d", c.SuspectAfter)
	}
	if c.Jitter < 0 || c.Jitter >= 1 {
		bad("Jitter", "must be in [0,1), got %g", c.Jitter)
	}
	return errors.Join(errs...)
}
