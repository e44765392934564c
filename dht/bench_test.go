package dht

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sort"
	"testing"
)

// buildRing joins n nodes one by one (a stabilize round after each) and
// settles the ring.
func buildRing(b *testing.B, n int, seed int64) *testRing {
	r := newTestRing(b, DefaultConfig(), seed)
	for i := 0; i < n; i++ {
		r.addN(1)
		r.stabilizeRound()
		if i%32 == 31 {
			r.fingerRound() // the driver refreshes fingers as the ring grows
		}
	}
	r.converge(60)
	return r
}

// BenchmarkLookupHops reports mean and p99 hops of random lookups next to
// Chord's published expectation (1/2)·log2 N.
func BenchmarkLookupHops(b *testing.B) {
	for _, n := range []int{16, 64, 256, 1024} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			r := buildRing(b, n, int64(n))
			live := r.live()
			ctx := context.Background()
			hops := make([]int, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := live[i%len(live)].Lookup(ctx, ID(r.rng.Uint64()))
				if err != nil {
					b.Fatal(err)
				}
				hops = append(hops, res.Hops)
			}
			b.StopTimer()
			sort.Ints(hops)
			sum := 0
			for _, h := range hops {
				sum += h
			}
			b.ReportMetric(float64(sum)/float64(len(hops)), "mean-hops")
			b.ReportMetric(float64(hops[len(hops)*99/100]), "p99-hops")
			b.ReportMetric(0.5*math.Log2(float64(n)), "chord-expected-hops")
		})
	}
}

// BenchmarkReconvergeAfterChurn reports the stabilize rounds a 256-node
// ring needs to be exact again after 20% of it is killed.
func BenchmarkReconvergeAfterChurn(b *testing.B) {
	total := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := buildRing(b, 256, int64(1000+i))
		killSome(r, 0.2)
		b.StartTimer()
		total += r.converge(60)
	}
	b.ReportMetric(float64(total)/float64(b.N), "rounds")
}

// BenchmarkStoreMemory reports heap bytes per stored record at 1,000,000
// small records (an AOR-sized key and a 64-byte value) on one node.
func BenchmarkStoreMemory(b *testing.B) {
	const count = 1_000_000
	val := make([]byte, 64)
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := NewStore()
		for j := 0; j < count; j++ {
			s.Merge(Record{Key: fmt.Sprintf("sip:user%07d@dsn.example.com", j), Value: val, Version: 1, Expires: 1})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per := float64(after.HeapAlloc-before.HeapAlloc) / count
		b.ReportMetric(per, "bytes/record")
		b.ReportMetric(per-64-float64(len("sip:user0000000@dsn.example.com")), "overhead-bytes/record")
		runtime.KeepAlive(s)
	}
}

// BenchmarkStorePutGet measures the local store alone (the floor under
// every remote put/get).
func BenchmarkStoreMerge(b *testing.B) {
	s := NewStore()
	val := make([]byte, 64)
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = fmt.Sprintf("sip:user%d@dsn.example.com", i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Merge(Record{Key: keys[i%len(keys)], Value: val, Version: uint64(i + 1)})
	}
}
