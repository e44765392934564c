package reps

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/dht"
)

// deleters maps each node that sent a deletion of label to its roles.
func (w *world) deleters(label string) map[string][]string {
	out := map[string][]string{}
	for _, m := range w.byName {
		for _, d := range m.deletions() {
			if key, role, ok := cutLast(d, "/"); ok && key == NodeKey(label) {
				out[m.name] = append(out[m.name], role)
			}
		}
	}
	return out
}

func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

// runUntil runs rounds until cond holds, failing after max rounds; it
// returns the number of rounds.
func (w *world) runUntil(max int, what string, cond func() bool) int {
	w.t.Helper()
	for r := 1; r <= max; r++ {
		w.round()
		if cond() {
			return r
		}
	}
	w.t.Fatalf("%s: not reached in %d rounds", what, max)
	return 0
}

// settleWatches runs a few rounds so every watcher has heard from its
// representative (and learned its role from the representative's own
// neighbour list).
func (w *world) settleWatches() {
	for range 4 {
		w.round()
	}
}

// Kill a representative: its predecessor, successor and backup each send
// the deletion under their own role, nobody else does, DNS drops it, and
// the node that now owns the slot registers itself.
func TestKillRepWatchersDelete(t *testing.T) {
	w := build(t, testConfig(), 12)
	w.settleWatches()
	reps := w.checkAgreement()
	victim := reps[0]
	pred, succ, backup := w.neighbours(victim)
	for _, m := range w.live() {
		m.clearResults()
	}
	w.kill(victim)
	rounds := w.runUntil(60, "three deletions", func() bool { return len(w.deleters(victim.label)) == 3 })
	got := w.deleters(victim.label)
	want := map[string][]string{pred.name: {RolePredecessor}, succ.name: {RoleSuccessor}, backup.name: {RoleBackup}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("deletions by %v, want %v", got, want)
	}
	// Detection time in simulated time: the last answer was at most one
	// ProbeInterval before the kill.
	if el := time.Duration(rounds) * w.cfg.RetryInterval; el > w.cfg.ProbeInterval+w.cfg.MinSilence+time.Duration(w.cfg.SuspectAfter)*w.cfg.RetryInterval {
		t.Fatalf("deletion took %v of simulated time", el)
	}
	w.converge()
	w.elect()
	after := w.checkAgreement()
	if slices.Contains(after, victim) || len(after) != w.cfg.K {
		t.Fatalf("reps after failover: %s", names(after))
	}
	w.checkDNS(after)
	// Nothing more is sent once things settled.
	for range 10 {
		w.round()
	}
	if got := w.deleters(victim.label); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("later deletions %v", got)
	}
}

// Kill a representative and its successor together: the predecessor and
// the backup (the only watchers left) still delete it.
func TestKillRepAndSuccessor(t *testing.T) {
	w := build(t, testConfig(), 12)
	w.settleWatches()
	reps := w.checkAgreement()
	victim := reps[1]
	pred, succ, backup := w.neighbours(victim)
	if slices.Contains(reps, succ) {
		t.Skip("successor is also a representative in this layout")
	}
	w.kill(victim)
	w.kill(succ)
	w.runUntil(80, "two deletions", func() bool { return len(w.deleters(victim.label)) == 2 })
	got := w.deleters(victim.label)
	want := map[string][]string{pred.name: {RolePredecessor}, backup.name: {RoleBackup}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("deletions by %v, want %v", got, want)
	}
	w.converge()
	w.elect()
	after := w.checkAgreement()
	w.checkDNS(after)
}

// Kill a run of three consecutive nodes starting with a representative:
// only its predecessor is left to delete it, and does.
func TestKillRepAndBothSuccessors(t *testing.T) {
	w := build(t, testConfig(), 12)
	w.settleWatches()
	victim := w.checkAgreement()[0]
	pred, succ, backup := w.neighbours(victim)
	for _, m := range []*member{victim, succ, backup} {
		w.kill(m)
	}
	w.runUntil(80, "predecessor's deletion", func() bool { return len(w.deleters(victim.label)) == 1 })
	if got := w.deleters(victim.label); fmt.Sprint(got) != fmt.Sprint(map[string][]string{pred.name: {RolePredecessor}}) {
		t.Fatalf("deletions by %v", got)
	}
	w.converge()
	w.elect()
	w.checkDNS(w.checkAgreement())
}

// flakyProber drops every other GetNeighbors call to each peer. Probes
// share the link with the election's one call per round, which may take a
// call that gets through; the probes then see two misses in a row
// (SuspectAfter-1 with the test config), never more.
type flakyProber struct {
	Prober
	mu sync.Mutex
	n  map[string]int
}

func (f *flakyProber) GetNeighbors(ctx context.Context, to dht.Peer) (dht.Neighbors, error) {
	f.mu.Lock()
	f.n[to.Addr]++
	drop := f.n[to.Addr]%2 != 0
	f.mu.Unlock()
	if drop {
		return dht.Neighbors{}, fmt.Errorf("%w: flaky link", dht.ErrUnreachable)
	}
	return f.Prober.GetNeighbors(ctx, to)
}

// A long quiet run over flaky links: half the watchers' probes fail, in
// runs of up to SuspectAfter-1, the ring itself loses a share of its Notify calls (so it
// removes and re-adds neighbours and reports them failed), and still no
// live representative is ever deleted or withdrawn.
func TestQuietRunNoFalseRemovals(t *testing.T) {
	cfg := testConfig()
	if cfg.SuspectAfter != 3 {
		t.Fatalf("the link model assumes SuspectAfter 3, got %d", cfg.SuspectAfter)
	}
	w := newWorld(t, cfg)
	w.wrapProbe = func(_ string, p Prober) Prober {
		return &flakyProber{Prober: p, n: map[string]int{}}
	}
	w.addN(12)
	w.converge()
	w.elect()
	w.settleWatches()
	reps := w.checkAgreement()
	for _, m := range w.live() {
		m.clearResults()
	}
	var failed int
	rng := mrand.New(mrand.NewSource(3))
	var mu sync.Mutex
	w.net.SetHook(func(from, to, method string) error {
		mu.Lock()
		defer mu.Unlock()
		if method == "Notify" && rng.Intn(10) == 0 {
			failed++
			return errors.New("flaky")
		}
		return nil
	})
	probes, maxMisses := 0, 0
	for r := range 400 {
		w.clock.advance(w.cfg.RetryInterval)
		for _, m := range w.live() {
			m.node.ProbeNeighbors(w.ctx, nil)
			_ = m.node.CheckPredecessor(w.ctx)
			_ = m.node.Stabilize(w.ctx)
		}
		for _, m := range w.live() {
			st := m.mgr.Probe(w.ctx)
			probes += st.Probed
			if st.Deleted > 0 {
				t.Fatalf("round %d: %s deleted a live representative: %+v", r, m.name, m.mgr.Status().Watching)
			}
			for _, ws := range m.mgr.Status().Watching {
				maxMisses = max(maxMisses, ws.Misses)
			}
		}
		if r%10 == 0 {
			for _, m := range w.live() {
				_ = m.mgr.Elect(w.ctx) // may fail on a dropped call; keeps the set
			}
		}
		w.step()
	}
	w.net.SetHook(nil)
	if failed == 0 || probes < 1000 || maxMisses != cfg.SuspectAfter-1 {
		t.Fatalf("the run did not exercise much: %d dropped notifies, %d probes, at most %d misses in a row", failed, probes, maxMisses)
	}
	for _, m := range w.live() {
		if d := m.deletions(); len(d) > 0 {
			t.Fatalf("%s sent deletions %v", m.name, d)
		}
	}
	w.converge()
	w.elect()
	if got := w.checkAgreement(); names(got) != names(reps) {
		t.Fatalf("reps changed from %s to %s", names(reps), names(got))
	}
	w.checkDNS(reps)
	t.Logf("%d probes, %d dropped notifies, no deletion", probes, failed)
}

// The ring's failure report alone never deletes a representative that
// answers this node's own probes.
func TestRingEventAloneDoesNotDelete(t *testing.T) {
	w := build(t, testConfig(), 8)
	w.settleWatches()
	victim := w.checkAgreement()[0]
	pred, succ, _ := w.neighbours(victim)
	for _, m := range []*member{pred, succ} {
		for range 5 {
			m.mgr.OnRingEvent(dht.Event{Kind: dht.EventNeighborFailed, Peer: victim.node.Self(), WasPredecessor: m == succ, SuccessorIndex: -1})
			w.round()
		}
	}
	for _, m := range w.live() {
		if d := m.deletions(); slices.Contains(d, NodeKey(victim.label)+"/"+RolePredecessor) || slices.Contains(d, NodeKey(victim.label)+"/"+RoleSuccessor) {
			t.Fatalf("%s deleted a live representative after a ring event: %v", m.name, d)
		}
	}
	w.checkDNS(w.checkAgreement())
}

// The ring reporting a representative failed makes its neighbour watch
// it at once, even if the election had not set up the watch yet; the
// deletion still waits for the node's own misses.
func TestRingEventStartsWatch(t *testing.T) {
	w := build(t, testConfig(), 8)
	victim := w.checkAgreement()[0]
	_, succ, _ := w.neighbours(victim)
	// Forget the watch the election set up, as if the event came first.
	succ.mgr.mu.Lock()
	delete(succ.mgr.watches, victim.node.Self().ID)
	succ.mgr.mu.Unlock()
	w.kill(victim)
	succ.mgr.OnRingEvent(dht.Event{Kind: dht.EventNeighborFailed, Peer: victim.node.Self(), WasPredecessor: true, SuccessorIndex: -1})
	ws := succ.mgr.Status().Watching
	if len(ws) == 0 || ws[0].Peer.ID != victim.node.Self().ID || !slices.Equal(ws[0].Roles, []string{RoleSuccessor}) {
		t.Fatalf("watching %+v", ws)
	}
	if next := succ.mgr.NextProbe(); next.After(w.clock.Now()) {
		t.Fatalf("next probe at %v, want now", next)
	}
	st := succ.mgr.Probe(w.ctx)
	if st.Failed != 1 || st.Deleted != 0 {
		t.Fatalf("first probe %+v: want one miss, no deletion", st)
	}
	w.runUntil(30, "successor's deletion", func() bool { return len(w.deleters(victim.label)[succ.name]) > 0 })
}

// A watcher that deleted a representative it thought dead cancels what is
// still pending when it answers again; the representative's own
// reconciliation puts its records back.
func TestFalseSuspicionHeals(t *testing.T) {
	w := build(t, testConfig(), 8)
	w.settleWatches()
	reps := w.checkAgreement()
	victim := reps[0]
	pred, _, _ := w.neighbours(victim)
	w.dns.down.Store(true) // deletions stay pending
	w.net.Kill(victim.node.Self().Addr)
	w.runUntil(40, "predecessor's deletion submitted", func() bool {
		for _, ws := range pred.mgr.Status().Watching {
			if ws.Peer.ID == victim.node.Self().ID && ws.Deleted {
				return true
			}
		}
		return false
	})
	w.net.Revive(victim.node.Self().Addr)
	// Ring and watch see it again (a deleted representative is probed
	// every ElectInterval); the pending deletion is cancelled.
	w.runUntil(int(w.cfg.ElectInterval/w.cfg.RetryInterval)+2, "cancel", func() bool {
		_, pending := pred.rep.Status(NodeKey(victim.label))
		return !pending
	})
	w.dns.down.Store(false)
	// Other watchers may have applied theirs: the victim's reconciliation
	// republishes.
	for range 4 {
		w.round()
	}
	w.converge()
	w.elect()
	now := w.checkAgreement()
	for _, m := range now {
		for range 2 {
			if _, err := m.mgr.Reconcile(w.ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.step()
	w.checkDNS(now)
}

func TestRolesNames(t *testing.T) {
	r := rolePredecessor | roleBackup
	if got := r.names(); !slices.Equal(got, []string{RolePredecessor, RoleBackup}) || r.primary() != RolePredecessor {
		t.Fatalf("%v %s", got, r.primary())
	}
	if (roleBackup).primary() != RoleBackup || roles(0).primary() != "" {
		t.Fatal("primary")
	}
}

// A watcher that is itself cut off from everyone sees its representative
// stop answering, but withholds the deletion: it cannot tell its own
// failure from the representative's.
func TestIsolatedWatcherWithholds(t *testing.T) {
	w := build(t, testConfig(), 8)
	w.settleWatches()
	rep := w.checkAgreement()[0]
	pred, _, _ := w.neighbours(rep)
	var rest []string
	for _, m := range w.live() {
		if m != pred {
			rest = append(rest, m.node.Self().Addr)
		}
	}
	w.net.Partition([]string{pred.node.Self().Addr}, rest)
	withheld := 0
	for range 40 {
		w.clock.advance(w.cfg.RetryInterval)
		st := pred.mgr.Probe(w.ctx)
		if st.Deleted > 0 {
			t.Fatal("an isolated watcher deleted a live representative")
		}
		withheld += st.Withheld
	}
	if withheld == 0 {
		t.Fatal("the isolated watcher never reached the deletion threshold")
	}
	w.net.Heal()
	pred.rep.Step(w.ctx, w.clock.Now())
	if d := pred.deletions(); len(d) > 0 {
		t.Fatalf("deletions %v", d)
	}
	// Back on the network, it hears from the representative again.
	w.clock.advance(w.cfg.ProbeInterval)
	if st := pred.mgr.Probe(w.ctx); st.Failed != 0 {
		t.Fatalf("after healing: %+v", st)
	}
}
