package reps

import (
	"context"
	mrand "math/rand"
	"sync"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/dht"
)

// event is one metrics hook call.
type event struct {
	node, kind, role string
	isRep            bool
}

// The Run drivers alone (real timers, FastConfig, the ring's own
// dht.Driver): representatives register, a killed one is deleted by its
// three watchers and replaced, and Run returns when ctx ends. The test
// waits on the metrics hooks and on Flush, never on sleeps.
func TestRunDrivesFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real timers for about a second")
	}
	events := make(chan event, 1000)
	w := newWorld(t, testConfig())
	w.realTime, w.selfRun = true, true
	w.hooks = func(name string) Hooks {
		return Hooks{
			RepStatus:      func(b bool) { events <- event{node: name, kind: "rep", isRep: b} },
			DeletionSent:   func(r string) { events <- event{node: name, kind: "delete", role: r} },
			NeighborFailed: func(r string) { events <- event{node: name, kind: "failed", role: r} },
		}
	}
	w.addN(10)
	w.converge()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	runDone := make(chan error, 100)
	for i, m := range w.live() {
		// A killed member's loops stop with it, as its process would.
		mctx, stop := context.WithCancel(ctx)
		m.stop = stop
		drv := dht.NewDriver(m.node, mrand.New(mrand.NewSource(int64(i))), nil, w.liveMembers)
		wg.Go(func() { drv.Run(mctx) })
		wg.Go(func() { _ = m.rep.Run(mctx) })
		wg.Go(func() { runDone <- m.mgr.Run(mctx) })
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	deadline := time.After(5 * time.Second) // failure bound, not a wait
	var seen []event
	next := func(what string) event {
		t.Helper()
		select {
		case ev := <-events:
			seen = append(seen, ev)
			return ev
		case <-deadline:
			for _, m := range w.byName {
				t.Logf("%s dead=%v reps=%s watching=%+v", m.name, m.dead, peerNames(m.mgr.Reps()), m.mgr.Status().Watching)
			}
			t.Fatalf("timed out waiting for %s; events %+v", what, seen)
		}
		return event{}
	}
	reps := w.truthReps()
	up := map[string]bool{}
	for len(up) < len(reps) {
		if ev := next("representatives"); ev.kind == "rep" {
			up[ev.node] = ev.isRep
			if !ev.isRep {
				delete(up, ev.node)
			}
		}
	}
	for _, m := range reps {
		if !up[m.name] {
			t.Fatalf("%s did not become a representative; up: %v", m.name, up)
		}
		if err := m.rep.Flush(ctx, selfKey); err != nil {
			t.Fatal(err)
		}
	}

	victim := reps[0]
	pred, succ, backup := w.neighbours(victim)
	w.kill(victim)
	want := map[string]string{pred.name: RolePredecessor, succ.name: RoleSuccessor, backup.name: RoleBackup}
	got := map[string]string{}
	failed := 0
	var newRep string
	for len(got) < 3 || failed < 3 {
		ev := next("three deletions")
		switch {
		case ev.kind == "delete" && ev.role != RoleSelf && ev.role != RoleReconcile:
			got[ev.node] = ev.role
		case ev.kind == "failed":
			failed++
		case ev.kind == "rep" && ev.isRep && ev.node != reps[1].name:
			newRep = ev.node
		}
	}
	for n, r := range want {
		if got[n] != r {
			t.Fatalf("victim %s: deletions %v, want %v", victim.name, got, want)
		}
		if err := w.byName[n].rep.Flush(ctx, NodeKey(victim.label)); err != nil {
			t.Fatal(err)
		}
	}
	for newRep == "" {
		if ev := next("new representative"); ev.kind == "rep" && ev.isRep {
			newRep = ev.node
		}
	}
	if err := w.byName[newRep].rep.Flush(ctx, selfKey); err != nil {
		t.Fatal(err)
	}
	p := w.published()
	if _, ok := p.Targets[victim.label+"."+testZone]; ok {
		t.Fatal("DNS still names the dead representative")
	}
	if _, ok := p.Targets[w.byName[newRep].label+"."+testZone]; !ok {
		t.Fatalf("new representative %s not in DNS: %v", newRep, describe(p))
	}
	cancel()
	for range w.live() {
		if err := <-runDone; err != context.Canceled {
			t.Fatalf("Run returned %v", err)
		}
	}
}
