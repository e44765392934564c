package node

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/sip/proxy"
	"github.com/dsn-ims/dsn/sip/registrar"
)

// locatorRing is a converged in-memory ring of n nodes whose Peer.Meta is
// a SIP address, as the node sets it.
func locatorRing(t *testing.T, n int, clock func() time.Time) (*dht.MemNetwork, []*dht.Node) {
	t.Helper()
	ctx := context.Background()
	net := dht.NewMemNetwork()
	var nodes []*dht.Node
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("n%d", i)
		self := dht.Peer{ID: dht.NodeID(name), Name: name, Addr: "mem:" + name, Meta: fmt.Sprintf("127.0.0.1:%d", 5060+i)}
		nd, err := dht.New(dht.DefaultConfig(), self, dht.Deps{Transport: net.Transport(self.Addr), Now: clock, Rand: rand.New(rand.NewSource(int64(i)))})
		if err != nil {
			t.Fatal(err)
		}
		net.Serve(self.Addr, nd)
		if i == 0 {
			nd.Create()
		} else if err := nd.Join(ctx, nodes[0].Self()); err != nil {
			t.Fatalf("join %s: %v", name, err)
		}
		nodes = append(nodes, nd)
	}
	for round := 0; round < 3*n; round++ {
		for _, nd := range nodes {
			_ = nd.CheckPredecessor(ctx)
			_ = nd.Stabilize(ctx)
		}
	}
	for _, nd := range nodes {
		if err := nd.FixFingers(ctx); err != nil {
			t.Fatalf("fix fingers: %v", err)
		}
	}
	return net, nodes
}

func byID(nodes []*dht.Node, id dht.ID) *dht.Node {
	for _, n := range nodes {
		if n.Self().ID == id {
			return n
		}
	}
	return nil
}

// TestLocatorAlternatesServeAfterHomeCrash: the locator names the home
// node's first Replicas-1 successors as alternates (this node marked
// Self). Right after the home node crashed, before the ring noticed, the
// lookup still names it, and the first alternate's registrar still finds
// the binding: dht.Node.Get routes around the unreachable owner to the
// replica this node holds.
func TestLocatorAlternatesServeAfterHomeCrash(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	net, nodes := locatorRing(t, 6, clock)
	ctx := context.Background()
	const aor = "sip:bob@dsn.test"
	res, err := nodes[0].Lookup(ctx, dht.HashKey(aor))
	if err != nil {
		t.Fatal(err)
	}
	owner := byID(nodes, res.Owner.ID)
	succs := owner.Successors()
	s1, s2 := byID(nodes, succs[0].ID), byID(nodes, succs[1].ID)
	var other *dht.Node
	for _, n := range nodes {
		if n != owner && n != s1 && n != s2 {
			other = n
			break
		}
	}
	loc := func(n *dht.Node) *ringLocator { return &ringLocator{ring: n, sipAddr: n.Self().Meta} }
	set := registrar.BindingSet{RetainUntil: now.Add(time.Hour), Bindings: []registrar.Binding{{
		Contact: "sip:bob@10.0.0.9:5060", Expires: now.Add(time.Hour), CallID: "c1", CSeq: 1, Q: registrar.QNone,
	}}}
	if err := (&ringStore{ring: other, now: clock}).Put(ctx, aor, set, 0); err != nil {
		t.Fatal(err)
	}

	want := proxy.Home{Name: owner.Self().Name, Addr: owner.Self().Meta, Alternates: []proxy.Alternate{
		{Name: s1.Self().Name, Addr: s1.Self().Meta}, {Name: s2.Self().Name, Addr: s2.Self().Meta}}}
	check := func(from *dht.Node, want proxy.Home) {
		t.Helper()
		got, err := loc(from).Home(ctx, aor)
		if err != nil {
			t.Fatalf("Home from %s: %v", from.Self().Name, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("Home from %s = %+v, want %+v", from.Self().Name, got, want)
		}
	}
	check(other, want)
	fromS1 := want
	fromS1.Alternates = []proxy.Alternate{{Self: true, Name: s1.Self().Name, Addr: s1.Self().Meta}, want.Alternates[1]}
	check(s1, fromS1)
	fromOwner := proxy.Home{Self: true, Name: owner.Self().Name, Addr: owner.Self().Meta, Alternates: want.Alternates}
	check(owner, fromOwner)

	net.Kill(owner.Self().Addr) // a crash: nobody is told
	check(other, want)          // the ring has not noticed yet
	reg, err := registrar.New(registrar.Config{
		Domains: []string{"dsn.test"}, DefaultExpires: time.Hour, MinExpires: time.Minute, MaxExpires: 2 * time.Hour,
		MaxContactsPerAOR: 10, MaxConflictRetries: 8, RecordLinger: 24 * time.Hour, RetryAfter: 5 * time.Second, RequestTimeout: 5 * time.Second,
	}, &ringStore{ring: s1, now: clock}, clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := reg.Lookup(ctx, aor)
	if err != nil || len(bs) != 1 || bs[0].Contact != "sip:bob@10.0.0.9:5060" {
		t.Fatalf("the alternate's registrar: %v %+v, want bob's binding from the replica", err, bs)
	}
}

// TestLocatorAlternatesSmallRing: in a two-node ring the successor list
// wraps around to the home node itself; it is no alternate of itself.
func TestLocatorAlternatesSmallRing(t *testing.T) {
	clock := func() time.Time { return time.Unix(1_700_000_000, 0) }
	_, nodes := locatorRing(t, 2, clock)
	for _, n := range nodes {
		h, err := (&ringLocator{ring: n, sipAddr: n.Self().Meta}).Home(context.Background(), "sip:carol@dsn.test")
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Alternates) != 1 || h.Alternates[0].Addr == h.Addr || h.Alternates[0].Self == h.Self {
			t.Fatalf("from %s: %+v, want the other node as the one alternate", n.Self().Name, h)
		}
	}
}

// TestLocatorAlternatesMatchTheRing: from every node, for many AORs, the
// alternates are exactly the home node's first Replicas-1 successors on
// the ring, whatever part of them the lookup itself returned.
func TestLocatorAlternatesMatchTheRing(t *testing.T) {
	clock := func() time.Time { return time.Unix(1_700_000_000, 0) }
	_, nodes := locatorRing(t, 12, clock)
	sorted := append([]*dht.Node(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Self().ID < sorted[j].Self().ID })
	truth := func(aor string) (home string, alts []string) {
		id := dht.HashKey(aor)
		i := sort.Search(len(sorted), func(i int) bool { return sorted[i].Self().ID >= id }) % len(sorted)
		for k := 1; k < dht.DefaultConfig().Replicas; k++ {
			alts = append(alts, sorted[(i+k)%len(sorted)].Self().Meta)
		}
		return sorted[i].Self().Meta, alts
	}
	for a := 0; a < 40; a++ {
		aor := fmt.Sprintf("sip:user%d@dsn.test", a)
		wantHome, wantAlts := truth(aor)
		for _, n := range nodes {
			h, err := (&ringLocator{ring: n, sipAddr: n.Self().Meta}).Home(context.Background(), aor)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, alt := range h.Alternates {
				got = append(got, alt.Addr)
				if alt.Self != (alt.Addr == n.Self().Meta) {
					t.Errorf("%s from %s: alternate %+v has the wrong Self", aor, n.Self().Name, alt)
				}
			}
			if h.Addr != wantHome || fmt.Sprint(got) != fmt.Sprint(wantAlts) {
				t.Fatalf("%s from %s: home %s alternates %v, want %s %v", aor, n.Self().Name, h.Addr, got, wantHome, wantAlts)
			}
		}
	}
}
