package reps

import (
	"context"
	mrand "math/rand"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/dnsreport"
)

// BenchmarkFailover measures in real time, with the production timings
// (DefaultConfig here and in dht) and every loop driven by its Run, how
// long after a representative is killed the first watcher's deletion is
// confirmed by DNS (the embedded server's handler in memory, so no network
// latency). One failover per iteration; reports the median and maximum.
func BenchmarkFailover(b *testing.B) {
	var ds []time.Duration
	for i := range b.N {
		ds = append(ds, failoverOnce(b, int64(i)))
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Milliseconds()), "ms-median")
	b.ReportMetric(float64(ds[len(ds)-1].Milliseconds()), "ms-max")
}

func failoverOnce(b *testing.B, seed int64) time.Duration {
	b.StopTimer()
	cfg := DefaultConfig()
	cfg.Zone, cfg.Domain = testZone, testDomain
	w := newWorld(b, cfg)
	w.dcfg = dht.DefaultConfig()
	w.realTime, w.selfRun = true, true
	w.rng = mrand.New(mrand.NewSource(seed))
	up := make(chan string, 100)
	w.hooks = func(name string) Hooks {
		return Hooks{RepStatus: func(r bool) {
			if r {
				up <- name
			}
		}}
	}
	var mu sync.Mutex
	var watchKey string
	deleted := make(chan time.Time, 10)
	w.onResult = func(_ string, r dnsreport.Result) {
		mu.Lock()
		k := watchKey
		mu.Unlock()
		if r.Key == k && r.Op == "delete" && r.Err == nil {
			deleted <- time.Now()
		}
	}
	w.addN(8)
	w.converge()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i, m := range w.live() {
		mctx, stop := context.WithCancel(ctx)
		m.stop = stop
		drv := dht.NewDriver(m.node, mrand.New(mrand.NewSource(int64(i))), nil, w.liveMembers)
		wg.Go(func() { drv.Run(mctx) })
		wg.Go(func() { _ = m.rep.Run(mctx) })
		wg.Go(func() { _ = m.mgr.Run(mctx) })
	}
	reps := w.truthReps()
	names := make([]string, len(reps))
	for i, m := range reps {
		names[i] = m.name
	}
	sort.Strings(names)
	got := map[string]bool{}
	for len(got) < len(reps) {
		if n := <-up; slices.Contains(names, n) {
			got[n] = true
		}
	}
	victim := reps[0]
	mu.Lock()
	watchKey = NodeKey(victim.label)
	mu.Unlock()

	b.StartTimer()
	start := time.Now()
	w.kill(victim)
	select {
	case at := <-deleted:
		b.StopTimer()
		return at.Sub(start)
	case <-time.After(10 * time.Second): // failure bound
		b.Fatal("no deletion within 10 s")
	}
	return 0
}
