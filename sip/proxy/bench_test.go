package proxy

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// benchCall places one complete call from caller to ruri via next:
// INVITE, 100/180/200, ACK, BYE, 200. It reports whether it succeeded.
func benchCall(caller *testUAC, ruri, next string) bool {
	req := caller.request(sip.INVITE, ruri, next)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := caller.client.TransactionRequest(ctx, req)
	if err != nil {
		return false
	}
	c := &outCall{u: caller, invite: req, tx: tx, callID: req.CallID().Value()}
	if final := waitFinalQuiet(c); final == nil || final.StatusCode != 200 {
		return false
	}
	if err := caller.client.WriteRequest(c.inDialog(sip.ACK)); err != nil {
		return false
	}
	res, err := caller.client.Do(ctx, c.inDialog(sip.BYE))
	return err == nil && res.StatusCode == 200
}

// runCallBench runs b.N calls in parallel (GOMAXPROCS*4 callers sharing
// one UAC) and reports calls/s.
func runCallBench(b *testing.B, caller *testUAC, ruri, next string, quiet ...*wireLog) {
	caller.log.off.Store(true)
	for _, l := range quiet {
		l.off.Store(true)
	}
	var failed atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !benchCall(caller, ruri, next) {
				failed.Add(1)
			}
		}
	})
	el := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d calls failed", n, b.N)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "calls/s")
}

// BenchmarkProxyCall: calls through a non-home node B (proxy mode) and the
// home node H to the UA, all in-process over loopback UDP.
func BenchmarkProxyCall(b *testing.B) {
	nb, nh, ua, _ := twoNodesTB(b, ModeProxy, nil)
	caller := startUAC(b)
	runCallBench(b, caller, "sip:bob@"+testDomain, nb.addr, nb.log, nh.log, ua.log)
}

// BenchmarkDirectCall is the baseline: the same calls straight from the
// UAC to the UAS.
func BenchmarkDirectCall(b *testing.B) {
	ua := startUAS(b, "bob", nil)
	caller := startUAC(b)
	runCallBench(b, caller, ua.contact(), ua.addr, ua.log)
}

// BenchmarkDecide: routing one INVITE on the home node (fakes, no
// sockets): validation, loop hash, Route pre-processing, location
// look-up, and building the forwarded copy.
func BenchmarkDecide(b *testing.B) {
	e := fuzzEnv(b)
	req := parseReq(b, reqText("INVITE", "sip:bob@"+testDomain)...)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if validate(req) != nil {
			b.Fatal("invalid")
		}
		loop := e.p.loopHash(req)
		work := e.p.baseCopy(req, callerSrc)
		d := e.p.decide(context.Background(), e.p.preprocess(work, callerSrc))
		if len(d.branches) != 1 {
			b.Fatal("no branch")
		}
		_ = e.p.forwardCopy(work, &d.branches[0], d.branches[0].hops[0], e.p.newBranch(loop), true, "UDP")
	}
}
