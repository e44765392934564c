package tcp

import (
	"bytes"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/dsn-ims/dsn/dht"
)

// startMemberlist runs memberlist on tr's port; it is shut down before
// the transport is closed (cleanups run last-registered first).
func startMemberlist(t *testing.T, name string, tr *Transport, secret []byte) (*memberlist.Memberlist, <-chan memberlist.NodeEvent) {
	t.Helper()
	cfg := memberlist.DefaultLocalConfig()
	cfg.Name = name
	cfg.SecretKey = secret
	cfg.Transport = tr.Memberlist()
	cfg.LogOutput = io.Discard
	if os.Getenv("DHT_TCP_DEBUG") != "" {
		cfg.LogOutput = testWriter{t}
	}
	events := make(chan memberlist.NodeEvent, 64)
	cfg.Events = &memberlist.ChannelEventDelegate{Ch: events}
	ml, err := memberlist.Create(cfg)
	if err != nil {
		t.Fatalf("memberlist %s: %v", name, err)
	}
	t.Cleanup(func() { _ = ml.Shutdown() })
	return ml, events
}

// awaitJoin waits for the event that node joined.
func awaitJoin(t *testing.T, events <-chan memberlist.NodeEvent, node string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Event == memberlist.NodeJoin && ev.Node.Name == node {
				return
			}
		case <-timeout:
			t.Fatalf("no join event for %s", node)
		}
	}
}

// Two memberlist instances gossip through the shared port (UDP packets and
// 'M' streams, encrypted by memberlist itself) while DHT RPCs use the same
// port; detaching memberlist leaves the DHT working.
func TestMemberlistSharesPort(t *testing.T) {
	a := newTransport(t, keyA, newFakeHandler(peerA), nil)
	b := newTransport(t, keyA, newFakeHandler(peerB), nil)
	secret := bytes.Repeat([]byte{7}, 32)
	mlA, eventsA := startMemberlist(t, "a", a, secret)
	mlB, eventsB := startMemberlist(t, "b", b, secret)

	if n, err := mlB.Join([]string{a.Addr()}); err != nil || n != 1 {
		t.Fatalf("join through %s: %d, %v", a.Addr(), n, err)
	}
	awaitJoin(t, eventsA, "b")
	awaitJoin(t, eventsB, "a")
	for _, ml := range []*memberlist.Memberlist{mlA, mlB} {
		members := ml.Members()
		if len(members) != 2 {
			t.Fatalf("%s sees %d members, want 2", ml.LocalNode().Name, len(members))
		}
		for _, m := range members {
			if m.State != memberlist.StateAlive {
				t.Errorf("%s sees %s in state %v", ml.LocalNode().Name, m.Name, m.State)
			}
		}
	}
	if got := mlB.LocalNode().Address(); got != b.Addr() {
		t.Errorf("memberlist advertises %s, transport %s", got, b.Addr())
	}

	ctx := ctxTimeout(t, 5*time.Second)
	if err := b.Ping(ctx, dht.Peer{ID: peerA.ID, Addr: a.Addr()}); err != nil {
		t.Fatalf("DHT call b->a on the shared port: %v", err)
	}
	if err := a.Ping(ctx, dht.Peer{ID: peerB.ID, Addr: b.Addr()}); err != nil {
		t.Fatalf("DHT call a->b on the shared port: %v", err)
	}
	// Join pushed and pulled state over an 'M' stream; a ping uses UDP.
	udpB, err := net.ResolveUDPAddr("udp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// memberlist.Ping waits only ProbeTimeout (200ms in the local config):
	// allow a few tries on a loaded machine.
	for try := 1; ; try++ {
		_, err := mlA.Ping("b", udpB)
		if err == nil {
			break
		}
		if try == 5 {
			t.Fatalf("memberlist UDP ping, %d tries: %v", try, err)
		}
	}

	if err := mlA.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctx, dht.Peer{ID: peerA.ID, Addr: a.Addr()}); err != nil {
		t.Fatalf("DHT call after memberlist shutdown: %v", err)
	}
	if s := a.Stats(); s.BadPrefix != 0 {
		t.Errorf("stats %+v: memberlist traffic misrouted", s)
	}
}

// testWriter sends memberlist's log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
