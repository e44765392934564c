package overload

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Load is the node's state the gate decides on, sampled for every new
// out-of-dialog request.
type Load struct {
	// InFlight is the number of requests being handled.
	InFlight int
	// Goroutines is the process's goroutine count.
	Goroutines int
	// QueueDelay is the recent scheduling delay of runnable goroutines,
	// and HeapBytes the live heap (see Sampler).
	QueueDelay time.Duration
	HeapBytes  uint64
}

// Reason says why the gate shed a request; it labels metrics.
type Reason string

const (
	ReasonInflight   Reason = "inflight"
	ReasonGoroutines Reason = "goroutines"
	ReasonQueueDelay Reason = "queue_delay"
	ReasonHeap       Reason = "heap"
	ReasonRate       Reason = "rate"
)

// Verdict is what to do with one message.
type Verdict int

const (
	// Admit: hand the message to the SIP stack.
	Admit Verdict = iota
	// Reject: answer 503 with Retry-After, statelessly.
	Reject
	// Absorb: drop it; it is the ACK of a response the gate sent.
	Absorb
)

// Decision is the gate's answer for one message.
type Decision struct {
	Verdict Verdict
	// Reason is set for Reject.
	Reason Reason
}

// Metrics receives the gate's and the wrappers' counts. Calls come from
// the read goroutines and must not block.
type Metrics interface {
	// Rejected counts a request answered 503 for overload.
	Rejected(method string, reason Reason)
	// Dropped counts input discarded by the wrappers: transport "udp" or
	// "tcp", and why (see the Drop constants).
	Dropped(transport string, why Drop)
	// Conns reports the inbound TCP connections held now.
	Conns(n int)
}

// Drop says why input was discarded.
type Drop string

const (
	// DropOversized: a datagram or message over Config.MaxMessage (or a
	// datagram that filled the read buffer and may be cut).
	DropOversized Drop = "oversized"
	// DropMalformed: not a SIP message (UDP), or not framable (TCP).
	DropMalformed Drop = "malformed"
	// DropConnLimit, DropConnLimitIP: a TCP connection over MaxConns or
	// MaxConnsPerIP, closed at once.
	DropConnLimit   Drop = "conn_limit"
	DropConnLimitIP Drop = "conn_limit_ip"
	// DropIdle, DropSlow: a TCP connection closed by IdleTimeout or by
	// MessageTimeout.
	DropIdle Drop = "idle_timeout"
	DropSlow Drop = "message_timeout"
	// DropWriteTimeout: a TCP peer that did not read for WriteTimeout.
	DropWriteTimeout Drop = "write_timeout"
)

type nopMetrics struct{}

func (nopMetrics) Rejected(string, Reason) {}
func (nopMetrics) Dropped(string, Drop)    {}
func (nopMetrics) Conns(int)               {}

// Deps are the gate's dependencies.
type Deps struct {
	// Load samples the node's load; required.
	Load func() Load
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics receives counts; nil discards them.
	Metrics Metrics
}

// Gate is the admission control in front of a SIP stack. Safe for
// concurrent use; Decide never blocks beyond a short mutex.
type Gate struct {
	cfg     Config
	load    func() Load
	now     func() time.Time
	metrics Metrics

	mu      sync.Mutex
	tokens  float64
	refill  time.Time
	tracked map[string]time.Time // admitted branches -> forget at
	order   []tracked            // the same, oldest first (a queue)
	head    int

	admitted, rejected atomic.Int64
	lastShed           atomic.Int64 // unix nanoseconds of the last Reject
}

type tracked struct {
	branch string
	until  time.Time
}

// New returns a gate.
func New(cfg Config, deps Deps) (*Gate, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Load == nil {
		return nil, fmt.Errorf("%w: Deps.Load is required", ErrInvalidConfig)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Metrics == nil {
		deps.Metrics = nopMetrics{}
	}
	return &Gate{cfg: cfg, load: deps.Load, now: deps.Now, metrics: deps.Metrics,
		tokens: float64(cfg.Burst), tracked: make(map[string]time.Time)}, nil
}

// Config returns the gate's configuration.
func (g *Gate) Config() Config { return g.cfg }

// Admit decides on one message with the current load and time, and
// counts a rejection.
func (g *Gate) Admit(h *Head) Decision {
	d := g.Decide(h, g.load, g.now())
	if d.Verdict == Reject {
		g.metrics.Rejected(h.Method, d.Reason)
	}
	return d
}

// Decide is the gate's rule; load is called only for a new out-of-dialog
// request.
//
//   - Responses, ACK, CANCEL and requests inside a dialog (To tag) are
//     admitted: shedding them would break calls already accepted. The ACK
//     of a response the gate sent (To tag with TagPrefix) is absorbed.
//   - A new request whose Via branch was admitted less than TrackTTL ago
//     is a retransmission and is admitted again.
//   - Any other new request is rejected while InFlight, Goroutines,
//     QueueDelay or HeapBytes is at its limit, or when the token bucket
//     (Rate, Burst) is empty; otherwise admitted, and its branch
//     remembered.
func (g *Gate) Decide(h *Head, load func() Load, now time.Time) Decision {
	if h.Response || h.Method == "CANCEL" {
		return Decision{}
	}
	if h.Method == "ACK" {
		if len(h.ToTag) > len(TagPrefix) && string(h.ToTag[:len(TagPrefix)]) == TagPrefix {
			return Decision{Verdict: Absorb}
		}
		return Decision{}
	}
	if h.ToTag != nil {
		return Decision{}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expire(now)
	if until, ok := g.tracked[string(h.Branch)]; ok && len(h.Branch) > 0 && now.Before(until) {
		return Decision{}
	}
	if r := g.overloaded(load()); r != "" {
		return g.shed(r, now)
	}
	if g.cfg.Rate > 0 {
		g.tokens += now.Sub(g.refill).Seconds() * g.cfg.Rate
		g.refill = now
		if max := float64(g.cfg.Burst); g.tokens > max {
			g.tokens = max
		}
		if g.tokens < 1 {
			return g.shed(ReasonRate, now)
		}
		g.tokens--
	}
	g.admitted.Add(1)
	if len(h.Branch) > 0 {
		b := string(h.Branch)
		g.tracked[b] = now.Add(g.cfg.TrackTTL)
		g.order = append(g.order, tracked{b, now.Add(g.cfg.TrackTTL)})
	}
	return Decision{}
}

func (g *Gate) overloaded(l Load) Reason {
	switch {
	case l.InFlight >= g.cfg.MaxInflight:
		return ReasonInflight
	case l.Goroutines >= g.cfg.MaxGoroutines:
		return ReasonGoroutines
	case g.cfg.MaxQueueDelay > 0 && l.QueueDelay >= g.cfg.MaxQueueDelay:
		return ReasonQueueDelay
	case g.cfg.MaxHeap > 0 && l.HeapBytes >= g.cfg.MaxHeap:
		return ReasonHeap
	}
	return ""
}

func (g *Gate) shed(r Reason, now time.Time) Decision {
	g.rejected.Add(1)
	g.lastShed.Store(now.UnixNano())
	return Decision{Verdict: Reject, Reason: r}
}

// expire forgets branches past their time, and the oldest beyond
// TrackMax. Called with mu held.
func (g *Gate) expire(now time.Time) {
	for g.head < len(g.order) && (!now.Before(g.order[g.head].until) || len(g.order)-g.head >= g.cfg.TrackMax) {
		t := g.order[g.head]
		if until, ok := g.tracked[t.branch]; ok && until.Equal(t.until) {
			delete(g.tracked, t.branch)
		}
		g.order[g.head] = tracked{}
		g.head++
	}
	if g.head == len(g.order) && cap(g.order) > 1024 {
		// Empty after a busy spell: a Go map never shrinks, so start
		// afresh rather than keep the peak's buckets.
		g.tracked, g.order, g.head = make(map[string]time.Time), nil, 0
		return
	}
	// Compact the queue once its dead prefix is at least half of it.
	if g.head > 0 && g.head*2 >= len(g.order) {
		n := copy(g.order, g.order[g.head:])
		clear(g.order[n:])
		g.order = g.order[:n]
		g.head = 0
	}
}

// Prune forgets the branches past TrackTTL now; Decide does it as it
// goes, the driver calls it when requests stop coming.
func (g *Gate) Prune() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expire(g.now())
}

// Stats are the gate's totals since New.
type Stats struct {
	// Admitted and Rejected count new out-of-dialog requests.
	Admitted, Rejected int64
	// Tracked is the number of remembered branches.
	Tracked int
	// LastShed is when a request was last rejected (zero: never).
	LastShed time.Time
}

// Stats returns the gate's totals.
func (g *Gate) Stats() Stats {
	g.mu.Lock()
	n := len(g.tracked)
	g.mu.Unlock()
	s := Stats{Admitted: g.admitted.Load(), Rejected: g.rejected.Load(), Tracked: n}
	if t := g.lastShed.Load(); t != 0 {
		s.LastShed = time.Unix(0, t)
	}
	return s
}

// RetryAfterSeconds is the Retry-After value of the gate's 503.
func (g *Gate) RetryAfterSeconds() int { return int(g.cfg.RetryAfter / time.Second) }
