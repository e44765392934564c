package proxy

import (
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// Responses reach the proxy through a tap on sipgo's transport layer, not
// through the client transactions' Responses channels. sipgo runs every
// received message on its own goroutine, and its client transaction
// state machine drops a 1xx that it processes after the 2xx of the same
// transaction: a 180 followed closely by a 200 could be lost or relayed
// after the 200. The tap runs on the transport's read goroutine, so it sees
// the responses of one connection in arrival order (a node's UDP socket
// has several read goroutines, each with the messages of its Call-IDs:
// overload.PacketConns); it hands each response
// of a branch to the branch's call as an event, and the call relays them
// from one goroutine in that order. The client transactions still do
// retransmission, timeouts and the ACK of non-2xx responses; the driver
// only drains their channels.

// tapEntry routes the responses of one client transaction (one Via branch
// of one hop) to its call.
type tapEntry struct {
	c      *call
	branch int
	hop    int
	method sip.RequestMethod
}

// tapTable maps the Via branch parameters of live client transactions to
// their entries. Safe for concurrent use.
type tapTable struct {
	mu sync.RWMutex
	m  map[string]*tapEntry
}

func newTapTable() *tapTable { return &tapTable{m: make(map[string]*tapEntry)} }

func (t *tapTable) add(branchID string, e *tapEntry) {
	t.mu.Lock()
	t.m[branchID] = e
	t.mu.Unlock()
}

func (t *tapTable) remove(branchID string) {
	t.mu.Lock()
	delete(t.m, branchID)
	t.mu.Unlock()
}

func (t *tapTable) get(branchID string) *tapEntry {
	t.mu.RLock()
	e := t.m[branchID]
	t.mu.RUnlock()
	return e
}

func (t *tapTable) size() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

// tap is installed with TransportLayer.OnMessage. It must not block: it
// runs on a transport read goroutine.
func (p *Proxy) tap(msg sip.Message) {
	res, ok := msg.(*sip.Response)
	if !ok {
		return
	}
	via := res.Via()
	if via == nil {
		return
	}
	b, _ := via.Params.Get("branch")
	if !strings.HasPrefix(b, branchPrefix) {
		return
	}
	e := p.taps.get(b)
	if e == nil {
		return
	}
	if cs := res.CSeq(); cs == nil || cs.MethodName != e.method {
		return // e.g. the response to our CANCEL, which shares the branch
	}
	if e.c.post(event{kind: evResponse, branch: e.branch, hop: e.hop, res: res}) {
		return
	}
	// The call has finished. A 2xx of an INVITE is still forwarded
	// (statelessly): another fork answered too, or the callee
	// retransmits its 2xx because the ACK has not reached it yet.
	if e.method == sip.INVITE && res.StatusCode >= 200 && res.StatusCode < 300 {
		e.c.relayLate(res)
	}
}
