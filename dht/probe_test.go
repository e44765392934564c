package dht

import (
	"context"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTimers stands in for context.WithTimeout: its deadlines end when the
// test advances its clock, never on their own, so a call that waits for its
// context (a silent peer) returns exactly when the test says a timeout
// passed.
type fakeTimers struct {
	mu      sync.Mutex
	now     time.Duration
	pending []fakeDeadline
}

type fakeDeadline struct {
	at     time.Duration
	cancel context.CancelFunc
}

func (f *fakeTimers) withTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	f.mu.Lock()
	f.pending = append(f.pending, fakeDeadline{at: f.now + d, cancel: cancel})
	f.mu.Unlock()
	return ctx, cancel
}

// advance moves the clock by d and ends every deadline reached.
func (f *fakeTimers) advance(d time.Duration) {
	f.mu.Lock()
	f.now += d
	var due []context.CancelFunc
	kept := f.pending[:0]
	for _, p := range f.pending {
		if p.at <= f.now {
			due = append(due, p.cancel)
		} else {
			kept = append(kept, p)
		}
	}
	f.pending = kept
	f.mu.Unlock()
	for _, c := range due {
		c()
	}
}

func (f *fakeTimers) elapsed() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// silence makes the peers in silent drop every call from `from` without an
// answer: the call hangs until its context ends. entered receives the
// callee of each such call when it starts hanging; inFlight counts the
// calls hanging right now.
type silence struct {
	entered  chan string
	inFlight atomic.Int64
}

func silenceFrom(net *MemNetwork, from string, silent ...string) *silence {
	s := &silence{entered: make(chan string, 64)}
	set := map[string]bool{}
	for _, a := range silent {
		set[a] = true
	}
	net.SetCallHook(func(ctx context.Context, f, to, _ string) error {
		if f != from || !set[to] {
			return nil
		}
		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		s.entered <- to
		<-ctx.Done()
		return ctx.Err()
	})
	return s
}

// waitEntered waits until k calls have started hanging. The deadline only
// bounds a failing test; a passing one never waits for it.
func (s *silence) waitEntered(t *testing.T, k int, why string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for i := 0; i < k; i++ {
		select {
		case <-s.entered:
		case <-deadline:
			t.Fatalf("%d of %d calls to silent peers in flight at once: %s", i, k, why)
		}
	}
}

func waitDone(t *testing.T, done <-chan struct{}, why string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal(why)
	}
}

// neighbours returns n's predecessor and first two successors as nodes.
func neighbours(t *testing.T, r *testRing, n *Node) []*Node {
	t.Helper()
	st := n.State()
	out := []*Node{r.nodes[st.Predecessor.Addr]}
	for _, s := range st.Successors[:2] {
		out = append(out, r.nodes[s.Addr])
	}
	for _, x := range out {
		if x == nil {
			t.Fatalf("%s: neighbour not in the test ring", n.Self().Name)
		}
	}
	return out
}

// After a silent cut (packets dropped, no reset) all three neighbours of a
// node stop answering. One probe round pings them at the same time, so it
// lasts one probe timeout, not three, and SuspectAfter rounds remove all
// three in SuspectAfter timeouts. No ping outlives its round.
func TestProbeSilentNeighboursConcurrently(t *testing.T) {
	cfg := DefaultConfig()
	r := newTestRing(t, cfg, 41)
	for i := 0; i < 8; i++ {
		r.addN(1)
		r.stabilizeRound()
	}
	settle(t, r)
	a := r.live()[2]
	nbs := neighbours(t, r, a)
	var silentAddrs []string
	for _, x := range nbs {
		silentAddrs = append(silentAddrs, x.Self().Addr)
	}
	var failed []ID
	a.obs = func(e Event) {
		if e.Kind == EventNeighborFailed {
			failed = append(failed, e.Peer.ID)
		}
	}
	s := silenceFrom(r.net, a.Self().Addr, silentAddrs...)
	defer r.net.SetCallHook(nil)

	ft := &fakeTimers{}
	ctx := context.Background()
	for round := 1; round <= cfg.SuspectAfter; round++ {
		done := make(chan struct{})
		go func() {
			defer close(done)
			a.ProbeNeighbors(ctx, func() (context.Context, context.CancelFunc) {
				return ft.withTimeout(ctx, cfg.ProbeTimeout)
			})
		}()
		s.waitEntered(t, len(nbs), "the neighbours are probed one after another")
		ft.advance(cfg.ProbeTimeout) // one timeout ends the round
		waitDone(t, done, "probe round did not end after one probe timeout")
		if k := s.inFlight.Load(); k != 0 {
			t.Fatalf("round %d: %d pings still running after ProbeNeighbors returned", round, k)
		}
		if round < cfg.SuspectAfter && len(failed) != 0 {
			t.Fatalf("round %d: suspected before %d misses", round, cfg.SuspectAfter)
		}
	}
	if got, want := ft.elapsed(), time.Duration(cfg.SuspectAfter)*cfg.ProbeTimeout; got != want {
		t.Fatalf("%d rounds took %s of probe timeouts, want %s", cfg.SuspectAfter, got, want)
	}
	if len(failed) != len(nbs) {
		t.Fatalf("%d neighbours reported failed, want %d", len(failed), len(nbs))
	}
	// Events follow the target order (predecessor, successor 0, 1),
	// however the pings interleaved.
	for i, x := range nbs {
		if failed[i] != x.Self().ID {
			t.Fatalf("failure event %d for %s, want %s", i, failed[i], x.Self().ID)
		}
	}
	st := a.State()
	if !st.Predecessor.IsZero() {
		t.Fatalf("silent predecessor %s kept", st.Predecessor.Name)
	}
	for _, p := range st.Successors {
		for _, x := range nbs {
			if p.ID == x.Self().ID {
				t.Fatalf("silent neighbour %s still a successor", p.Name)
			}
		}
	}
}

// A round whose own context ends (the driver stopping) waits for its
// pings, which end with it, and counts none of them as a miss.
func TestProbeRoundCancelledCountsNothing(t *testing.T) {
	cfg := DefaultConfig()
	r := newTestRing(t, cfg, 43)
	r.addN(6)
	settle(t, r)
	a := r.live()[1]
	nbs := neighbours(t, r, a)
	s := silenceFrom(r.net, a.Self().Addr, nbs[0].Self().Addr, nbs[1].Self().Addr, nbs[2].Self().Addr)
	defer r.net.SetCallHook(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.ProbeNeighbors(ctx, nil)
	}()
	s.waitEntered(t, 3, "the neighbours are probed one after another")
	cancel()
	waitDone(t, done, "probe round did not end with its context")
	if k := s.inFlight.Load(); k != 0 {
		t.Fatalf("%d pings still running after ProbeNeighbors returned", k)
	}
	a.mu.Lock()
	fails := len(a.probeFails)
	a.mu.Unlock()
	if fails != 0 {
		t.Fatalf("cancelled round counted %d misses", fails)
	}
}

// A silent predecessor costs the driver's stabilize round one probe
// timeout: check-predecessor has a deadline of its own, and stabilize
// still runs with its full RPCTimeout and notifies the successor. (With
// the round's one RPCTimeout context shared, the ping used all of it and
// stabilize failed at once.)
func TestStabilizeNotStalledBySilentPredecessor(t *testing.T) {
	cfg := DefaultConfig()
	r := newTestRing(t, cfg, 47)
	r.addN(6)
	settle(t, r)
	a := r.live()[3]
	pred := r.nodes[a.Predecessor().Addr]
	succ := a.Successors()[0]

	var notified atomic.Int64
	var mu sync.Mutex
	var notifyErr error
	entered := make(chan struct{}, 8)
	r.net.SetCallHook(func(ctx context.Context, from, to, method string) error {
		if from != a.Self().Addr {
			return nil
		}
		if to == pred.Self().Addr {
			entered <- struct{}{}
			<-ctx.Done() // silent
			return ctx.Err()
		}
		if to == succ.Addr && method == "Notify" {
			mu.Lock()
			notifyErr = ctx.Err()
			mu.Unlock()
			notified.Add(1)
		}
		return nil
	})
	defer r.net.SetCallHook(nil)

	ft := &fakeTimers{}
	d := NewDriver(a, rand.New(rand.NewSource(1)), nil, nil)
	d.withTimeout = ft.withTimeout
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.stabilizeRound(context.Background())
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("check-predecessor did not ping the predecessor")
	}
	ft.advance(cfg.ProbeTimeout)
	waitDone(t, done, "stabilize round stalled by a silent predecessor past one probe timeout")
	if got := ft.elapsed(); got != cfg.ProbeTimeout || got >= cfg.RPCTimeout {
		t.Fatalf("round took %s, want %s", got, cfg.ProbeTimeout)
	}
	mu.Lock()
	defer mu.Unlock()
	if notified.Load() == 0 || notifyErr != nil {
		t.Fatalf("stabilize did not notify its successor in time (%d notifies, ctx %v)", notified.Load(), notifyErr)
	}
	// A timed-out ping is inconclusive: the predecessor is left to the
	// probes (SuspectAfter misses), not dropped after one slow answer.
	if a.Predecessor().ID != pred.Self().ID {
		t.Fatalf("predecessor dropped after one timed-out ping")
	}
}

// In a two-node ring the predecessor is also the successor: it is pinged
// once per round, and so suspected after SuspectAfter rounds, not half.
func TestProbeTwoNodeRingPingsOnce(t *testing.T) {
	cfg := DefaultConfig()
	r := newTestRing(t, cfg, 53)
	r.addN(2)
	settle(t, r)
	a, b := r.live()[0], r.live()[1]
	r.net.Cut(a.Self().Addr, b.Self().Addr)
	ctx := context.Background()
	for i := 0; i < cfg.SuspectAfter-1; i++ {
		a.ProbeNeighbors(ctx, nil)
	}
	if a.Predecessor().ID != b.Self().ID {
		t.Fatalf("suspected after %d rounds, want %d", cfg.SuspectAfter-1, cfg.SuspectAfter)
	}
	a.ProbeNeighbors(ctx, nil)
	if !a.Predecessor().IsZero() {
		t.Fatalf("not suspected after %d rounds", cfg.SuspectAfter)
	}
}
