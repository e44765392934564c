package churn

import (
	"errors"
	"fmt"
	"time"
)

// Config sets up one churn run. Durations are wall-clock times of the run.
type Config struct {
	// Domain is the DSN SIP domain (and the DNS zone BIND serves).
	Domain string
	// Nodes is the fleet size (sn1..snN on 127.0.0.11...).
	Nodes int
	// Replicas is passed to every node as -replicas; the final check wants
	// exactly this many copies of every AOR.
	Replicas int
	// Reps is passed to every node as -reps: the representatives in DNS.
	Reps int
	// NodeLogLevel is every node's -log-level.
	NodeLogLevel string

	// AORs is how many phones (AORs user00000@Domain ...) register, in
	// Nodes slices, each slice through a different node, at RegisterRate
	// REGISTERs a second. Every Contact is the one SIPp phone (UAS).
	AORs         int
	RegisterRate int

	// CallRate is the steady load, in calls a second: every second one
	// SIPp caller places CallRate calls to random AORs, sent alternately
	// where a CSCF resolving the domain through BIND is told (SRV, then A)
	// and to a random node the harness believes alive.
	CallRate int
	// TalkTime is the pause between ACK and BYE.
	TalkTime time.Duration
	// RecvTimeout is SIPp's -recv_timeout: a call fails when nothing it
	// waits for arrives within this time.
	RecvTimeout time.Duration

	// Baseline is the call load before the first event (no churn): its
	// failures are the baseline the churn is compared with.
	Baseline time.Duration
	// Churn is how long events keep starting; EventGapMin..Max is the
	// time from one event's kill to the next's (and never before the
	// previous event's nodes are back).
	Churn                    time.Duration
	EventGapMin, EventGapMax time.Duration
	// DownMin..DownMax is how long a victim stays down before it is
	// restarted under its name and addresses.
	DownMin, DownMax time.Duration
	// PairShare is the share of events that take two ring neighbours at
	// once; KillShare the share of victims killed with SIGKILL (the others
	// get SIGTERM, a graceful leave). PairEvery, when positive, replaces
	// PairShare: every PairEvery-th event (the PairEvery-th, the
	// 2*PairEvery-th, ...) takes a pair and the others one node.
	PairShare, KillShare float64
	PairEvery            int
	// StableFor is how long DNS, the ring and the copies must stay
	// consistent after a restart before the event counts as settled;
	// SettleTimeout bounds that wait (and the final one).
	StableFor     time.Duration
	SettleTimeout time.Duration
	// Tail is the quiet call load after the last event.
	Tail time.Duration

	// Scenarios is the directory with register.xml, uac.xml, uas.xml.
	Scenarios string
	// Seed fixes every random choice of the run.
	Seed uint64
}

// DefaultConfig is the full run (run.sh): 8 nodes, 10,000 AORs, 30
// calls/s, 3.5 minutes of churn with an event every 15-30 s.
func DefaultConfig() Config {
	return Config{
		Domain:        "dsn.churn",
		Nodes:         8,
		Replicas:      3,
		Reps:          2,
		NodeLogLevel:  "info",
		AORs:          10000,
		RegisterRate:  500,
		CallRate:      30,
		TalkTime:      200 * time.Millisecond,
		RecvTimeout:   6 * time.Second,
		Baseline:      20 * time.Second,
		Churn:         210 * time.Second,
		EventGapMin:   15 * time.Second,
		EventGapMax:   30 * time.Second,
		DownMin:       4 * time.Second,
		DownMax:       10 * time.Second,
		PairShare:     0.3,
		KillShare:     0.5,
		StableFor:     2 * time.Second,
		SettleTimeout: 60 * time.Second,
		Tail:          10 * time.Second,
		Scenarios:     "testdata",
		Seed:          1,
	}
}

// CIConfig is the short version for go test: 2,000 AORs, 20 calls/s, four
// events about 10 s apart (the second and fourth take two neighbours),
// about 65 s.
func CIConfig() Config {
	c := DefaultConfig()
	c.AORs = 2000
	c.CallRate = 20
	c.Baseline = 7 * time.Second
	c.Churn = 36 * time.Second
	c.EventGapMin, c.EventGapMax = 10*time.Second, 10*time.Second
	c.DownMin, c.DownMax = 3*time.Second, 4*time.Second
	c.SettleTimeout = 30 * time.Second
	c.Tail = 3 * time.Second
	c.PairEvery = 2
	return c
}

// Validate checks every field and the fields against each other.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, msg string, args ...any) {
		errs = append(errs, fmt.Errorf("churn: config %s: "+msg, append([]any{field}, args...)...))
	}
	if c.Domain == "" {
		bad("Domain", "is required")
	}
	if c.Nodes < 4 || c.Nodes > 200 {
		bad("Nodes", "must be in 4..200, got %d", c.Nodes)
	}
	if c.Replicas < 3 {
		bad("Replicas", "must be at least 3 (two nodes may be down at once), got %d", c.Replicas)
	}
	if c.Nodes-2 < c.Replicas {
		bad("Nodes", "(%d) must leave Replicas (%d) nodes alive with two down", c.Nodes, c.Replicas)
	}
	if c.Reps < 1 || c.Reps > c.Nodes-2 {
		bad("Reps", "must be in 1..Nodes-2, got %d", c.Reps)
	}
	if c.AORs < 1 || c.AORs > 100000 {
		bad("AORs", "must be in 1..100000, got %d", c.AORs)
	}
	if c.RegisterRate < 1 {
		bad("RegisterRate", "must be positive, got %d", c.RegisterRate)
	}
	if c.CallRate < 1 || c.CallRate > 1000 {
		bad("CallRate", "must be in 1..1000, got %d", c.CallRate)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"RecvTimeout", c.RecvTimeout}, {"EventGapMin", c.EventGapMin}, {"DownMin", c.DownMin},
		{"StableFor", c.StableFor}, {"SettleTimeout", c.SettleTimeout},
	} {
		if d.v <= 0 {
			bad(d.name, "must be positive, got %s", d.v)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"TalkTime", c.TalkTime}, {"Baseline", c.Baseline}, {"Churn", c.Churn}, {"Tail", c.Tail}} {
		if d.v < 0 {
			bad(d.name, "must not be negative, got %s", d.v)
		}
	}
	if c.EventGapMax < c.EventGapMin {
		bad("EventGapMax", "(%s) must be >= EventGapMin (%s)", c.EventGapMax, c.EventGapMin)
	}
	if c.DownMax < c.DownMin {
		bad("DownMax", "(%s) must be >= DownMin (%s)", c.DownMax, c.DownMin)
	}
	if c.DownMax >= c.EventGapMin {
		bad("DownMax", "(%s) must be shorter than EventGapMin (%s): at most two nodes may be down", c.DownMax, c.EventGapMin)
	}
	if c.PairShare < 0 || c.PairShare > 1 {
		bad("PairShare", "must be in [0,1], got %g", c.PairShare)
	}
	if c.PairEvery < 0 {
		bad("PairEvery", "must not be negative, got %d", c.PairEvery)
	}
	if c.KillShare < 0 || c.KillShare > 1 {
		bad("KillShare", "must be in [0,1], got %g", c.KillShare)
	}
	if c.Scenarios == "" {
		bad("Scenarios", "is required")
	}
	return errors.Join(errs...)
}
