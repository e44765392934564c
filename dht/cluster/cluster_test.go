package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dsn-ims/dsn/dht"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not reached in %s: %v", what, d, err)
}

func startN(t *testing.T, n int) []*Cluster {
	t.Helper()
	var out []*Cluster
	for i := 0; i < n; i++ {
		cfg := LocalConfig(fmt.Sprintf("node-%d", i))
		cfg.TCP.BindAddr = fmt.Sprintf("127.0.0.%d:0", 1+i%3)
		if i > 0 {
			cfg.Join = []string{out[0].Transport().Addr()}
		}
		c, err := Start(cfg, testKey, zaptest.NewLogger(t).Named(cfg.Name), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		out = append(out, c)
	}
	return out
}

// ringExact checks every member's successor and predecessor against the
// sorted IDs of the live members.
func ringExact(cs []*Cluster) error {
	live := append([]*Cluster(nil), cs...)
	sort.Slice(live, func(i, j int) bool { return live[i].Node().Self().ID < live[j].Node().Self().ID })
	for i, c := range live {
		st := c.Node().State()
		wantSucc := live[(i+1)%len(live)].Node().Self().ID
		wantPred := live[(i-1+len(live))%len(live)].Node().Self().ID
		if len(st.Successors) == 0 || st.Successors[0].ID != wantSucc {
			return fmt.Errorf("%s: successor %v, want %s", st.Self.Name, st.Successors, wantSucc)
		}
		if st.Predecessor.ID != wantPred {
			return fmt.Errorf("%s: predecessor %s, want %s", st.Self.Name, st.Predecessor.Name, wantPred)
		}
		if len(st.Successors) < min(len(live)-1, 3) {
			return fmt.Errorf("%s: successor list %d long", st.Self.Name, len(st.Successors))
		}
	}
	return nil
}

func copies(cs []*Cluster, key string) int {
	n := 0
	for _, c := range cs {
		if r, ok := c.Node().LocalStore().Get(key); ok && !r.Deleted {
			n++
		}
	}
	return n
}

// Acceptance 4: five members over TCP + memberlist form a ring; a member
// with the wrong cluster key is refused; killing one repairs the ring with
// no record lost.
func TestRealNetworkRing(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets; skipped with -short")
	}
	cs := startN(t, 5)
	waitFor(t, 10*time.Second, "ring of 5", func() error { return ringExact(cs) })
	waitFor(t, 10*time.Second, "every member gossiped", func() error {
		for _, c := range cs {
			if got := len(c.Members()); got != 5 {
				return fmt.Errorf("%s sees %d gossip members", c.Node().Self().Name, got)
			}
		}
		return nil
	})

	ctx := context.Background()
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = fmt.Sprintf("sip:u%d@dsn.test", i)
		if _, err := cs[i%5].Node().Put(ctx, keys[i], []byte("v"), dht.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// A rogue with the wrong key cannot join the gossip or the ring.
	rogue := LocalConfig("rogue")
	rogue.Join = []string{cs[1].Transport().Addr()}
	rogue.JoinTimeout = 2 * time.Second
	if r, err := Start(rogue, []byte("fedcba9876543210fedcba9876543210"), zaptest.NewLogger(t).Named("rogue"), nil); err == nil {
		r.Close()
		t.Fatal("member with the wrong cluster key joined")
	}
	// Nor can its transport call a member directly.
	rc := LocalConfig("rogue2")
	rcl, err := Start(rc, []byte("fedcba9876543210fedcba9876543210"), zaptest.NewLogger(t).Named("rogue2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rcl.Close()
	err = rcl.Transport().Store(ctx, cs[2].Node().Self(), []dht.Record{{Key: keys[0], Value: []byte("poison"), Version: 1 << 62}})
	if !errors.Is(err, dht.ErrUnauthenticated) {
		t.Fatalf("rogue store: want ErrUnauthenticated, got %v", err)
	}

	// Crash one member (no leave): the others detect it and repair.
	victim := cs[3]
	victim.Close()
	alive := append(append([]*Cluster(nil), cs[:3]...), cs[4])
	waitFor(t, 10*time.Second, "ring of 4 after crash", func() error { return ringExact(alive) })
	waitFor(t, 10*time.Second, "3 copies of every record", func() error {
		for _, k := range keys {
			if n := copies(alive, k); n != 3 {
				return fmt.Errorf("%s has %d copies", k, n)
			}
		}
		return nil
	})
	for _, k := range keys {
		rec, err := alive[0].Node().Get(ctx, k)
		if err != nil || string(rec.Value) != "v" {
			t.Fatalf("get %s: %v %q", k, err, rec.Value)
		}
	}

	// Graceful leave of another member: also no loss.
	if err := alive[1].Leave(ctx); err != nil {
		t.Fatal(err)
	}
	rest := []*Cluster{alive[0], alive[2], alive[3]}
	waitFor(t, 10*time.Second, "ring of 3 after leave", func() error { return ringExact(rest) })
	waitFor(t, 10*time.Second, "3 copies after leave", func() error {
		for _, k := range keys {
			if n := copies(rest, k); n != 3 {
				return fmt.Errorf("%s has %d copies", k, n)
			}
		}
		return nil
	})
}
