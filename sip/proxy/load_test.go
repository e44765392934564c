package proxy

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// loadResult counts what went wrong in a batch of calls.
type loadResult struct {
	calls, failed                 int64
	lost180, late180              int64 // provisional missing / after the 200 at the caller
	lostAck, byeBeforeAck, badBye int64
}

func (r *loadResult) String() string {
	return fmt.Sprintf("calls=%d failed=%d lost180=%d 180after200=%d lostACK=%d BYEbeforeACK=%d badBYE=%d",
		r.calls, r.failed, r.lost180, r.late180, r.lostAck, r.byeBeforeAck, r.badBye)
}

// runCalls places n calls (at most conc at once) from caller through
// entry to bob, each INVITE/100/180/200, then ACK and BYE sent back to
// back, and checks the order on the wire at both ends.
func runCalls(t testing.TB, caller *testUAC, ua *testUAS, entry string, n, conc int) *loadResult {
	t.Helper()
	var res loadResult
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			oneCall(t, caller, ua, entry, &res)
		}()
	}
	wg.Wait()
	return &res
}

func oneCall(t testing.TB, caller *testUAC, ua *testUAS, entry string, res *loadResult) {
	atomic.AddInt64(&res.calls, 1)
	req := caller.request(sip.INVITE, "sip:bob@"+testDomain, entry)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := caller.client.TransactionRequest(ctx, req)
	if err != nil {
		atomic.AddInt64(&res.failed, 1)
		return
	}
	c := &outCall{u: caller, invite: req, tx: tx, callID: req.CallID().Value()}
	final := waitFinalQuiet(c)
	if final == nil || final.StatusCode != 200 {
		atomic.AddInt64(&res.failed, 1)
		return
	}
	ack := c.inDialog(sip.ACK)
	bye := c.inDialog(sip.BYE)
	if err := caller.client.WriteRequest(ack); err != nil {
		atomic.AddInt64(&res.failed, 1)
		return
	}
	byeRes, err := caller.client.Do(ctx, bye)
	if err != nil || byeRes.StatusCode != 200 {
		atomic.AddInt64(&res.badBye, 1)
	}
	es := caller.log.call(c.callID)
	i180, i200 := index(es, sip.INVITE, 180), index(es, sip.INVITE, 200)
	switch {
	case i180 < 0:
		atomic.AddInt64(&res.lost180, 1)
	case i180 > i200:
		atomic.AddInt64(&res.late180, 1)
	}
	// The UA answered the BYE, so it has read everything before it.
	us := ua.log.call(c.callID)
	iAck, iBye := index(us, sip.ACK, 0), index(us, sip.BYE, 0)
	switch {
	case iAck < 0:
		atomic.AddInt64(&res.lostAck, 1)
	case iBye >= 0 && iBye < iAck:
		atomic.AddInt64(&res.byeBeforeAck, 1)
	}
}

// waitFinalQuiet returns the final response of the call's first
// transaction, or nil after 10 s. If the transaction ends first, the final
// is taken from the wire log.
func waitFinalQuiet(c *outCall) *sip.Response {
	defer c.tx.Terminate()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case res := <-c.tx.Responses():
			if res.StatusCode >= 200 {
				c.final = res
				return res
			}
		case <-c.tx.Done():
			for _, e := range c.u.log.call(c.callID) {
				if !e.req && e.code >= 200 && e.method == c.invite.Method {
					c.final = e.msg.(*sip.Response)
					return c.final
				}
			}
			return nil
		case <-timeout.C:
			return nil
		}
	}
}

// TestOrderingUnderLoad: many concurrent calls caller -> B -> H -> UA over
// loopback UDP. sipgo handles every message on its own goroutine; the
// proxy must still never lose a 180 or relay it after the 200, and never
// let a BYE overtake its ACK.
func TestOrderingUnderLoad(t *testing.T) {
	n, conc := 400, 40
	if testing.Short() {
		n, conc = 100, 20
	}
	b, _, ua, _ := twoNodes(t, ModeProxy, nil)
	caller := startUAC(t)
	start := time.Now()
	res := runCalls(t, caller, ua, b.addr, n, conc)
	el := time.Since(start)
	t.Logf("%s in %v (%.0f calls/s)", res, el, float64(res.calls)/el.Seconds())
	if res.failed+res.lost180+res.late180+res.lostAck+res.byeBeforeAck+res.badBye != 0 {
		t.Fatalf("reordering or loss under load: %s", res)
	}
}

// TestGoroutinesReturnToBaseline: after a burst of calls the proxy holds
// no goroutine, response-tap entry or ACK-gate entry (memory) for them,
// once sipgo's transaction timers (shortened in TestMain) have run out.
func TestGoroutinesReturnToBaseline(t *testing.T) {
	b, h, ua, _ := twoNodes(t, ModeProxy, nil)
	caller := startUAC(t)
	runtime.GC()
	base := runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseHeap := ms.HeapAlloc

	n := 200
	if testing.Short() {
		n = 60
	}
	res := runCalls(t, caller, ua, b.addr, n, 20)
	if res.failed != 0 {
		t.Fatalf("calls failed: %s", res)
	}
	peak := runtime.NumGoroutine()

	deadline := time.Now().Add(20 * time.Second)
	for {
		g := runtime.NumGoroutine()
		state := b.p.InFlight() + h.p.InFlight() + b.p.taps.size() + h.p.taps.size() + b.p.gate.size() + h.p.gate.size()
		if g <= base && state == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			t.Logf("%d calls: goroutines base %d, after calls %d, now %d; heap base %d KiB, now %d KiB",
				n, base, peak, g, baseHeap/1024, ms.HeapAlloc/1024)
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines %d (base %d), in flight %d/%d, taps %d/%d, gate %d/%d after 20s\n%s",
				g, base, b.p.InFlight(), h.p.InFlight(), b.p.taps.size(), h.p.taps.size(), b.p.gate.size(), h.p.gate.size(), buf)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
