package tcp

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dsn-ims/dsn/dht"
)

// observed starts a transport whose log lines are recorded.
func observed(t *testing.T, keys [][]byte, h dht.Handler) (*Transport, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	tr, err := New(LocalConfig(), keys, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	if h != nil {
		tr.Serve(h)
	}
	return tr, logs
}

// keyIndexLogged returns the key_index of the first "peer authenticated"
// line, or -1; and fails if any line carries a key.
func keyIndexLogged(t *testing.T, logs *observer.ObservedLogs, keys ...[]byte) int {
	t.Helper()
	idx := -1
	for _, e := range logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		for _, k := range keys {
			for _, enc := range []string{hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), string(k)} {
				if strings.Contains(line, enc) {
					t.Fatalf("log line carries a cluster key: %s", line)
				}
			}
		}
		if i, ok := e.ContextMap()["key_index"].(int64); ok && idx < 0 && strings.HasPrefix(e.Message, "peer authenticated") {
			if e.ContextMap()["key_id"] == nil {
				t.Fatalf("no key_id in %s", line)
			}
			idx = int(i)
		}
	}
	return idx
}

// Nodes at different steps of a rotation talk when they share a key; each
// side logs which of its keys the peer used (never the key) and counts
// the ones that were not its primary.
func TestRotationPairsOverTCP(t *testing.T) {
	for _, c := range []struct {
		name           string
		cli, srv       [][]byte
		cliIdx, srvIdx int // key_index each side logs; -1: refused
	}{
		{"same keys", [][]byte{key1, key2}, [][]byte{key1, key2}, 0, 0},
		{"server ahead", [][]byte{key1, key2}, [][]byte{key2, key1}, 0, 1},
		{"client ahead", [][]byte{key2, key1}, [][]byte{key1, key2}, 0, 1},
		{"client on old key only", [][]byte{key1}, [][]byte{key2, key1}, 0, 1},
		{"client new only, server old primary", [][]byte{key2}, [][]byte{key1, key2}, 0, 1},
		{"no shared key", [][]byte{key3}, [][]byte{key2, key1}, -1, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, srvLogs := observed(t, c.srv, newFakeHandler(peerA))
			cli, cliLogs := observed(t, c.cli, nil)
			err := cli.Ping(ctxTimeout(t, 5*time.Second), peerAt(srv))
			if c.cliIdx < 0 {
				if !errors.Is(err, dht.ErrUnauthenticated) {
					t.Fatalf("got %v, want ErrUnauthenticated", err)
				}
				waitFor(t, "server to count the refusal", func() bool { return srv.Stats().HandshakesRejected == 1 })
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "server to log the key", func() bool { return keyIndexLogged(t, srvLogs, key1, key2, key3) >= 0 })
			if got := keyIndexLogged(t, cliLogs, key1, key2, key3); got != c.cliIdx {
				t.Errorf("client logged key_index %d, want %d", got, c.cliIdx)
			}
			if got := keyIndexLogged(t, srvLogs, key1, key2, key3); got != c.srvIdx {
				t.Errorf("server logged key_index %d, want %d", got, c.srvIdx)
			}
			for side, st := range map[string]struct {
				tr  *Transport
				idx int
			}{"client": {cli, c.cliIdx}, "server": {srv, c.srvIdx}} {
				if got, want := st.tr.Stats().SecondaryKeyHandshakes, min(uint64(st.idx), 1); got != want {
					t.Errorf("%s counted %d secondary-key handshakes, want %d", side, got, want)
				}
			}
		})
	}
}

// outgoing returns the number of pooled connections from tr to addr.
func outgoing(tr *Transport, addr string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if pc := tr.peers[addr]; pc != nil {
		return len(pc.conns)
	}
	return 0
}

// SetKeys retires outgoing connections that do not use the new primary
// without failing the calls in flight on them; the next call dials with
// the new primary, and removing the old key afterwards closes nothing.
func TestSetKeysDrainsOutgoing(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := newFakeHandler(peerA)
	h.hook = func(ctx context.Context, method string, arg any) error {
		if method == "get" && arg == "slow" {
			close(entered)
			<-release
		}
		return nil
	}
	srv := newTransportKeys(t, [][]byte{key1, key2}, h, nil) // rotation step 1
	cli := newTransportKeys(t, [][]byte{key1, key2}, nil, nil)
	to := peerAt(srv)

	slow := make(chan error, 1)
	go func() {
		_, _, err := cli.Get(ctxTimeout(t, 10*time.Second), to, "slow")
		slow <- err
	}()
	<-entered

	// Step 2 on the client: the K1 connection drains, calls go to a new one.
	if err := cli.SetKeys([][]byte{key2, key1}); err != nil {
		t.Fatal(err)
	}
	if ids := cli.KeyIDs(); ids[0] != KeyID(key2) || ids[1] != KeyID(key1) {
		t.Fatalf("KeyIDs %v after SetKeys", ids)
	}
	for i := range 5 {
		if _, _, err := cli.Get(ctxTimeout(t, 5*time.Second), to, "fast"); err != nil {
			t.Fatalf("call %d after SetKeys: %v", i, err)
		}
	}
	if d := cli.Stats().Dials; d != 2 {
		t.Fatalf("%d dials, want 2 (one before, one after the change)", d)
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("call in flight across SetKeys failed: %v", err)
	}
	waitFor(t, "the drained connection to close", func() bool { return outgoing(cli, to.Addr) == 1 })
	if got := srv.Stats().SecondaryKeyHandshakes; got != 1 {
		t.Fatalf("server counted %d secondary-key handshakes, want 1 (the K2 one)", got)
	}

	// Step 2 on the server, then step 3 everywhere: nothing uses K1 any
	// more, so nothing breaks and nobody redials.
	for i, step := range []struct {
		tr   *Transport
		keys [][]byte
	}{{srv, [][]byte{key2, key1}}, {cli, [][]byte{key2}}, {srv, [][]byte{key2}}} {
		if err := step.tr.SetKeys(step.keys); err != nil {
			t.Fatal(err)
		}
		if _, _, err := cli.Get(ctxTimeout(t, 5*time.Second), to, "fast"); err != nil {
			t.Fatalf("call after change %d: %v", i, err)
		}
	}
	if d := cli.Stats().Dials; d != 2 {
		t.Fatalf("%d dials, want still 2", d)
	}
}

// Removing a key closes the incoming connections it authenticated: a
// peer holding only that key is cut off at once.
func TestSetKeysClosesRemovedInbound(t *testing.T) {
	srv := newTransportKeys(t, [][]byte{key1, key2}, newFakeHandler(peerA), nil)
	old := newTransportKeys(t, [][]byte{key2}, nil, nil)
	if err := old.Ping(ctxTimeout(t, 5*time.Second), peerAt(srv)); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetKeys([][]byte{key1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the client to see its connection closed", func() bool { return outgoing(old, srv.Addr()) == 0 })
	err := old.Ping(ctxTimeout(t, 5*time.Second), peerAt(srv))
	if !errors.Is(err, dht.ErrUnauthenticated) {
		t.Fatalf("peer with a removed key: got %v, want ErrUnauthenticated", err)
	}
}

// A bad key list is refused and changes nothing.
func TestSetKeysValidates(t *testing.T) {
	tr := newTransportKeys(t, [][]byte{key1}, nil, nil)
	for _, keys := range [][][]byte{nil, {key1, key1}, {[]byte("short")}} {
		if err := tr.SetKeys(keys); err == nil {
			t.Errorf("SetKeys(%d keys) accepted a bad list", len(keys))
		}
	}
	if ids := tr.KeyIDs(); len(ids) != 1 || ids[0] != KeyID(key1) {
		t.Fatalf("keys changed to %v", ids)
	}
}
