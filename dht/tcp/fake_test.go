package tcp

import (
	"bytes"
	"context"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dsn-ims/dsn/dht"
)

// Fixtures: values with every field set, including the edge cases of the
// encoding (zero and maximal IDs, negative varints, empty strings).
var (
	keyA = bytes.Repeat([]byte{0xA5}, 32)
	keyB = bytes.Repeat([]byte{0x5A}, 32)

	peerA = dht.Peer{ID: 0xdeadbeefcafebabe, Name: "node-a", Addr: "127.0.0.1:7001", Meta: "sip:10.0.0.1:5060"}
	peerB = dht.Peer{ID: math.MaxUint64, Name: "node-b", Addr: "[::1]:7002", Meta: ""}
	peerC = dht.Peer{ID: 1, Name: "ñødé-c", Addr: "127.0.0.3:7003", Meta: "m"}

	recA = dht.Record{Key: "sip:alice@dsn.example.com", Value: []byte("<sip:alice@10.0.0.7>;expires=3600"), Version: 42, Expires: 1_750_000_000_000_000_000, Deleted: false}
	recB = dht.Record{Key: "sip:bob@dsn.example.com", Value: nil, Version: math.MaxUint64, Expires: -1, Deleted: true}

	fixNeighbors = dht.Neighbors{Predecessor: peerA, Successors: []dht.Peer{peerB, peerC}}
	fixStep      = dht.Step{Done: true, Next: peerB, Successors: []dht.Peer{peerC, peerA}}
	fixNotice    = dht.LeaveNotice{Leaving: peerA, Predecessor: peerB, Successors: []dht.Peer{peerC}}
	fixPutReq    = dht.PutRequest{Record: recA, IfVersion: 41, Conditional: true}
	fixPutResult = dht.PutResult{Version: 43, Copies: 3}
	fixDigest    = dht.Digest{Lo: 7, Hi: math.MaxUint64, Buckets: []uint64{0, 1, math.MaxUint64, 0x0123456789abcdef}}
	fixReply     = dht.DigestReply{Differ: []int{0, 2, 1 << 40, -1}, Records: []dht.Record{recA, recB}, Partial: true}
	fixExclude   = []dht.ID{1, 2, math.MaxUint64}
)

// fakeHandler answers every RPC with the fixtures and records the
// arguments it got. hook, when set, runs first in every method and its
// error is returned; err is returned otherwise. Both are set before Serve.
type fakeHandler struct {
	self dht.Peer
	err  error
	hook func(ctx context.Context, method string, arg any) error

	mu    sync.Mutex
	args  map[string]any
	calls int
}

var _ dht.Handler = (*fakeHandler)(nil)

func newFakeHandler(self dht.Peer) *fakeHandler {
	return &fakeHandler{self: self, args: make(map[string]any)}
}

func (h *fakeHandler) enter(ctx context.Context, method string, arg any) error {
	h.mu.Lock()
	h.args[method] = arg
	h.calls++
	h.mu.Unlock()
	if h.hook != nil {
		if err := h.hook(ctx, method, arg); err != nil {
			return err
		}
	}
	return h.err
}

func (h *fakeHandler) arg(method string) any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.args[method]
}

func (h *fakeHandler) callCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

func (h *fakeHandler) HandlePing(ctx context.Context) (dht.Peer, error) {
	return h.self, h.enter(ctx, "ping", nil)
}

func (h *fakeHandler) HandleGetNeighbors(ctx context.Context) (dht.Neighbors, error) {
	return fixNeighbors, h.enter(ctx, "get-neighbors", nil)
}

func (h *fakeHandler) HandleNotify(ctx context.Context, candidate dht.Peer) error {
	return h.enter(ctx, "notify", candidate)
}

type findNextArgs struct {
	id      dht.ID
	exclude []dht.ID
}

func (h *fakeHandler) HandleFindNext(ctx context.Context, id dht.ID, exclude []dht.ID) (dht.Step, error) {
	return fixStep, h.enter(ctx, "find-next", findNextArgs{id, exclude})
}

func (h *fakeHandler) HandleLeave(ctx context.Context, notice dht.LeaveNotice) error {
	return h.enter(ctx, "leave", notice)
}

func (h *fakeHandler) HandlePut(ctx context.Context, req dht.PutRequest) (dht.PutResult, error) {
	return fixPutResult, h.enter(ctx, "put", req)
}

func (h *fakeHandler) HandleGet(ctx context.Context, key string) (dht.Record, bool, error) {
	return recA, true, h.enter(ctx, "get", key)
}

func (h *fakeHandler) HandleStore(ctx context.Context, recs []dht.Record) error {
	return h.enter(ctx, "store", recs)
}

func (h *fakeHandler) HandleSync(ctx context.Context, d dht.Digest) (dht.DigestReply, error) {
	return fixReply, h.enter(ctx, "sync", d)
}

// newTransport starts a transport with one cluster key on 127.0.0.1:0
// that is closed when the test ends. mod, when non-nil, adjusts
// LocalConfig first.
func newTransport(t testing.TB, key []byte, h dht.Handler, mod func(*Config)) *Transport {
	t.Helper()
	return newTransportKeys(t, [][]byte{key}, h, mod)
}

// newTransportKeys is newTransport with a keyring.
func newTransportKeys(t testing.TB, keys [][]byte, h dht.Handler, mod func(*Config)) *Transport {
	t.Helper()
	cfg := LocalConfig()
	if mod != nil {
		mod(&cfg)
	}
	tr, err := New(cfg, keys, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	if h != nil {
		tr.Serve(h)
	}
	return tr
}

func testLogger(t testing.TB) *zap.Logger {
	if _, ok := t.(*testing.B); ok {
		return zap.NewNop()
	}
	level := zap.ErrorLevel
	if os.Getenv("DHT_TCP_DEBUG") != "" {
		level = zap.DebugLevel
	}
	return zaptest.NewLogger(t, zaptest.Level(level))
}

// peerAt is the dht.Peer for a transport, with the ID left unknown.
func peerAt(tr *Transport) dht.Peer { return dht.Peer{Name: "peer", Addr: tr.Addr()} }

// waitFor polls cond until it holds or a generous deadline passes; for
// counters that another goroutine updates after the event the test saw.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
