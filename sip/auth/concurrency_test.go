package auth

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestConcurrentReplay: the same captured request sent from many
// goroutines at once is accepted exactly once, and concurrent phones with
// their own nonces are all accepted. Run with -race.
func TestConcurrentReplay(t *testing.T) {
	e := newTestEnv(t, testDigestConfig())
	const workers, perWorker = 8, 50
	c := e.challengeFor(t, "alice", SHA256)
	captured := answer(c, "alice", password("alice"), "REGISTER", "sip:"+testDomain, 1).String()

	// Requests are built here: only Authenticate runs in the goroutines.
	type work struct {
		replay *sip.Request
		own    []*sip.Request
	}
	works := make([]work, workers)
	for i := range works {
		works[i].replay = register(t, "alice", "", captured)
		own := e.challengeFor(t, "alice", SHA256)
		for nc := uint32(1); nc <= perWorker; nc++ {
			cr := answer(own, "alice", password("alice"), "REGISTER", "sip:"+testDomain, nc)
			works[i].own = append(works[i].own, register(t, "alice", "", cr.String()))
		}
	}

	var accepted, ownOK atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, w := range works {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if id, _ := e.d.Authenticate(ctx, w.replay, phoneSrc); id != "" {
				accepted.Add(1)
			}
			for _, req := range w.own {
				if id, _ := e.d.Authenticate(ctx, req, phoneSrc); id != "" {
					ownOK.Add(1)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if accepted.Load() != 1 {
		t.Fatalf("captured request accepted %d times, want once", accepted.Load())
	}
	if ownOK.Load() != workers*perWorker {
		t.Fatalf("%d of %d own requests accepted", ownOK.Load(), workers*perWorker)
	}
	if s := e.d.Stats(); s.Replayed != workers-1 || s.Nonces != workers+1 {
		t.Fatalf("stats %+v", s)
	}
}
