package dht

import (
	"context"
	"testing"
)

// A neighbour that misses SuspectAfter probes in a row (a flaky link) is
// removed from the ring state and reported; once the link works again the
// ring heals with no intervention.
func TestFalseSuspicionHeals(t *testing.T) {
	r := newTestRing(t, DefaultConfig(), 23)
	for i := 0; i < 12; i++ {
		r.addN(1)
		r.stabilizeRound()
	}
	settle(t, r)
	live := r.live()
	a, b := live[3], live[4] // b is a's successor
	var failed []Event
	a.obs = func(e Event) {
		if e.Kind == EventNeighborFailed {
			failed = append(failed, e)
		}
	}
	r.net.Cut(a.Self().Addr, b.Self().Addr)
	ctx := context.Background()
	for i := 0; i < r.cfg.SuspectAfter-1; i++ {
		a.ProbeNeighbors(ctx, nil)
	}
	if len(failed) != 0 || a.Successors()[0].ID != b.Self().ID {
		t.Fatalf("suspected before %d misses", r.cfg.SuspectAfter)
	}
	a.ProbeNeighbors(ctx, nil)
	if len(failed) != 1 || failed[0].Peer.ID != b.Self().ID || failed[0].SuccessorIndex != 0 {
		t.Fatalf("want one failure event for %s, got %+v", b.Self().Name, failed)
	}
	if a.Successors()[0].ID == b.Self().ID {
		t.Fatal("suspect still first successor")
	}
	r.net.Heal()
	settle(t, r)
	if a.Successors()[0].ID != b.Self().ID {
		t.Fatalf("ring did not heal: successor %s", a.Successors()[0].Name)
	}
}

// In a ring smaller than the successor list, each list wraps past its
// owner. A dead node removed by its neighbours must not come back from a
// successor's wrapped list (it did, circulating at deep positions where
// nobody probes it, and lookups answered with it).
func TestDeadNodeDoesNotCirculateInSmallRing(t *testing.T) {
	r := newTestRing(t, DefaultConfig(), 29) // SuccessorListLen 8
	for i := 0; i < 6; i++ {
		r.addN(1)
		r.stabilizeRound()
	}
	settle(t, r)
	victim := r.live()[2]
	r.kill(victim)
	ctx := context.Background()
	for round := 0; round < 20; round++ {
		for _, n := range r.shuffled() {
			n.ProbeNeighbors(ctx, nil)
			_ = n.CheckPredecessor(ctx)
			_ = n.Stabilize(ctx)
		}
	}
	for _, n := range r.live() {
		for i, s := range n.Successors() {
			if s.ID == victim.Self().ID {
				t.Fatalf("%s still lists dead %s at successor[%d]", n.Self().Name, victim.Self().Name, i)
			}
		}
		if len(n.Successors()) != len(r.live())-1 {
			t.Fatalf("%s: %d successors, want %d", n.Self().Name, len(n.Successors()), len(r.live())-1)
		}
	}
	checkLookups(t, r, 500)
}
