package dht

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// MemNetwork is an in-memory network of ring members for tests and
// simulations. Calls are direct, synchronous handler invocations (with
// arguments and results deep-copied, as a wire would), so a 200-node ring
// runs deterministically in one goroutine. The network can break: kill a
// node, cut a link, partition the members into groups, or intercept every
// call with a hook.
type MemNetwork struct {
	mu       sync.RWMutex
	handlers map[string]Handler
	down     map[string]bool
	cut      map[[2]string]bool
	group    map[string]int
	hook     func(from, to, method string) error
	callHook func(ctx context.Context, from, to, method string) error
	calls    atomic.Int64
}

// NewMemNetwork returns an empty network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{
		handlers: make(map[string]Handler),
		down:     make(map[string]bool),
		cut:      make(map[[2]string]bool),
		group:    make(map[string]int),
	}
}

// Serve attaches the handler answering calls to addr (and revives addr).
func (m *MemNetwork) Serve(addr string, h Handler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handlers[addr] = h
	delete(m.down, addr)
}

// Transport returns the caller side for calls made from addr.
func (m *MemNetwork) Transport(from string) Transport { return &memTransport{net: m, from: from} }

// Kill makes addr unreachable (a crash: it neither answers nor is told).
func (m *MemNetwork) Kill(addr string) { m.set(func() { m.down[addr] = true }) }

// Revive makes a killed addr reachable again.
func (m *MemNetwork) Revive(addr string) { m.set(func() { delete(m.down, addr) }) }

// Cut breaks the link between a and b in both directions.
func (m *MemNetwork) Cut(a, b string) {
	m.set(func() { m.cut[[2]string{a, b}] = true; m.cut[[2]string{b, a}] = true })
}

// Partition splits the members into groups: calls between different
// groups fail. Addresses in no group can reach everyone.
func (m *MemNetwork) Partition(groups ...[]string) {
	m.set(func() {
		m.group = make(map[string]int)
		for i, g := range groups {
			for _, a := range g {
				m.group[a] = i + 1
			}
		}
	})
}

// Heal removes every cut link and partition (killed nodes stay dead).
func (m *MemNetwork) Heal() {
	m.set(func() { m.cut = make(map[[2]string]bool); m.group = make(map[string]int) })
}

// SetHook installs a function consulted before every call; a non-nil
// error fails the call as unreachable (drop). It may also block (delay).
func (m *MemNetwork) SetHook(h func(from, to, method string) error) { m.set(func() { m.hook = h }) }

// SetCallHook is SetHook with the call's context: a hook that waits for
// ctx to end models a silent peer (packets dropped, no reset), whose calls
// hang until their deadline. It runs after the SetHook hook.
func (m *MemNetwork) SetCallHook(h func(ctx context.Context, from, to, method string) error) {
	m.set(func() { m.callHook = h })
}

// Calls returns how many calls were attempted.
func (m *MemNetwork) Calls() int64 { return m.calls.Load() }

func (m *MemNetwork) set(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f()
}

// route returns the handler for a call from -> to, or an error wrapping
// ErrUnreachable.
func (m *MemNetwork) route(ctx context.Context, from, to, method string) (Handler, error) {
	m.calls.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, to, err)
	}
	m.mu.RLock()
	h, ok := m.handlers[to]
	blocked := !ok || m.down[to] || m.down[from] || m.cut[[2]string{from, to}]
	if g1, g2 := m.group[from], m.group[to]; g1 != 0 && g2 != 0 && g1 != g2 {
		blocked = true
	}
	hook, callHook := m.hook, m.callHook
	m.mu.RUnlock()
	if blocked {
		return nil, fmt.Errorf("%w: %s (%s from %s)", ErrUnreachable, to, method, from)
	}
	if hook != nil {
		if err := hook(from, to, method); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, to, err)
		}
	}
	if callHook != nil {
		if err := callHook(ctx, from, to, method); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, to, err)
		}
	}
	return h, nil
}

type memTransport struct {
	net  *MemNetwork
	from string
}

var _ Transport = (*memTransport)(nil)

func (t *memTransport) Ping(ctx context.Context, to Peer) error {
	h, err := t.net.route(ctx, t.from, to.Addr, "Ping")
	if err != nil {
		return err
	}
	p, err := h.HandlePing(ctx)
	if err == nil && p.ID != to.ID {
		return fmt.Errorf("%w: %s answered as %s", ErrUnreachable, to.Addr, p.Name)
	}
	return err
}

func (t *memTransport) GetNeighbors(ctx context.Context, to Peer) (Neighbors, error) {
	h, err := t.net.route(ctx, t.from, to.Addr, "GetNeighbors")
	if err != nil {
		return Neighbors{}, err
	}
	nb, err := h.HandleGetNeighbors(ctx)
	nb.Successors = clonePeers(nb.Successors)
	return nb, err
}

func (t *memTransport) Notify(ctx context.Context, to Peer, self Peer) error {
	h, err := t.net.route(ctx, t.from, to.Addr, "Notify")
	if err != nil {
		return err
	}
	return h.HandleNotify(ctx, self)
}

func (t *memTransport) FindNext(ctx context.Context, to Peer, id ID, exclude []ID) (Step, error) {
	h, err := t.net.route(ctx, t.from, to.Addr, "FindNext")
	if err != nil {
		return Step{}, err
	}
	s, err := h.HandleFindNext(ctx, id, append([]ID(nil), exclude...))
	s.Successors = clonePeers(s.Successors)
	return s, err
}

func (t *memTransport) Leave(ctx context.Context, to Peer, notice LeaveNotice) error {
	h, err := t.net.route(ctx, t.from, to.Addr, "Leave")
	if err != nil {
		return err
	}
	notice.Successors = clonePeers(notice.Successors)
	return h.HandleLeave(ctx, notice)
}

func (t *memTransport) Put(ctx context.Context, to Peer, req PutRequest) (PutResult, error) {
	h, err := t.net.route(ctx, t.from, to.Addr, "Put")
	if err != nil {
		return PutResult{}, err
	}
	req.Record = copyRecord(req.Record)
	return h.HandlePut(ctx, req)
}

func (t *memTransport) Get(ctx context.Context, to Peer, key string) (Record, bool, error) {
	h, err := t.net.route(ctx, t.from, to.Addr, "Get")
	if err != nil {
		return Record{}, false, err
	}
	r, ok, err := h.HandleGet(ctx, key)
	return copyRecord(r), ok, err
}

func (t *memTransport) Store(ctx context.Context, to Peer, recs []Record) error {
	h, err := t.net.route(ctx, t.from, to.Addr, "Store")
	if err != nil {
		return err
	}
	return h.HandleStore(ctx, cloneRecords(recs))
}

func (t *memTransport) Sync(ctx context.Context, to Peer, d Digest) (DigestReply, error) {
	h, err := t.net.route(ctx, t.from, to.Addr, "Sync")
	if err != nil {
		return DigestReply{}, err
	}
	d.Buckets = append([]uint64(nil), d.Buckets...)
	r, err := h.HandleSync(ctx, d)
	r.Records = cloneRecords(r.Records)
	r.Differ = append([]int(nil), r.Differ...)
	return r, err
}

func clonePeers(p []Peer) []Peer { return append([]Peer(nil), p...) }

func cloneRecords(in []Record) []Record {
	if in == nil {
		return nil
	}
	out := make([]Record, len(in))
	for i, r := range in {
		out[i] = copyRecord(r)
	}
	return out
}
