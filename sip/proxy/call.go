package proxy

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// A call is the driver of one forwarded request: it sends the branches,
// turns what happens on them (responses from the tap, transaction
// failures, timers, the caller's CANCEL) into events, queues them in the
// order they happen, and feeds them one by one from the handler's
// goroutine to the response context, whose actions it carries out. The
// handler returns as soon as the response context is done; nothing of the
// call keeps a goroutine after that (sipgo's client transactions finish on
// their own timers, and the tap forwards a late 2xx without the driver).

type evKind uint8

const (
	evResponse      evKind = iota + 1 // a response on a branch (from the tap)
	evTxFailed                        // a branch's client transaction ended without a final response
	evFailover                        // fail-over timer of a hop
	evTimerC                          // Timer C of a branch
	evCancelTimeout                   // a cancelled branch sent no final response in time
	evCallerCancel                    // the caller's CANCEL (or the server transaction died)
)

type event struct {
	kind   evKind
	branch int
	hop    int
	res    *sip.Response
	err    error
}

// leg is the driver's view of one branch.
type leg struct {
	plan     branchPlan
	branchID string
	req      *sip.Request
	tx       sip.ClientTransaction
	timers   []func() bool // fail-over and cancel timers of the current hop
	timerC   func() bool
	got2xx   bool
	// final: the current hop sent a final response. Its client
	// transaction must then run to completion, because for a non-2xx
	// final response of an INVITE it is the transaction that sends the
	// ACK (RFC 3261 17.1.1.3); terminating it on fail-over lost the ACK.
	final bool
}

type call struct {
	p         *Proxy
	up        *sip.Request // the request as received
	tx        sip.ServerTransaction
	base      *sip.Request
	upDst     string // where responses go upstream
	upTr      string
	invite    bool
	rr        bool
	expectAck bool // relaying a 2xx here means its ACK comes through this node
	loop      string
	legs      []*leg
	rc        *respContext
	status    int // the first final status sent upstream
	failovers Failovers

	mu       sync.Mutex
	queue    []event
	wake     chan struct{}
	finished bool
}

// callResult is how a forwarded request ended.
type callResult struct {
	status    int  // the final status sent upstream
	cancelled bool // the caller cancelled
	failovers Failovers
}

// runCall forwards req on d's branches and relays the responses until the
// response context is done.
func (p *Proxy) runCall(up *sip.Request, tx sip.ServerTransaction, base *sip.Request, d decision, loop string, inDialog bool) callResult {
	c := &call{
		p:         p,
		up:        up,
		tx:        tx,
		base:      base,
		invite:    up.Method == sip.INVITE,
		rr:        d.recordRoute,
		expectAck: d.recordRoute || inDialog,
		loop:      loop,
		wake:      make(chan struct{}, 1),
	}
	tmpl := sip.NewResponseFromRequest(up, 100, "Trying", nil)
	c.upDst, c.upTr = tmpl.Destination(), tmpl.Transport()
	hops := make([]int, len(d.branches))
	for i := range d.branches {
		c.legs = append(c.legs, &leg{plan: d.branches[i]})
		hops[i] = d.branches[i].hopCount()
	}
	c.rc = newRespContext(c.invite, hops)
	if c.invite {
		if !tx.OnCancel(func(*sip.Request) { c.post(event{kind: evCallerCancel}) }) {
			c.post(event{kind: evCallerCancel})
		}
	}
	tx.OnTerminate(func(string, error) {
		// Ends before the call only on a transport failure upstream.
		c.post(event{kind: evCallerCancel})
	})
	for i := range c.legs {
		c.startHop(i)
	}
	for !c.rc.done() {
		<-c.wake
		for _, ev := range c.take() {
			c.handle(ev)
		}
	}
	c.finish()
	if c.status == 0 && c.rc.cancelled {
		c.status = 487 // sent by sipgo on the CANCEL
	}
	return callResult{status: c.status, cancelled: c.rc.cancelled, failovers: c.failovers}
}

// post queues an event; false if the call has finished.
func (c *call) post(ev event) bool {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return false
	}
	c.queue = append(c.queue, ev)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}

func (c *call) take() []event {
	c.mu.Lock()
	q := c.queue
	c.queue = nil
	c.mu.Unlock()
	return q
}

// finish stops the call's timers and marks it finished; a 2xx still queued
// is relayed like a late one.
func (c *call) finish() {
	c.mu.Lock()
	c.finished = true
	q := c.queue
	c.queue = nil
	c.mu.Unlock()
	for _, l := range c.legs {
		stopTimers(l)
		// sipgo keeps the client transaction (with its copy of the
		// request) and, through the tap and the server transaction's
		// callbacks, this call for up to 32 s more; what only the
		// driver needed goes now, so that a call held that long costs
		// the transactions and little else.
		l.req, l.plan = nil, branchPlan{}
	}
	c.base = nil
	for i := range c.rc.branches {
		c.rc.branches[i].final = nil
	}
	for _, ev := range q {
		if ev.kind == evResponse && c.invite && ev.res.StatusCode >= 200 && ev.res.StatusCode < 300 {
			c.relayLate(ev.res)
		}
	}
}

func stopTimers(l *leg) {
	for _, stop := range l.timers {
		stop()
	}
	l.timers = l.timers[:0]
	if l.timerC != nil {
		l.timerC()
		l.timerC = nil
	}
}

// after posts ev after d (a post after the call finished is dropped).
func (c *call) after(d time.Duration, ev event) func() bool {
	return c.p.clock.AfterFunc(d, func() { c.post(ev) })
}

func (c *call) handle(ev event) {
	var acts []action
	switch ev.kind {
	case evResponse:
		if ev.hop != c.rc.branches[ev.branch].hop {
			// From a hop given up in fail-over. Only a 2xx of an INVITE
			// matters now: the session exists, so the caller must see it.
			if c.invite && ev.res.StatusCode >= 200 && ev.res.StatusCode < 300 {
				c.relay(ev.branch, c.upstream(ev.res))
			}
			return
		}
		if ev.res.StatusCode >= 200 {
			c.legs[ev.branch].final = true
		}
		acts = c.rc.onResponse(ev.branch, c.upstream(ev.res))
	case evTxFailed:
		acts = c.rc.onFailure(ev.branch, ev.hop, c.synth(failureCode(ev.err)))
	case evFailover:
		acts = c.rc.onFailoverTimer(ev.branch, ev.hop, c.synth(408))
	case evTimerC:
		acts = c.rc.onTimerC(ev.branch, ev.hop)
	case evCancelTimeout:
		acts = c.rc.onCancelTimeout(ev.branch, ev.hop, c.synth(408))
	case evCallerCancel:
		acts = c.rc.onCallerCancel()
	}
	for _, a := range acts {
		c.apply(a)
	}
	if ev.kind != evCallerCancel && !c.rc.pending(ev.branch) {
		stopTimers(c.legs[ev.branch])
	}
}

func (c *call) apply(a action) {
	switch a.kind {
	case actRelay:
		c.relay(a.branch, a.res)
	case actCancel:
		c.sendCancel(a.branch)
	case actNextHop:
		c.failoverTo(a.branch)
		c.startHop(a.branch)
	case actAbandon:
		if l := c.legs[a.branch]; l.tx != nil {
			l.tx.Terminate()
		}
	case actArmTimerC:
		l := c.legs[a.branch]
		if l.timerC != nil {
			l.timerC()
		}
		l.timerC = c.after(c.p.cfg.TimerC, event{kind: evTimerC, branch: a.branch, hop: c.rc.branches[a.branch].hop})
	}
}

// startHop sends branch i to its current hop, giving up the previous one.
func (c *call) startHop(i int) {
	p, l := c.p, c.legs[i]
	hopIdx := c.rc.branches[i].hop
	stopTimers(l)
	if l.tx != nil {
		// Fail-over: a silent hop's transaction is stopped (no more
		// retransmissions to it); one that answered with a final response
		// is left to finish, so that it ACKs that response.
		if !l.final {
			l.tx.Terminate()
		}
		l.tx = nil
	}
	l.final = false
	plan, j := l.plan.at(hopIdx)
	h := plan.hops[j]
	l.branchID = p.newBranch(c.loop)
	l.req = p.forwardCopy(c.base, plan, h, l.branchID, c.rr, c.up.Transport())
	if tooBigForUDP(l.req, h) {
		// RFC 3261 18.1.1: a request this large goes over TCP.
		h.Transport = "TCP"
		l.req = p.forwardCopy(c.base, plan, h, l.branchID, c.rr, c.up.Transport())
	}
	p.taps.add(l.branchID, &tapEntry{c: c, branch: i, hop: hopIdx, method: c.up.Method})

	client, _ := p.sender()
	p.allowDial(l.req)
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.LookupTimeout)
	tx, err := client.TransactionRequest(ctx, l.req, prebuilt)
	cancel()
	if err != nil {
		p.taps.remove(l.branchID)
		p.log.Info("forwarding failed", zap.String("to", h.String()), zap.Error(err))
		c.post(event{kind: evTxFailed, branch: i, hop: hopIdx, err: err})
		return
	}
	l.tx = tx
	bid := l.branchID
	if !tx.OnTerminate(func(string, error) { p.taps.remove(bid) }) {
		p.taps.remove(bid)
	}
	go drain(tx, func() { c.post(event{kind: evTxFailed, branch: i, hop: hopIdx, err: tx.Err()}) })
	if hopIdx+1 < l.plan.hopCount() {
		wait := plan.wait
		if wait <= 0 {
			wait = p.cfg.FailoverTimeout
		}
		l.timers = append(l.timers, c.after(wait, event{kind: evFailover, branch: i, hop: hopIdx}))
	}
}

// failoverTo counts and logs branch i's move to its next hop (the
// response context has already advanced it): to the next target of the
// same plan, or to the next plan of the chain (an alternate of the home
// node, the phone past its Path edge).
func (c *call) failoverTo(i int) {
	l := c.legs[i]
	hopIdx := c.rc.branches[i].hop
	plan, j := l.plan.at(hopIdx)
	kind := failTarget
	if j == 0 {
		kind = plan.kind
	}
	c.failovers.add(kind)
	prev, pj := l.plan.at(hopIdx - 1)
	c.p.log.Info("next hop silent or unavailable, failing over",
		zap.String("method", string(c.up.Method)), zap.String("call_id", c.up.CallID().Value()),
		zap.String("from", prev.hops[pj].String()), zap.String("to", plan.hops[j].String()),
		zap.String("kind", kind.String()))
}

// drain empties a client transaction's Responses channel (sipgo blocks its
// state machine until someone reads it) until the final response; if the
// transaction ends without one it calls failed. The responses themselves
// reach the call through the tap, in arrival order.
func drain(tx sip.ClientTransaction, failed func()) {
	for {
		select {
		case res := <-tx.Responses():
			if res.StatusCode >= 200 {
				return
			}
		case <-tx.Done():
			if failed != nil {
				failed()
			}
			return
		}
	}
}

// sendCancel sends CANCEL on branch i (RFC 3261 16.10) and bounds the wait
// for the branch's final response.
func (c *call) sendCancel(i int) {
	p, l := c.p, c.legs[i]
	if l.tx == nil || l.req == nil {
		return
	}
	hopIdx := c.rc.branches[i].hop
	l.timers = append(l.timers, c.after(p.cfg.CancelTimeout, event{kind: evCancelTimeout, branch: i, hop: hopIdx}))
	client, _ := p.sender()
	creq := cancelFor(l.req)
	p.allowDial(creq)
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.LookupTimeout)
	tx, err := client.TransactionRequest(ctx, creq, prebuilt)
	cancel()
	if err != nil {
		p.log.Info("sending CANCEL failed", zap.Error(err))
		return
	}
	go drain(tx, nil) // the CANCEL's own outcome does not matter
}

// upstream turns a response received on a branch into the response
// relayed to the caller: a copy without this node's Via, addressed to
// where the request came from.
func (c *call) upstream(res *sip.Response) *sip.Response {
	out := res.Clone()
	out.RemoveHeader("Via")
	out.SetDestination(c.upDst)
	out.SetTransport(c.upTr)
	return out
}

// synth is the response a branch counts as having when it got none.
func (c *call) synth(code int) *sip.Response {
	reason := "Request Timeout"
	if code == 503 {
		reason = "Service Unavailable"
	}
	res := sip.NewResponseFromRequest(c.up, code, reason, nil)
	res.SetDestination(c.upDst)
	res.SetTransport(c.upTr)
	return res
}

// failureCode maps how a client transaction ended without a final
// response to the response it counts as (RFC 3261 8.1.3.1, 16.7).
func failureCode(err error) int {
	if errors.Is(err, sip.ErrTransactionTransport) {
		return 503
	}
	return 408
}

// relay sends res upstream through the server transaction. A 2xx the
// transaction refuses (it already answered 487 to a CANCEL, or a 6xx) is
// still forwarded, statelessly: the callee has a session the caller must
// learn of. Relaying an INVITE 2xx on a dialog that stays on this node
// opens the ACK gate.
func (c *call) relay(branch int, res *sip.Response) {
	code := res.StatusCode
	ok2xx := code >= 200 && code < 300
	if ok2xx && c.invite && c.expectAck && branch >= 0 {
		if l := c.legs[branch]; !l.got2xx {
			l.got2xx = true
			c.p.gate.expect(dialogKey(res))
		}
	}
	if code >= 200 && c.status == 0 {
		c.status = code
	}
	if err := c.tx.Respond(res); err != nil && ok2xx && c.invite {
		c.p.writeUpstream(res)
	}
}

// relayLate forwards a 2xx of an INVITE that arrives after the call
// finished.
func (c *call) relayLate(res *sip.Response) {
	c.p.writeUpstream(c.upstream(res))
}

func (p *Proxy) writeUpstream(res *sip.Response) {
	_, tp := p.sender()
	if err := tp.WriteMsg(res); err != nil {
		p.log.Info("stateless response forwarding failed", zap.Int("code", res.StatusCode), zap.Error(err))
	}
}
