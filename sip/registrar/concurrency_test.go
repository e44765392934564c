package registrar

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/zap/zaptest"
)

// raceStore makes concurrent REGISTERs collide for real and adds forced
// conflicts: no Put runs before `round` Gets have been served (so the
// first round of writers all read the same version and all but one lose),
// and every `every`-th Put fails with ErrConflict without writing, as if a
// node nobody sees had written in between.
type raceStore struct {
	BindingStore
	round int
	every int64

	mu    sync.Mutex
	gets  int
	ready chan struct{}

	puts, forced, real atomic.Int64
}

func newRaceStore(inner BindingStore, round int, every int64) *raceStore {
	return &raceStore{BindingStore: inner, round: round, every: every, ready: make(chan struct{})}
}

func (s *raceStore) Get(ctx context.Context, aor string) (BindingSet, uint64, error) {
	set, v, err := s.BindingStore.Get(ctx, aor)
	s.mu.Lock()
	s.gets++
	if s.gets == s.round {
		close(s.ready)
	}
	s.mu.Unlock()
	return set, v, err
}

func (s *raceStore) Put(ctx context.Context, aor string, set BindingSet, ifVersion uint64) error {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.puts.Add(1)%s.every == 0 {
		s.forced.Add(1)
		return fmt.Errorf("test: forced: %w", ErrConflict)
	}
	err := s.BindingStore.Put(ctx, aor, set, ifVersion)
	if errors.Is(err, ErrConflict) {
		s.real.Add(1)
	}
	return err
}

// TestConcurrentRegistersNoBindingLost: UAs with different Call-IDs
// register one AOR at the same time through two registrars (two nodes)
// sharing a store; every one gets 200 and every binding survives.
func TestConcurrentRegistersNoBindingLost(t *testing.T) {
	const uas = 16
	clock := newFakeClock()
	mem := NewMemStore(clock.Now)
	store := newRaceStore(mem, uas, 5)
	cfg := testConfig()
	cfg.MaxContactsPerAOR = uas
	cfg.MaxConflictRetries = 2 * uas
	var nodes [2]*Registrar
	for i := range nodes {
		r, err := New(cfg, store, clock.Now, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = r
	}

	reqs := make([]msg, uas)
	for i := range reqs {
		reqs[i] = msg{callID: fmt.Sprintf("ua-%d", i), contacts: []string{fmt.Sprintf("<sip:alice@192.168.1.%d>", 100+i)}}
	}
	start := make(chan struct{})
	codes := make([]int, uas)
	var wg sync.WaitGroup
	for i := range reqs {
		req := reqs[i].request(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i] = nodes[i%2].Handle(context.Background(), req, phoneSrc).StatusCode
		}()
	}
	close(start)
	wg.Wait()

	for i, c := range codes {
		if c != 200 {
			t.Errorf("UA %d got %d", i, c)
		}
	}
	bs, err := nodes[0].Lookup(context.Background(), "sip:alice@dsn.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != uas {
		t.Fatalf("%d bindings survived, want %d", len(bs), uas)
	}
	seen := map[string]bool{}
	for _, b := range bs {
		seen[b.CallID] = true
	}
	if len(seen) != uas {
		t.Fatalf("Call-IDs stored: %v", seen)
	}
	// The first round alone gives uas-1 failed writes, real or forced.
	if store.real.Load()+store.forced.Load() < uas-1 || store.real.Load() == 0 || store.forced.Load() == 0 {
		t.Fatalf("test did not exercise conflicts: %d real, %d forced", store.real.Load(), store.forced.Load())
	}
	t.Logf("%d puts: %d real conflicts, %d forced", store.puts.Load(), store.real.Load(), store.forced.Load())
}
