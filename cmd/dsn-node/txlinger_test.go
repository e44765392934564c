package main

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestTxLingerSetsSipgoTimers(t *testing.T) {
	j, l, m, d := sip.Timer_J, sip.Timer_L, sip.Timer_M, sip.Timer_D
	t.Cleanup(func() { sip.Timer_J, sip.Timer_L, sip.Timer_M, sip.Timer_D = j, l, m, d })
	applyTxLinger(7 * time.Second)
	for name, v := range map[string]time.Duration{"J": sip.Timer_J, "L": sip.Timer_L, "M": sip.Timer_M, "D": sip.Timer_D} {
		if v != 7*time.Second {
			t.Errorf("Timer %s = %v, want 7s", name, v)
		}
	}
	if sip.Timer_B != 64*sip.T1 || sip.Timer_F != 64*sip.T1 || sip.Timer_H != 64*sip.T1 {
		t.Error("retransmission and timeout timers changed")
	}
	for d, ok := range map[time.Duration]bool{time.Second: true, 5 * time.Second: true, 32 * time.Second: true, 999 * time.Millisecond: false, 33 * time.Second: false} {
		if err := checkTxLinger(d); (err == nil) != ok {
			t.Errorf("checkTxLinger(%v) = %v", d, err)
		}
	}
}
