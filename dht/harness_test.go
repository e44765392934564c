package dht

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"
)

// testRing drives a set of nodes on a MemNetwork round by round.
type testRing struct {
	t     testing.TB
	cfg   Config
	net   *MemNetwork
	rng   *rand.Rand
	nodes map[string]*Node // by addr, live and dead
	dead  map[string]bool
	now   time.Time
	seq   int
	// churning relaxes the copy count a put must report.
	churning bool
}

func newTestRing(t testing.TB, cfg Config, seed int64) *testRing {
	return &testRing{
		t: t, cfg: cfg, net: NewMemNetwork(), rng: rand.New(rand.NewSource(seed)),
		nodes: map[string]*Node{}, dead: map[string]bool{},
		now: time.Unix(1_700_000_000, 0),
	}
}

func (r *testRing) clock() time.Time { return r.now }

func (r *testRing) newNode(name string) *Node {
	addr := "mem:" + name
	self := Peer{ID: NodeID(name), Name: name, Addr: addr}
	n, err := New(r.cfg, self, Deps{
		Transport: r.net.Transport(addr), Now: r.clock,
		Rand: rand.New(rand.NewSource(r.rng.Int63())),
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.net.Serve(addr, n)
	r.nodes[addr] = n
	delete(r.dead, addr)
	return n
}

// add creates a node and joins it through a random live node (or creates
// the ring if it is the first).
func (r *testRing) add(name string) *Node {
	live := r.live()
	n := r.newNode(name)
	if len(live) == 0 {
		n.Create()
		return n
	}
	seed := live[r.rng.Intn(len(live))]
	if err := n.Join(context.Background(), seed.Self()); err != nil {
		r.t.Fatalf("join %s: %v", name, err)
	}
	return n
}

func (r *testRing) addN(k int) {
	for i := 0; i < k; i++ {
		r.seq++
		r.add(fmt.Sprintf("n%04d", r.seq))
	}
}

func (r *testRing) kill(n *Node) {
	r.net.Kill(n.Self().Addr)
	r.dead[n.Self().Addr] = true
}

// live returns live nodes sorted by ID.
func (r *testRing) live() []*Node {
	var out []*Node
	for a, n := range r.nodes {
		if !r.dead[a] && !n.isStopped() {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Self().ID < out[j].Self().ID })
	return out
}

func (r *testRing) shuffled() []*Node {
	l := r.live()
	r.rng.Shuffle(len(l), func(i, j int) { l[i], l[j] = l[j], l[i] })
	return l
}

// stabilizeRound runs check-predecessor and stabilize on every live node.
func (r *testRing) stabilizeRound() {
	ctx := context.Background()
	for _, n := range r.shuffled() {
		_ = n.CheckPredecessor(ctx)
		_ = n.Stabilize(ctx)
	}
}

func (r *testRing) fingerRound() {
	ctx := context.Background()
	for _, n := range r.shuffled() {
		if err := n.FixFingers(ctx); err != nil {
			r.t.Logf("fixfingers %s: %v", n.Self().Name, err)
		}
	}
}

func (r *testRing) maintainRound() {
	ctx := context.Background()
	for _, n := range r.shuffled() {
		if _, err := n.Maintain(ctx); err != nil {
			r.t.Fatalf("maintain %s: %v", n.Self().Name, err)
		}
	}
}

// ringErrors compares every live node's state with the truth computed from
// the sorted ID list; it returns the first few mismatches.
func (r *testRing) ringErrors(checkFingers bool) []string {
	live := r.live()
	var errs []string
	add := func(f string, a ...any) {
		if len(errs) < 5 {
			errs = append(errs, fmt.Sprintf(f, a...))
		}
	}
	k := len(live)
	succOf := func(id ID) *Node {
		i := sort.Search(k, func(i int) bool { return live[i].Self().ID >= id })
		return live[i%k]
	}
	for i, n := range live {
		st := n.State()
		wantLen := min(r.cfg.SuccessorListLen, k-1)
		if len(st.Successors) != wantLen {
			add("%s: %d successors, want %d", n.Self().Name, len(st.Successors), wantLen)
			continue
		}
		for j := 0; j < wantLen; j++ {
			if want := live[(i+1+j)%k].Self().ID; st.Successors[j].ID != want {
				add("%s: successor[%d] = %s, want %s", n.Self().Name, j, st.Successors[j].ID, want)
			}
		}
		if k > 1 {
			if want := live[(i-1+k)%k].Self().ID; st.Predecessor.ID != want || st.Predecessor.IsZero() {
				add("%s: predecessor %s, want %s", n.Self().Name, st.Predecessor.ID, want)
			}
		}
		if !checkFingers {
			continue
		}
		for f := 0; f < Bits; f++ {
			want := succOf(fingerStart(n.Self().ID, f))
			got := n.FingerAt(f)
			if want == n {
				if !got.IsZero() {
					add("%s: finger %d = %s, want self", n.Self().Name, f, got.Name)
				}
				continue
			}
			if got.ID != want.Self().ID {
				add("%s: finger %d = %s, want %s", n.Self().Name, f, got.Name, want.Self().Name)
			}
		}
	}
	return errs
}

// converge runs rounds until the ring is exactly right or max rounds pass;
// it returns the number of rounds taken.
func (r *testRing) converge(max int) int {
	for round := 1; round <= max; round++ {
		r.stabilizeRound()
		if len(r.ringErrors(false)) == 0 {
			r.fingerRound()
			if len(r.ringErrors(true)) == 0 {
				return round
			}
		}
	}
	r.t.Fatalf("ring did not converge in %d rounds: %v", max, r.ringErrors(true))
	return -1
}

// owner returns the true owner of id by brute force.
func (r *testRing) owner(id ID) *Node {
	live := r.live()
	i := sort.Search(len(live), func(i int) bool { return live[i].Self().ID >= id })
	return live[i%len(live)]
}

// copies counts, for each key, the live nodes that hold a live copy.
func (r *testRing) copies() map[string]int {
	out := map[string]int{}
	for _, n := range r.live() {
		n.LocalStore().Arc(0, 0, func(_ ID, rec Record) bool {
			if !rec.Deleted {
				out[rec.Key]++
			}
			return true
		})
	}
	return out
}
