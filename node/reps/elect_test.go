package reps

import (
	"fmt"
	"slices"
	"testing"

	"github.com/dsn-ims/dsn/dht"
)

func TestSlotPointsAreSpread(t *testing.T) {
	for k := 1; k <= 5; k++ {
		pts := SlotPoints(k, "seed")
		if len(pts) != k || pts[0] != dht.HashKey("seed") {
			t.Fatalf("k=%d: %v", k, pts)
		}
		for i := 1; i < k; i++ {
			gap := uint64(pts[i] - pts[i-1])
			if want := ^uint64(0)/uint64(k) + 1; gap != want {
				t.Fatalf("k=%d: gap %d, want %d", k, gap, want)
			}
		}
	}
}

// Exactly min(K, N) representatives, every node agrees, and DNS holds
// exactly their records.
func TestElectAgreementAndRecords(t *testing.T) {
	for _, tc := range []struct{ n, k int }{{1, 2}, {2, 2}, {3, 3}, {12, 2}, {40, 3}, {40, 1}} {
		t.Run(fmt.Sprintf("n%d_k%d", tc.n, tc.k), func(t *testing.T) {
			cfg := testConfig()
			cfg.K = tc.k
			w := build(t, cfg, tc.n)
			reps := w.checkAgreement()
			if len(reps) != min(tc.n, tc.k) {
				t.Fatalf("%d reps, want %d", len(reps), min(tc.n, tc.k))
			}
			w.checkDNS(reps)
			for _, m := range reps {
				if !m.mgr.Registered() {
					t.Fatalf("%s: not registered after its publish was applied", m.name)
				}
			}
			// Elections are stable: nothing changes on a quiet ring.
			for range 3 {
				w.elect()
			}
			w.checkAgreement()
			w.checkDNS(reps)
		})
	}
}

// A node that joins inside a representative's slot takes it: the old
// representative withdraws its own records and the new one publishes.
func TestNewNodeTakesSlot(t *testing.T) {
	w := build(t, testConfig(), 10)
	before := w.checkAgreement()
	old := before[0]
	pt := SlotPoints(w.cfg.K, w.cfg.SlotSeed)[0]
	// A name whose ID falls in [pt, old): its node becomes the slot's owner.
	var name string
	for i := 0; ; i++ {
		name = fmt.Sprintf("newcomer%d", i)
		if id := dht.NodeID(name); id-pt < old.node.Self().ID-pt {
			break
		}
	}
	for _, m := range w.live() {
		m.clearResults()
	}
	nw := w.add(name)
	w.converge()
	w.elect()
	after := w.checkAgreement()
	if after[0] != nw {
		t.Fatalf("slot 0 went to %s, want the newcomer %s", after[0].name, nw.name)
	}
	if slices.Contains(after, old) {
		t.Fatalf("old representative %s still chosen: %s", old.name, names(after))
	}
	w.checkDNS(after)
	if got := old.deletions(); !slices.Equal(got, []string{"self/self"}) {
		t.Fatalf("old representative's deletions %v, want its own withdrawal", got)
	}
	if old.mgr.IsRep() || old.mgr.Registered() {
		t.Fatal("old representative still thinks it is one")
	}
}

// A failed look-up keeps the previous set and publishes nothing new.
func TestElectLookupFailureKeepsSet(t *testing.T) {
	w := build(t, testConfig(), 30)
	reps := w.checkAgreement()
	w.net.SetHook(func(from, to, method string) error {
		if method == "FindNext" {
			return fmt.Errorf("dropped")
		}
		return nil
	})
	defer w.net.SetHook(nil)
	failed := 0
	for _, m := range w.live() {
		err := m.mgr.Elect(w.ctx)
		if got := peerNames(m.mgr.Reps()); got != names(reps) {
			t.Fatalf("%s: set is %s after a failed election, want %s", m.name, got, names(reps))
		}
		if err == nil {
			continue // answered from its own successor list
		}
		failed++
		if m.mgr.Status().ElectError == "" {
			t.Fatalf("%s: status does not report the failed election", m.name)
		}
	}
	if failed == 0 {
		t.Fatal("no election needed a remote look-up")
	}
	w.step()
	w.checkDNS(reps)
}
