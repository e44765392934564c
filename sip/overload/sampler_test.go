package overload

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestQuantileSince(t *testing.T) {
	buckets := []float64{math.Inf(-1), 0, 0.001, 0.01, 0.1, math.Inf(1)}
	prev := []uint64{0, 100, 50, 0, 0}
	for _, tt := range []struct {
		name string
		prev []uint64
		cur  []uint64
		q    float64
		want time.Duration
	}{
		{"nothing new", prev, prev, 0.99, 0},
		{"all new in the fast bucket", prev, []uint64{0, 200, 50, 0, 0}, 0.99, 0},
		{"one in a hundred slow", prev, []uint64{0, 199, 50, 1, 0}, 0.99, 0},
		{"two in a hundred slow", prev, []uint64{0, 198, 50, 2, 0}, 0.99, 10 * time.Millisecond},
		{"all slow", prev, []uint64{0, 100, 50, 0, 7}, 0.99, 100 * time.Millisecond},
		{"median", nil, []uint64{0, 1, 1, 1, 0}, 0.5, time.Millisecond},
		{"first sample: no previous counts", nil, []uint64{0, 0, 0, 3, 0}, 0.99, 10 * time.Millisecond},
	} {
		if got := quantileSince(tt.prev, tt.cur, buckets, tt.q); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestSamplerSeesCPUContention: with more busy goroutines than
// CPUs the runtime's scheduling delay shows up in the sample.
func TestSamplerSeesCPUContention(t *testing.T) {
	if testing.Short() {
		t.Skip("burns CPU for a moment")
	}
	s := NewSampler(0.99)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4*runtime.GOMAXPROCS(0); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for j := 0; j < 1e5; j++ {
					_ = j * j
				}
				runtime.Gosched()
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	var got time.Duration
	for got == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // let the contention accumulate
		got, _ = s.Sample()
	}
	close(stop)
	wg.Wait()
	if got <= 0 {
		t.Fatal("no scheduling delay seen under 4x CPU oversubscription")
	}
}

func TestSamplerHeap(t *testing.T) {
	s := NewSampler(0.99)
	keep := make([]byte, 64<<20)
	runtime.GC()
	_, heap := s.Sample()
	if heap < 64<<20 {
		t.Fatalf("live heap %d bytes with 64 MiB held", heap)
	}
	runtime.KeepAlive(keep)
}

func TestSustained(t *testing.T) {
	ms := time.Millisecond
	s := NewSustained(3)
	var got []time.Duration
	for _, d := range []time.Duration{80, 90, 70, 0, 100, 100, 60, 100, 100, 100} {
		got = append(got, s.Add(d*ms)/ms)
	}
	want := []time.Duration{0, 0, 70, 0, 0, 0, 60, 60, 60, 100}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sustained delays %v, want %v", got, want)
	}
	if one := NewSustained(0); one.Add(5*ms) != 5*ms {
		t.Fatal("n = 0 must behave as 1")
	}
}
