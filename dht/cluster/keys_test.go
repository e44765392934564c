package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dsn-ims/dsn/dht"
)

var (
	k1 = bytes.Repeat([]byte{1}, 32)
	k2 = bytes.Repeat([]byte{2}, 32)
	k3 = bytes.Repeat([]byte{3}, 16)
	k4 = bytes.Repeat([]byte{4}, 24)
)

// rotationSteps are the three steps of the documented procedure, K1 to K2.
var rotationSteps = []struct {
	name string
	keys [][]byte
}{
	{"K2 added", [][]byte{k1, k2}},
	{"K2 primary", [][]byte{k2, k1}},
	{"K1 removed", [][]byte{k2}},
}

func TestSetGossipKeys(t *testing.T) {
	kr, err := newGossipKeyring([][]byte{k1})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range [][][]byte{
		{k1, k2}, {k2, k1}, {k2}, // the procedure
		{k2, k3, k4, k1}, {k2, k4}, // a key to keep after one to remove
		{k1, k3}, {k1, k3}, // a wholly new ring, then no change
	} {
		if err := setGossipKeys(kr, want); err != nil {
			t.Fatal(err)
		}
		got := kr.GetKeys()
		if !bytes.Equal(got[0], want[0]) || len(got) != len(want) {
			t.Fatalf("keyring %x, want %x (primary first)", got, want)
		}
		for _, w := range want {
			if !containsKey(got, w) {
				t.Fatalf("keyring %x lacks %x", got, w)
			}
		}
	}
}

// setGossipKeys never rewrites the slice memberlist's readers hold: run
// with -race, a reader iterating GetKeys as memberlist does finds no race.
func TestSetGossipKeysRace(t *testing.T) {
	kr, err := newGossipKeyring([][]byte{k1, k2, k3})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			n := 0
			for _, k := range kr.GetKeys() {
				n += len(k)
			}
			if n == 0 {
				t.Error("empty keyring seen")
				return
			}
		}
	})
	for i := range 200 {
		rings := [][][]byte{{k1, k2, k3}, {k1, k3}, {k3, k1, k2}, {k3, k2}}
		if err := setGossipKeys(kr, rings[i%len(rings)]); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

func containsKey(keys [][]byte, k []byte) bool {
	for _, x := range keys {
		if bytes.Equal(x, k) {
			return true
		}
	}
	return false
}

func TestSetKeysRefusesBadList(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets; skipped with -short")
	}
	c := startMember(t, "solo", "", [][]byte{k1}, nil)
	if err := c.SetKeys([][]byte{k1, []byte("short")}); err == nil {
		t.Fatal("accepted a 5-byte key")
	}
	if ids := c.Transport().KeyIDs(); len(ids) != 1 {
		t.Fatalf("transport keys changed to %v", ids)
	}
	if got := c.gossipKeys.GetKeys(); len(got) != 1 || !bytes.Equal(got[0], k1) {
		t.Fatalf("gossip keys changed to %x", got)
	}
}

// startMember starts a member on 127.0.0.1 (bind "" picks a free port)
// that is closed when the test ends.
func startMember(t *testing.T, name, bind string, keys [][]byte, join []string) *Cluster {
	t.Helper()
	cfg := LocalConfig(name)
	if bind != "" {
		cfg.TCP.BindAddr = bind
	}
	cfg.Join = join
	c, err := StartKeys(cfg, keys, zaptest.NewLogger(t).Named(name), nil)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(c.Close)
	return c
}

// rotationCheck asserts, at one step of a rotation, that the members
// form an exact ring, that gossip flows both ways between every pair
// (memberlist pings, encrypted with the sender's primary), that a record
// put on one member is read on another, and that rogue, holding no key
// of theirs, can neither call a member, nor join the gossip, nor show up
// in it.
func rotationCheck(t *testing.T, cs []*Cluster, rogue *Cluster, step string, n int) {
	t.Helper()
	waitFor(t, 10*time.Second, step+": ring of 3", func() error { return ringExact(cs) })
	waitFor(t, 10*time.Second, step+": gossip", func() error {
		for _, a := range cs {
			if got := len(a.Members()); got != len(cs) {
				return fmt.Errorf("%s sees %d gossip members", a.cfg.Name, got)
			}
			for _, b := range cs {
				if a == b {
					continue
				}
				addr, err := net.ResolveUDPAddr("udp", b.Transport().Addr())
				if err != nil {
					return err
				}
				if _, err := a.ml.Ping(b.cfg.Name, addr); err != nil {
					return fmt.Errorf("gossip ping %s -> %s: %w", a.cfg.Name, b.cfg.Name, err)
				}
			}
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	key, val := fmt.Sprintf("sip:step%d@dsn.test", n), []byte(step)
	if _, err := cs[n%3].Node().Put(ctx, key, val, dht.PutOptions{}); err != nil {
		t.Fatalf("%s: put: %v", step, err)
	}
	if rec, err := cs[(n+1)%3].Node().Get(ctx, key); err != nil || !bytes.Equal(rec.Value, val) {
		t.Fatalf("%s: get on another member: %q, %v", step, rec.Value, err)
	}
	for _, c := range cs {
		poison := []dht.Record{{Key: key, Value: []byte("poison"), Version: 1 << 62}}
		if err := rogue.Transport().Store(ctx, c.Node().Self(), poison); !errors.Is(err, dht.ErrUnauthenticated) {
			t.Fatalf("%s: rogue store on %s: %v, want ErrUnauthenticated", step, c.cfg.Name, err)
		}
		if _, err := rogue.ml.Join([]string{c.Transport().Addr()}); err == nil {
			t.Fatalf("%s: rogue joined the gossip through %s", step, c.cfg.Name)
		}
	}
	if got := len(rogue.Members()); got != 1 {
		t.Fatalf("%s: rogue sees %d gossip members", step, got)
	}
}

// startThree starts three members with keys K1, and a rogue member with
// K3 in a ring of its own.
func startThree(t *testing.T) (cs []*Cluster, rogue *Cluster) {
	cs = []*Cluster{startMember(t, "node-0", "", [][]byte{k1}, nil)}
	for i := 1; i < 3; i++ {
		cs = append(cs, startMember(t, fmt.Sprintf("node-%d", i), "", [][]byte{k1}, []string{cs[0].Transport().Addr()}))
	}
	return cs, startMember(t, "rogue", "", [][]byte{k3}, nil)
}

// The documented rotation, one member restarted at a time: at every step
// the ring is exact, gossip flows, records put before and during the
// rotation are read on every member, and a process with another key is
// refused.
func TestKeyRotationByRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets; skipped with -short")
	}
	cs, rogue := startThree(t)
	n := 0
	rotationCheck(t, cs, rogue, "all on [K1]", n)
	for _, step := range rotationSteps {
		for i := range cs {
			// Same name, same address, new keys: as a restart would.
			name, addr := cs[i].cfg.Name, cs[i].Transport().Addr()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := cs[i].Leave(ctx)
			cancel()
			if err != nil {
				t.Fatalf("%s: leave %s: %v", step.name, name, err)
			}
			cs[i] = startMember(t, name, addr, step.keys, []string{cs[(i+1)%3].Transport().Addr()})
			n++
			rotationCheck(t, cs, rogue, fmt.Sprintf("%s, %d of 3 restarted", step.name, i+1), n)
		}
	}
	checkAllRecords(t, cs, n)
}

// checkAllRecords reads every record rotationCheck wrote, from every member.
func checkAllRecords(t *testing.T, cs []*Cluster, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i <= n; i++ {
		for _, c := range cs {
			if _, err := c.Node().Get(ctx, fmt.Sprintf("sip:step%d@dsn.test", i)); err != nil {
				t.Fatalf("record %d lost after the rotation (read on %s): %v", i, c.cfg.Name, err)
			}
		}
	}
}

// Why step 1 exists: memberlist encrypts gossip with the primary only, so
// a member that makes a new key primary before its peers hold it cannot
// gossip with them (DHT RPC would still connect over the shared old key).
func TestSkippingStep1BreaksGossip(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets; skipped with -short")
	}
	cs, _ := startThree(t)
	if err := cs[0].SetKeys([][]byte{k2, k1}); err != nil {
		t.Fatal(err)
	}
	addr, err := net.ResolveUDPAddr("udp", cs[1].Transport().Addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs[0].ml.Ping(cs[1].cfg.Name, addr); err == nil {
		t.Fatal("gossip ping encrypted with a key the peer lacks was answered")
	}
	if err := cs[0].Transport().Ping(context.Background(), cs[1].Node().Self()); err != nil {
		t.Fatalf("DHT ping over the shared old key: %v", err)
	}
}

// The same rotation at run time with SetKeys, under a steady load of puts
// and gets across members: not one operation fails.
func TestKeyRotationLive(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets; skipped with -short")
	}
	cs, rogue := startThree(t)
	n := 0
	rotationCheck(t, cs, rogue, "all on [K1]", n)

	const maxOps = 20000 // bound; the loop normally stops when the rotation ends
	stop, done := make(chan struct{}), make(chan struct{})
	var ops atomic.Int64
	var failures []error
	go func() {
		defer close(done)
		for i := range maxOps {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			key := fmt.Sprintf("sip:load%d@dsn.test", i%64)
			val := []byte(fmt.Sprint(i))
			if _, err := cs[i%3].Node().Put(ctx, key, val, dht.PutOptions{}); err != nil {
				failures = append(failures, fmt.Errorf("op %d put: %w", i, err))
			} else if rec, err := cs[(i+1)%3].Node().Get(ctx, key); err != nil || !bytes.Equal(rec.Value, val) {
				failures = append(failures, fmt.Errorf("op %d get: %q, %v", i, rec.Value, err))
			}
			cancel()
			ops.Add(1)
		}
	}()
	for _, step := range rotationSteps {
		for i, c := range cs {
			// Let the load run on the connections of the previous step.
			from := ops.Load()
			waitFor(t, 10*time.Second, "load to progress", func() error {
				if ops.Load() < from+50 {
					return fmt.Errorf("%d ops", ops.Load()-from)
				}
				return nil
			})
			if err := c.SetKeys(step.keys); err != nil {
				t.Fatal(err)
			}
			n++
			rotationCheck(t, cs, rogue, fmt.Sprintf("%s on %d of 3", step.name, i+1), n)
		}
	}
	close(stop)
	<-done
	for _, err := range failures {
		t.Error(err)
	}
	t.Logf("%d put+get pairs during the rotation, %d failed", ops.Load(), len(failures))
	for _, c := range cs {
		if s := c.Transport().Stats(); s.HandshakesRejected == 0 {
			t.Errorf("%s: rogue's attempts not counted", c.cfg.Name)
		}
		if got := c.gossipKeys.GetKeys(); len(got) != 1 || !bytes.Equal(got[0], k2) {
			t.Errorf("%s: gossip keyring %x, want [K2]", c.cfg.Name, got)
		}
	}
	checkAllRecords(t, cs, n)
}
