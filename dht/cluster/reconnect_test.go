package cluster

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dsn-ims/dsn/dht"
)

// A partition that outlasts memberlist's memory of dead members: each side
// declares the other dead and, once GossipToTheDeadTime has passed (30 s on
// a LAN; a nanosecond here), never gossips to it or probes it again, so
// when the network heals nothing would bring the sides together: two
// member lists, two rings, for good. The reconnect loop joins a member of
// the other side again and both merge. The cut is made with the cluster
// keys: one side switches to a key the other lacks, so neither its gossip
// nor its DHT connections get through; switching back heals it.
func TestReconnectAfterLongPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets; skipped with -short")
	}
	var cs []*Cluster
	for i := 0; i < 4; i++ {
		cfg := LocalConfig(fmt.Sprintf("node-%d", i))
		cfg.TCP.BindAddr = fmt.Sprintf("127.0.0.%d:0", 1+i%3)
		cfg.GossipToTheDeadTime = time.Nanosecond
		if i > 0 {
			cfg.Join = []string{cs[0].Transport().Addr()}
		}
		c, err := Start(cfg, testKey, zaptest.NewLogger(t).Named(cfg.Name), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		cs = append(cs, c)
	}
	members := func(group []*Cluster, want int) func() error {
		return func() error {
			for _, c := range group {
				if got := len(c.Members()); got != want {
					return fmt.Errorf("%s sees %d gossip members, want %d", c.cfg.Name, got, want)
				}
			}
			return nil
		}
	}
	waitFor(t, 10*time.Second, "ring of 4", func() error { return ringExact(cs) })
	waitFor(t, 10*time.Second, "every member gossiped", members(cs, 4))

	other := bytes.Repeat([]byte{0x5a}, 32)
	a, b := cs[:2], cs[2:]
	for _, c := range b {
		if err := c.SetKeys([][]byte{other}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "side A alone", func() error {
		if err := members(a, 2)(); err != nil {
			return err
		}
		return ringExact(a)
	})
	waitFor(t, 30*time.Second, "side B alone", func() error {
		if err := members(b, 2)(); err != nil {
			return err
		}
		return ringExact(b)
	})
	// Written on side B while cut off: side A must read it after the heal.
	ctx := context.Background()
	if _, err := b[0].Node().Put(ctx, "sip:cut@dsn.test", []byte("b"), dht.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, c := range b {
		if err := c.SetKeys([][]byte{testKey}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "one member list again", members(cs, 4))
	waitFor(t, 20*time.Second, "one ring again", func() error { return ringExact(cs) })
	waitFor(t, 20*time.Second, "the cut-off write everywhere", func() error {
		rec, err := a[0].Node().Get(ctx, "sip:cut@dsn.test")
		if err != nil || string(rec.Value) != "b" {
			return fmt.Errorf("get from side A: %q %v", rec.Value, err)
		}
		if n := copies(cs, "sip:cut@dsn.test"); n != 3 {
			return fmt.Errorf("%d copies", n)
		}
		return nil
	})
}

// reconnectOnce tries only members still within ReconnectTimeout, picks
// among them with the given randomness, and forgets the expired and the
// members that came back.
func TestReconnectOnceForgetsExpired(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets; skipped with -short")
	}
	cs := startN(t, 1)
	c := cs[0]
	if name, _ := c.reconnectOnce(time.Now(), rand.New(rand.NewSource(1))); name != "" {
		t.Fatalf("tried %q with nothing failed", name)
	}
	c.noteFailed("gone", "127.0.0.1:1") // nothing listens on port 1
	c.failedMu.Lock()
	since := c.failed["gone"].since
	c.failedMu.Unlock()
	if name, ok := c.reconnectOnce(since.Add(c.cfg.ReconnectTimeout), rand.New(rand.NewSource(1))); name != "gone" || ok {
		t.Fatalf("within the timeout: tried %q ok=%v, want gone, false", name, ok)
	}
	if name, _ := c.reconnectOnce(since.Add(c.cfg.ReconnectTimeout+time.Nanosecond), rand.New(rand.NewSource(1))); name != "" {
		t.Fatalf("after the timeout: tried %q, want nothing", name)
	}
	c.failedMu.Lock()
	n := len(c.failed)
	c.failedMu.Unlock()
	if n != 0 {
		t.Fatalf("%d failed members still remembered after the timeout", n)
	}
	c.noteFailed("back", "127.0.0.1:1")
	c.forgetFailed("back")
	if name, _ := c.reconnectOnce(time.Now(), rand.New(rand.NewSource(1))); name != "" {
		t.Fatalf("tried %q after it came back", name)
	}
}
