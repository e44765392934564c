package overload

import (
	"fmt"
	"hash/maphash"
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
	// ReasonTransactions: the transaction window is full (see
	// Config.MaxTransactions).
	ReasonTransactions Reason = "transactions"
	// ReasonRepeat: a retransmission of a request the gate answered 503
	// within the last shedTTL: it gets 503 again (RFC 3261 17.2: a
	// retransmission gets the response its request got), instead of
	// reaching the stack once the node stops shedding, when the caller
	// has already taken the 503 and ended the transaction.
	ReasonRepeat Reason = "repeat"
)

// shedTTL is how long the gate remembers a request it rejected: longer
// than a retransmission sent before the 503 arrived takes to come in
// (the client stops retransmitting on a final response).
const shedTTL = 8 * time.Second

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
	seed    maphash.Seed

	mu   sync.Mutex
	rate bucket // Config.Rate, Burst
	pace bucket // new requests into the window (see Decide)
	win  window
	shed window // requests rejected in the last shedTTL (weight 1 each, at most MaxTransactions)

	admitted, rejected atomic.Int64
	lastShed           atomic.Int64 // unix nanoseconds of the last Reject
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
		// The seed only keys the window's hash of transaction identities
		// (no behaviour depends on its value); being random, a peer
		// cannot craft collisions with it.
		seed: maphash.MakeSeed(),
		rate: newBucket(cfg.Rate, float64(cfg.Burst)),
		pace: newBucket(paceShare*float64(cfg.MaxTransactions)/cfg.TrackTTL.Seconds(), paceBurst*float64(cfg.MaxTransactions)),
		win:  newWindow(), shed: newWindow()}, nil
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
//   - Responses and ACKs are admitted: they open no transaction that
//     outlives its handler, and shedding them would break calls already
//     accepted. The ACK of a response the gate sent (To tag with
//     TagPrefix) is absorbed.
//   - A request whose transaction is in the window (it was handed to the
//     stack less than TrackTTL ago) is a retransmission and is admitted
//     again; so is a CANCEL whose INVITE is in the window.
//   - A retransmission of a request rejected in the last shedTTL is
//     rejected again (ReasonRepeat).
//   - A request inside a dialog (To tag), and a CANCEL, is admitted and
//     enters the window unless that would take the window over
//     MaxTransactions. Each request weighs 1 in the window, and 1 more
//     for every 2 KiB of its size.
//   - Any other (new) request is rejected when it would take the new
//     requests in the window over MaxTransactions/2 or the window over
//     MaxTransactions, or come faster than the window's pace (at most
//     MaxTransactions/8 at once, then 3*MaxTransactions/8 per TrackTTL),
//     while InFlight, Goroutines, QueueDelay or HeapBytes is at its
//     limit, or when the token bucket (Rate, Burst) is empty; otherwise
//     admitted, and it enters the window.
func (g *Gate) Decide(h *Head, load func() Load, now time.Time) Decision {
	if h.Response {
		return Decision{}
	}
	if h.Method == "ACK" {
		if len(h.ToTag) > len(TagPrefix) && string(h.ToTag[:len(TagPrefix)]) == TagPrefix {
			return Decision{Verdict: Absorb}
		}
		return Decision{}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.win.expire(now.UnixNano())
	g.shed.expire(now.UnixNano())
	if h.Method == "CANCEL" && g.win.has(g.txKey(h, "INVITE")) {
		return Decision{}
	}
	key := g.txKey(h, h.Method)
	if g.win.has(key) {
		return Decision{}
	}
	if g.shed.has(key) {
		return g.reject(ReasonRepeat, now, key)
	}
	until := now.Add(g.cfg.TrackTTL).UnixNano()
	wt := weight(h.Len + int(min(max(h.ContentLength, 0), int64(g.cfg.MaxMessage))))
	if h.ToTag != nil || h.Method == "CANCEL" {
		if g.win.len()+wt > g.cfg.MaxTransactions {
			return g.reject(ReasonTransactions, now, key)
		}
		g.win.add(key, until, wt, false)
		return Decision{}
	}
	g.pace.fill(now)
	if g.win.len()+wt > g.cfg.MaxTransactions || 2*(g.win.news+wt) > g.cfg.MaxTransactions || !g.pace.has(float64(wt)) {
		return g.reject(ReasonTransactions, now, key)
	}
	if r := g.limit(load, now); r != "" {
		return g.reject(r, now, key)
	}
	g.pace.take(float64(wt))
	g.admitted.Add(1)
	g.win.add(key, until, wt, true)
	return Decision{}
}

// New requests are paced into the window: paceBurst of MaxTransactions at
// once, paceShare of it per TrackTTL after that, so that in any TrackTTL
// they take at most half of it (paceBurst+paceShare = 1/2) and a
// sustained overload is admitted at a steady rate instead of filling the
// window in a burst and then refusing every new request until it drains.
const (
	paceBurst = 1.0 / 8
	paceShare = 3.0 / 8
)

// txKey hashes what identifies h's server transaction when its method is
// m: the top Via (sent-by and branch), Call-ID, CSeq number and method.
// It is stricter than RFC 3261 17.2.3 (which needs only the branch and
// sent-by), so that no request the stack would take for a new
// transaction passes for a retransmission.
func (g *Gate) txKey(h *Head, m string) uint64 {
	var d maphash.Hash
	d.SetSeed(g.seed)
	for _, f := range [...][]byte{h.Via, h.CallID, h.CSeq} {
		d.Write(f)
		d.WriteByte(0)
	}
	d.WriteString(m)
	return d.Sum64()
}

// limit returns why a new request may not be admitted now: a load limit
// or the token bucket (Rate, Burst), whose token it takes otherwise. g.mu
// is held.
func (g *Gate) limit(load func() Load, now time.Time) Reason {
	if r := g.overloaded(load()); r != "" {
		return r
	}
	if g.cfg.Rate > 0 {
		g.rate.fill(now)
		if !g.rate.has(1) {
			return ReasonRate
		}
		g.rate.take(1)
	}
	return ""
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

// reject sheds the request whose transaction key is key, and remembers
// it for shedTTL so that its retransmissions get the same answer.
func (g *Gate) reject(r Reason, now time.Time, key uint64) Decision {
	g.rejected.Add(1)
	g.lastShed.Store(now.UnixNano())
	if r != ReasonRepeat && g.shed.len() < g.cfg.MaxTransactions {
		g.shed.add(key, now.Add(shedTTL).UnixNano(), 1, false)
	}
	return Decision{Verdict: Reject, Reason: r}
}

// Prune forgets the transactions past TrackTTL now and returns the
// window's memory once it is mostly empty; Decide does it as it goes,
// the driver calls it when requests stop coming.
func (g *Gate) Prune() {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now().UnixNano()
	g.win.expire(now)
	g.shed.expire(now)
}

// Stats are the gate's totals since New.
type Stats struct {
	// Admitted and Rejected count new out-of-dialog requests; Rejected
	// also counts requests inside a dialog shed at MaxTransactions.
	Admitted, Rejected int64
	// Transactions is the window's size: the requests handed to the stack
	// within TrackTTL, each weighing 1 and 1 more per 2 KiB of its size;
	// New is the part new out-of-dialog requests take.
	Transactions, New int
	// LastShed is when a request was last rejected (zero: never).
	LastShed time.Time
}

// Stats returns the gate's totals.
func (g *Gate) Stats() Stats {
	g.mu.Lock()
	n, news := g.win.len(), g.win.news
	g.mu.Unlock()
	s := Stats{Admitted: g.admitted.Load(), Rejected: g.rejected.Load(), Transactions: n, New: news}
	if t := g.lastShed.Load(); t != 0 {
		s.LastShed = time.Unix(0, t)
	}
	return s
}

// RetryAfterSeconds is the Retry-After value of the gate's 503.
func (g *Gate) RetryAfterSeconds() int { return int(g.cfg.RetryAfter / time.Second) }
