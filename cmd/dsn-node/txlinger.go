package main

import (
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"
)

// defaultTxLinger is -sip-tx-linger's default: Kamailio's and OpenSIPS's
// wait timer (tm's wt_timer, 5 s), not RFC 3261's 64*T1 = 32 s.
const defaultTxLinger = 5 * time.Second

// checkTxLinger refuses a linger below 1 s (less than the first few
// retransmission intervals) or above 64*T1, the RFC's value.
func checkTxLinger(d time.Duration) error {
	if d < time.Second || d > 64*sip.T1 {
		return fmt.Errorf("-sip-tx-linger %v: want 1s to %v (64*T1, RFC 3261's value)", d, 64*sip.T1)
	}
	return nil
}

// applyTxLinger sets how long sipgo keeps a transaction after its final
// response: Timers J (non-INVITE server), L (INVITE server after a 2xx,
// RFC 6026), M (INVITE client after a 2xx) and D (INVITE client after a
// non-2xx). The RFC sets them to 64*T1 (32 s) over UDP so that every
// retransmission a peer may still send finds its transaction. A node
// holds each call's transactions that long, and at thousands of calls a
// second that memory is what the garbage collector rescans and what the
// overload gate's window bounds; Kamailio keeps them 5 s. What a shorter
// linger gives up: a request retransmitted after it (its response lost
// again and again) is taken for a new one (a BYE then gets 481, the call
// is over anyway), and a 2xx the callee retransmits after it (the ACK
// lost for that long) is no longer relayed. Package globals of sipgo:
// set here only, before the node starts.
func applyTxLinger(d time.Duration) {
	sip.Timer_J, sip.Timer_L, sip.Timer_M, sip.Timer_D = d, d, d, d
}
