package proxy

import (
	"github.com/emiago/sipgo/sip"
)

// The response context (RFC 3261 section 16.7) of one forwarded request
// is a synchronous state machine: the driver (call.go) feeds it what
// happened on the branches and upstream, in the order it happened, and
// carries out the actions it returns. It touches no socket and no clock.

type phase uint8

const (
	phaseTrying     phase = iota // request sent on the current hop, nothing heard
	phaseProceeding              // a provisional response arrived
	phaseDone                    // a final response (received or synthesised)
)

type actionKind uint8

const (
	// actRelay: send res upstream.
	actRelay actionKind = iota + 1
	// actCancel: send CANCEL on the branch (it has had a provisional).
	actCancel
	// actNextHop: give up the branch's current hop (terminate its client
	// transaction) and send to the next one (RFC 3263 fail-over).
	actNextHop
	// actAbandon: terminate the branch's client transaction; nothing more
	// will be sent on it.
	actAbandon
	// actArmTimerC: (re)start Timer C for the branch.
	actArmTimerC
)

type action struct {
	kind   actionKind
	branch int
	res    *sip.Response
}

type branchState struct {
	phase        phase
	hop          int  // index of the hop in use
	hops         int  // number of hops the branch may try
	cancelWanted bool // send CANCEL as soon as a provisional arrives
	cancelSent   bool
	final        *sip.Response
}

// respContext is the response context of one request forwarded on one or
// more branches. Responses given to it are in upstream form (the proxy's
// own Via removed).
type respContext struct {
	invite    bool
	branches  []branchState
	finalSent bool // a final response went upstream (or sipgo sent 487 for CANCEL)
	cancelled bool // the caller cancelled
	stopFork  bool // a 2xx or 6xx arrived: remaining branches are cancelled
}

func newRespContext(invite bool, hopsPerBranch []int) *respContext {
	rc := &respContext{invite: invite, branches: make([]branchState, len(hopsPerBranch))}
	for i, n := range hopsPerBranch {
		rc.branches[i].hops = n
	}
	return rc
}

// done reports whether the driver may stop: a final response went
// upstream and every branch either has its final response or has been
// cancelled (what comes back on a cancelled branch needs no decision: its
// client transaction ACKs a non-2xx, and a late 2xx is relayed by the tap).
// A non-INVITE is done with its final response.
func (rc *respContext) done() bool {
	if !rc.finalSent {
		return false
	}
	if !rc.invite {
		return true
	}
	for i := range rc.branches {
		b := &rc.branches[i]
		if b.phase != phaseDone && !b.cancelSent {
			return false
		}
	}
	return true
}

// pending reports whether branch i still waits for a final response.
func (rc *respContext) pending(i int) bool { return rc.branches[i].phase != phaseDone }

// onResponse takes a response received on branch i's current hop.
func (rc *respContext) onResponse(i int, res *sip.Response) []action {
	b := &rc.branches[i]
	code := res.StatusCode
	if b.phase == phaseDone {
		// A retransmitted or late 2xx of an INVITE is forwarded
		// (RFC 3261 16.7 step 5, RFC 6026); anything else is absorbed.
		if rc.invite && code >= 200 && code < 300 {
			return []action{{kind: actRelay, branch: i, res: res}}
		}
		return nil
	}
	if code < 200 {
		return rc.onProvisional(i, res)
	}
	if code == 503 && rc.mayFailOver(i) {
		// RFC 3263 section 4.3: a 503 means try the next server.
		b.hop++
		b.phase = phaseTrying
		return []action{{kind: actNextHop, branch: i}}
	}
	b.phase, b.final = phaseDone, res
	switch {
	case code < 300:
		var acts []action
		if rc.invite || !rc.finalSent {
			acts = append(acts, action{kind: actRelay, branch: i, res: res})
			rc.finalSent = true
		}
		if rc.invite {
			acts = append(acts, rc.cancelOthers(i)...)
		}
		return acts
	case code >= 600 && rc.invite:
		// Not forwarded at once: cancel the rest, then choose (step 5).
		return append(rc.cancelOthers(i), rc.maybeChoose()...)
	}
	return rc.maybeChoose()
}

func (rc *respContext) onProvisional(i int, res *sip.Response) []action {
	b := &rc.branches[i]
	b.phase = phaseProceeding
	var acts []action
	if rc.invite {
		acts = append(acts, action{kind: actArmTimerC, branch: i})
	}
	if b.cancelWanted && !b.cancelSent {
		b.cancelSent = true
		acts = append(acts, action{kind: actCancel, branch: i})
	}
	// 100 Trying is hop-by-hop: this proxy sent its own.
	if res.StatusCode > 100 && !rc.finalSent && !b.cancelSent {
		acts = append(acts, action{kind: actRelay, branch: i, res: res})
	}
	return acts
}

// onFailure takes a final outcome the driver synthesised for branch i's
// current hop: 408 when the transaction timed out (or the fail-over timer
// fired with nothing heard), 503 on a transport error.
func (rc *respContext) onFailure(i, hopIdx int, res *sip.Response) []action {
	b := &rc.branches[i]
	if b.phase == phaseDone || b.hop != hopIdx {
		return nil // stale: that hop was already given up
	}
	if rc.mayFailOver(i) {
		b.hop++
		b.phase = phaseTrying
		return []action{{kind: actNextHop, branch: i}}
	}
	b.phase, b.final = phaseDone, res
	return append([]action{{kind: actAbandon, branch: i}}, rc.maybeChoose()...)
}

// onFailoverTimer: the fail-over timer of branch i's hop hopIdx fired. If
// nothing at all was heard from that hop, move on.
func (rc *respContext) onFailoverTimer(i, hopIdx int, timeout *sip.Response) []action {
	b := &rc.branches[i]
	if b.phase != phaseTrying || b.hop != hopIdx || !rc.mayFailOver(i) {
		return nil
	}
	return rc.onFailure(i, hopIdx, timeout)
}

// mayFailOver reports whether branch i may move to another hop: one is
// left and the branch is still wanted.
func (rc *respContext) mayFailOver(i int) bool {
	b := &rc.branches[i]
	return b.hop+1 < b.hops && !b.cancelWanted && !b.cancelSent && !rc.cancelled && !rc.stopFork
}

// onTimerC: Timer C of branch i fired (RFC 3261 16.8): cancel it if it
// is ringing.
func (rc *respContext) onTimerC(i, hopIdx int) []action {
	b := &rc.branches[i]
	if b.phase != phaseProceeding || b.hop != hopIdx || b.cancelSent {
		return nil
	}
	b.cancelSent = true
	return []action{{kind: actCancel, branch: i}}
}

// onCancelTimeout: branch i was cancelled but sent no final response in
// time; it counts as timed out (res is a synthesised 408).
func (rc *respContext) onCancelTimeout(i, hopIdx int, res *sip.Response) []action {
	b := &rc.branches[i]
	if b.phase == phaseDone || b.hop != hopIdx {
		return nil
	}
	b.phase, b.final = phaseDone, res
	return append([]action{{kind: actAbandon, branch: i}}, rc.maybeChoose()...)
}

// onCallerCancel: the caller's CANCEL matched the server transaction
// (sipgo has already answered it 200 and the INVITE 487). Every pending
// branch is cancelled at once, or as soon as it has had a provisional.
func (rc *respContext) onCallerCancel() []action {
	if rc.cancelled || !rc.invite {
		return nil
	}
	rc.cancelled, rc.finalSent = true, true
	return rc.cancelOthers(-1)
}

// cancelOthers cancels every pending branch except skip (RFC 3261 16.7
// step 10 after a 2xx, step 5 after a 6xx, 16.10 on CANCEL).
func (rc *respContext) cancelOthers(skip int) []action {
	rc.stopFork = true
	var acts []action
	for j := range rc.branches {
		b := &rc.branches[j]
		if j == skip || b.phase == phaseDone || b.cancelSent {
			continue
		}
		if b.phase == phaseProceeding {
			b.cancelSent = true
			acts = append(acts, action{kind: actCancel, branch: j})
		} else {
			// RFC 3261 9.1: no CANCEL before a provisional response.
			b.cancelWanted = true
		}
	}
	return acts
}

// maybeChoose sends the best final response once every branch has one
// (RFC 3261 16.7 step 6), unless one went upstream already.
func (rc *respContext) maybeChoose() []action {
	if rc.finalSent {
		return nil
	}
	finals := make([]*sip.Response, 0, len(rc.branches))
	for i := range rc.branches {
		b := &rc.branches[i]
		if b.phase != phaseDone {
			return nil
		}
		finals = append(finals, b.final)
	}
	rc.finalSent = true
	return []action{{kind: actRelay, branch: -1, res: chooseBest(finals)}}
}

// authPreferred are the 4xx codes RFC 3261 16.7 step 6 prefers because
// they let the caller resubmit successfully.
var authPreferred = map[int]bool{401: true, 407: true, 415: true, 420: true, 484: true}

// chooseBest picks the response to forward from the final responses of all
// branches (RFC 3261 16.7 steps 6 and 7): a 6xx if any; else one of the
// lowest class, preferring 401, 407, 415, 420 and 484 in the 4xx class,
// then the lowest code, then the earliest branch. A chosen 503 becomes 500;
// a chosen 401 or 407 carries the WWW-Authenticate and Proxy-Authenticate
// values of every other 401 and 407. It modifies and returns one of the
// given responses; nil in, nil out.
func chooseBest(finals []*sip.Response) *sip.Response {
	var best *sip.Response
	better := func(a, b *sip.Response) bool { // is a better than b?
		ca, cb := a.StatusCode/100, b.StatusCode/100
		if (ca == 6) != (cb == 6) {
			return ca == 6
		}
		if ca != cb {
			return ca < cb
		}
		if ca == 4 && authPreferred[a.StatusCode] != authPreferred[b.StatusCode] {
			return authPreferred[a.StatusCode]
		}
		return a.StatusCode < b.StatusCode
	}
	for _, r := range finals {
		if r != nil && (best == nil || better(r, best)) {
			best = r
		}
	}
	if best == nil {
		return nil
	}
	switch best.StatusCode {
	case 503:
		best.StatusCode, best.Reason = 500, "Server Internal Error"
	case 401, 407:
		for _, r := range finals {
			if r == best || r == nil || (r.StatusCode != 401 && r.StatusCode != 407) {
				continue
			}
			for _, name := range []string{"WWW-Authenticate", "Proxy-Authenticate"} {
				for _, h := range r.GetHeaders(name) {
					best.AppendHeader(sip.NewHeader(h.Name(), h.Value()))
				}
			}
		}
	}
	return best
}
