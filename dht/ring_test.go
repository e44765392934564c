package dht

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestBetween(t *testing.T) {
	max := ^ID(0)
	cases := []struct {
		x, a, b    ID
		open, half bool
	}{
		{5, 1, 10, true, true},
		{10, 1, 10, false, true},
		{1, 1, 10, false, false},
		{0, max - 1, 2, true, true},   // wraps
		{max, max - 1, 2, true, true}, // wraps
		{3, max - 1, 2, false, false},
		{7, 7, 7, false, true}, // a == b: whole ring
		{8, 7, 7, true, true},
	}
	for _, c := range cases {
		if got := between(c.x, c.a, c.b); got != c.open {
			t.Errorf("between(%d,%d,%d) = %v", c.x, c.a, c.b, got)
		}
		if got := betweenRightIncl(c.x, c.a, c.b); got != c.half {
			t.Errorf("betweenRightIncl(%d,%d,%d) = %v", c.x, c.a, c.b, got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Replicas = 5
	c.SuccessorListLen = 3
	if err := c.Validate(); err == nil {
		t.Fatal("want error for SuccessorListLen < Replicas")
	}
}

func TestSingleNode(t *testing.T) {
	r := newTestRing(t, DefaultConfig(), 1)
	n := r.add("solo")
	ctx := context.Background()
	if _, err := n.Put(ctx, "k", []byte("v"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	rec, err := n.Get(ctx, "k")
	if err != nil || string(rec.Value) != "v" {
		t.Fatalf("get: %v %q", err, rec.Value)
	}
	res, err := n.Lookup(ctx, 12345)
	if err != nil || res.Owner.ID != n.Self().ID || res.Hops != 0 {
		t.Fatalf("lookup: %+v %v", res, err)
	}
}

// Acceptance 1: 200 nodes joined one by one converge within a bounded
// number of rounds; 10,000 random lookups agree with brute force.
func TestConvergeAndLookup200(t *testing.T) {
	r := newTestRing(t, DefaultConfig(), 42)
	for i := 0; i < 200; i++ {
		r.addN(1)
		r.stabilizeRound()
	}
	rounds := r.converge(30)
	t.Logf("converged %d rounds after the last join", rounds)
	ctx := context.Background()
	live := r.live()
	totalHops := 0
	for i := 0; i < 10000; i++ {
		id := ID(r.rng.Uint64())
		from := live[r.rng.Intn(len(live))]
		res, err := from.Lookup(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := r.owner(id); res.Owner.ID != want.Self().ID {
			t.Fatalf("lookup %s from %s: %s, want %s", id, from.Self().Name, res.Owner.Name, want.Self().Name)
		}
		totalHops += res.Hops
	}
	t.Logf("mean hops %.2f", float64(totalHops)/10000)
}

func putKeys(t testing.TB, r *testRing, n int) map[string]string {
	ctx := context.Background()
	live := r.live()
	want := map[string]string{}
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("sip:user%d@dsn.example.com", i)
		v := fmt.Sprintf("v%d", i)
		from := live[r.rng.Intn(len(live))]
		res, err := from.Put(ctx, k, []byte(v), PutOptions{})
		if err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		if res.Copies != r.cfg.Replicas && !r.churning {
			t.Fatalf("put %s: %d copies, want %d", k, res.Copies, r.cfg.Replicas)
		}
		want[k] = v
	}
	return want
}

// checkRecords asserts every key is readable from a random node with its
// value, and held by exactly Replicas live nodes.
func checkRecords(t testing.TB, r *testRing, want map[string]string) {
	t.Helper()
	ctx := context.Background()
	live := r.live()
	for k, v := range want {
		rec, err := live[r.rng.Intn(len(live))].Get(ctx, k)
		if err != nil || string(rec.Value) != v {
			t.Fatalf("get %s: %v %q, want %q", k, err, rec.Value, v)
		}
	}
	copies := r.copies()
	bad := 0
	for k := range want {
		if copies[k] != r.cfg.Replicas {
			if bad < 5 {
				t.Errorf("%s: %d copies, want %d", k, copies[k], r.cfg.Replicas)
			}
			bad++
		}
	}
	if len(copies) != len(want) {
		t.Errorf("%d distinct keys stored, want %d", len(copies), len(want))
	}
	if bad > 0 {
		t.Fatalf("%d keys with wrong copy count", bad)
	}
}

// settle runs stabilize, finger and maintenance rounds until the ring is
// exact and maintenance has converged.
func settle(t testing.TB, r *testRing) int {
	rounds := r.converge(40)
	for i := 0; i < 4; i++ {
		r.maintainRound()
	}
	return rounds
}

// killSome kills frac of the live ring at random, including runs of two
// adjacent nodes; it returns the killed nodes.
func killSome(r *testRing, frac float64) []*Node {
	live := r.live()
	target := int(float64(len(live)) * frac)
	var killed []*Node
	isDead := map[int]bool{}
	k := len(live)
	// R = 3 survives two adjacent failures, not three: never kill a node
	// that would make a run of three consecutive dead nodes.
	wouldRun3 := func(i int) bool {
		d := func(j int) bool { return isDead[((j%k)+k)%k] }
		return (d(i-1) && d(i-2)) || (d(i-1) && d(i+1)) || (d(i+1) && d(i+2))
	}
	for len(killed) < target {
		i := r.rng.Intn(k)
		if isDead[i] || wouldRun3(i) {
			continue
		}
		isDead[i] = true
		killed = append(killed, live[i])
		// Every third kill takes out the successor too: a run of two.
		if len(killed)%3 == 0 && len(killed) < target && !isDead[(i+1)%k] && !wouldRun3((i+1)%k) {
			isDead[(i+1)%len(live)] = true
			killed = append(killed, live[(i+1)%len(live)])
		}
	}
	for _, n := range killed {
		r.kill(n)
	}
	return killed
}

func hasAdjacentRun(r *testRing, killed []*Node) bool {
	all := make([]*Node, 0, len(r.nodes))
	for _, n := range r.nodes {
		all = append(all, n)
	}
	dead := map[ID]bool{}
	for _, n := range killed {
		dead[n.Self().ID] = true
	}
	for _, n := range killed {
		// successor among all nodes (dead or alive)
		var best *Node
		for _, m := range all {
			if m == n {
				continue
			}
			if best == nil || between(m.Self().ID, n.Self().ID, best.Self().ID) {
				best = m
			}
		}
		if best != nil && dead[best.Self().ID] {
			return true
		}
	}
	return false
}

// Acceptance 2: kill 20% of a 200-node ring (with adjacent runs); lookups
// are right again and every record has exactly 3 copies.
func TestChurnKill20Percent(t *testing.T) {
	r := newTestRing(t, DefaultConfig(), 7)
	for i := 0; i < 200; i++ {
		r.addN(1)
		r.stabilizeRound()
	}
	settle(t, r)
	want := putKeys(t, r, 2000)
	checkRecords(t, r, want)

	killed := killSome(r, 0.2)
	if !hasAdjacentRun(r, killed) {
		t.Fatal("test setup: no adjacent run killed")
	}
	rounds := settle(t, r)
	t.Logf("re-converged in %d rounds after killing %d nodes", rounds, len(killed))
	checkLookups(t, r, 2000)
	checkRecords(t, r, want)
}

// Acceptance 2 (second half): churn with joins interleaved.
func TestChurnWithJoins(t *testing.T) {
	r := newTestRing(t, DefaultConfig(), 9)
	for i := 0; i < 200; i++ {
		r.addN(1)
		r.stabilizeRound()
	}
	settle(t, r)
	want := putKeys(t, r, 1500)
	for wave := 0; wave < 4; wave++ {
		// Kills and joins in the same period; the ring recovers before
		// the next wave (at most two adjacent failures at once).
		killSome(r, 0.05)
		r.addN(10)
		r.stabilizeRound()
		r.maintainRound()
		// Writes continue during churn (a replica may be dead but not yet
		// detected: fewer acknowledged copies, repaired by maintenance).
		r.churning = true
		for k, v := range putKeys(t, r, 100) {
			want[k+fmt.Sprint(wave)] = v
			if _, err := r.live()[0].Put(context.Background(), k+fmt.Sprint(wave), []byte(v), PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		r.churning = false
		settle(t, r)
	}
	checkLookups(t, r, 2000)
	checkRecords(t, r, want)
}

func checkLookups(t testing.TB, r *testRing, n int) {
	t.Helper()
	live := r.live()
	for i := 0; i < n; i++ {
		id := ID(r.rng.Uint64())
		res, err := live[r.rng.Intn(len(live))].Lookup(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if want := r.owner(id); res.Owner.ID != want.Self().ID {
			t.Fatalf("lookup %s = %s, want %s", id, res.Owner.Name, want.Self().Name)
		}
	}
}

// Acceptance 3: records move to a joining owner; gets during the move
// succeed.
func TestJoinHandOff(t *testing.T) {
	r := newTestRing(t, DefaultConfig(), 11)
	r.addN(8)
	settle(t, r)
	want := putKeys(t, r, 500)
	ctx := context.Background()
	for i := 0; i < 8; i++ {
		n := r.add(fmt.Sprintf("joiner%d", i))
		// Before any maintenance: gets for keys the joiner now owns must
		// succeed while the data is still elsewhere.
		r.stabilizeRound()
		r.stabilizeRound()
		for k, v := range want {
			rec, err := r.live()[r.rng.Intn(len(r.live()))].Get(ctx, k)
			if err != nil || string(rec.Value) != v {
				t.Fatalf("get %s during hand-off: %v", k, err)
			}
		}
		r.maintainRound()
		// The joiner now holds the keys it owns.
		for k := range want {
			if r.owner(HashKey(k)) == n {
				if _, ok := n.LocalStore().Get(k); !ok {
					t.Fatalf("joiner %s does not hold %s after maintenance", n.Self().Name, k)
				}
			}
		}
	}
	settle(t, r)
	checkRecords(t, r, want)
}

func TestConditionalPutAndDelete(t *testing.T) {
	r := newTestRing(t, DefaultConfig(), 3)
	r.addN(10)
	settle(t, r)
	ctx := context.Background()
	a, b := r.live()[0], r.live()[5]
	res, err := a.Put(ctx, "aor", []byte("1"), PutOptions{Conditional: true, IfVersion: 0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "aor", []byte("x"), PutOptions{Conditional: true, IfVersion: 0}); !errors.Is(err, ErrConflict) {
		t.Fatalf("want conflict, got %v", err)
	}
	res2, err := b.Put(ctx, "aor", []byte("2"), PutOptions{Conditional: true, IfVersion: res.Version})
	if err != nil || res2.Version <= res.Version {
		t.Fatalf("cas: %v %d <= %d", err, res2.Version, res.Version)
	}
	if _, err := a.Delete(ctx, "aor", PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "aor"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	// A tombstone wins over stale replicas during maintenance.
	r.maintainRound()
	if _, err := b.Get(ctx, "aor"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after maintenance: %v", err)
	}
}

func TestExpiry(t *testing.T) {
	r := newTestRing(t, DefaultConfig(), 5)
	r.addN(6)
	settle(t, r)
	ctx := context.Background()
	exp := r.now.Add(60e9).UnixNano()
	if _, err := r.live()[0].Put(ctx, "short", []byte("x"), PutOptions{Expires: exp}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.live()[1].Get(ctx, "short"); err != nil {
		t.Fatal(err)
	}
	r.now = r.now.Add(61e9)
	if _, err := r.live()[1].Get(ctx, "short"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired record still served: %v", err)
	}
	r.maintainRound()
	if c := r.copies()["short"]; c != 0 {
		t.Fatalf("expired record still held by %d nodes", c)
	}
}

func TestGracefulLeave(t *testing.T) {
	r := newTestRing(t, DefaultConfig(), 13)
	r.addN(20)
	settle(t, r)
	want := putKeys(t, r, 400)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		n := r.live()[r.rng.Intn(len(r.live()))]
		if err := n.Leave(ctx); err != nil {
			t.Fatal(err)
		}
		// Neighbours were told: the ring is exact without any failure
		// detection (no check-predecessor needed).
		for _, m := range r.live() {
			for _, s := range m.Successors() {
				if s.ID == n.Self().ID {
					if len(m.Successors()) > 0 && m.Successors()[0].ID == n.Self().ID {
						t.Fatalf("%s still has departed %s as successor", m.Self().Name, n.Self().Name)
					}
				}
			}
		}
	}
	settle(t, r)
	checkRecords(t, r, want)
}

// Acceptance 5: split the ring in two, heal it, and it converges back into
// one ring. Records written on both sides to the same key: the later write
// (higher owner-assigned version) wins everywhere after the merge; keys
// written on one side only survive.
func TestPartitionHeal(t *testing.T) {
	for _, seed := range []int64{17, 18, 19, 20, 21} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { partitionHeal(t, seed) })
	}
}

func partitionHeal(t *testing.T, seed int64) {
	r := newTestRing(t, DefaultConfig(), seed)
	for i := 0; i < 40; i++ {
		r.addN(1)
		r.stabilizeRound()
	}
	settle(t, r)
	want := putKeys(t, r, 300)
	live := r.live()
	var ga, gb []string
	for i, n := range live {
		if i%2 == 0 {
			ga = append(ga, n.Self().Addr)
		} else {
			gb = append(gb, n.Self().Addr)
		}
	}
	r.net.Partition(ga, gb)
	// Each side re-forms its own ring (the other side looks dead).
	for i := 0; i < 30; i++ {
		r.stabilizeRound()
	}
	r.fingerRound()
	ctx := context.Background()
	sideA, sideB := r.nodes[ga[0]], r.nodes[gb[0]]
	if _, err := sideA.Put(ctx, "both", []byte("A"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	r.now = r.now.Add(1e9) // B's write is later
	if _, err := sideB.Put(ctx, "both", []byte("B"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sideA.Put(ctx, "onlyA", []byte("a"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sideB.Put(ctx, "onlyB", []byte("b"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	r.net.Heal()
	// Membership (gossip) tells every node about every other; Consider
	// merges the two rings.
	var all []Peer
	for _, n := range live {
		all = append(all, n.Self())
	}
	for _, n := range r.shuffled() {
		n.Consider(ctx, all)
	}
	settle(t, r)
	want["both"] = "B"
	want["onlyA"] = "a"
	want["onlyB"] = "b"
	checkRecords(t, r, want)
}
