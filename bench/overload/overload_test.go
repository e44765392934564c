package overloadbench

import (
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/sip/overload"
)

var (
	enabled         = flag.Bool("overload", false, "run the overload benchmark (run.sh sets it; CI runs deploy/e2e's TestOverload instead)")
	duration        = flag.Duration("duration", 30*time.Second, "length of the overload")
	multiple        = flag.Float64("multiple", 10, "offered call rate, as a multiple of the measured capacity")
	capacityRun     = flag.Duration("capacity", 3*time.Second, "length of the capacity run")
	recovery        = flag.Duration("recovery", 60*time.Second, "how long the node may take, after SIPp exits, to come back to its baseline")
	maxInflight     = flag.Int("max-inflight", 500, "the node's -max-inflight")
	maxTransactions = flag.Int("max-transactions", overload.DefaultConfig().MaxTransactions, "the node's -max-transactions")
	nodeCPUs        = flag.Int("node-cpus", 1, "the node's GOMAXPROCS (SIPp gets the other CPUs)")
	profileDir      = flag.String("profile", "", "directory for the node's heap and goroutine profiles (runs the node with -pprof)")
)

// TestOverloadBench measures one overload and prints the figures of
// README.md. It runs only when asked (run.sh):
//
//	go test -count=1 -v -run TestOverloadBench ./bench/overload -args -overload -duration=30s
func TestOverloadBench(t *testing.T) {
	if !*enabled {
		t.Skip("the full overload run: bench/overload/run.sh (CI runs deploy/e2e TestOverload)")
	}
	o := Options{
		IP:              "127.0.0.91",
		Capacity:        *capacityRun,
		CapacityCalls:   1000,
		Multiple:        *multiple,
		Duration:        *duration,
		Recovery:        *recovery,
		GoroutineMargin: 10,
		// What a window of 16,384 leaves behind (deploy/e2e's margins),
		// in proportion: the tables sized for the peak (Go maps keep
		// their buckets), the runtime's metadata for the peak heap.
		HeapMargin:      8 << 20 * float64(*maxTransactions) / 16384,
		RSSMargin:       48 << 20 * float64(*maxTransactions) / 16384,
		MaxTransactions: *maxTransactions,
		NodeArgs:        []string{"-max-inflight", fmt.Sprint(*maxInflight)},
		NodeCPUs:        *nodeCPUs,
		ProfileDir:      *profileDir,
	}
	t.Logf("margins after the load: %d goroutines, live heap %.0f MiB, RSS %.0f MiB; live heap bound while it lasts %.0f MiB above the baseline",
		o.GoroutineMargin, o.HeapMargin/(1<<20), o.RSSMargin/(1<<20), HeapBound(Sample{}, o.MaxTransactions)/(1<<20))
	r := Run(t, o)
	t.Logf("figures (Markdown):\n%s", Table(r, o))
	for _, s := range r.Samples {
		t.Logf("  t=%3.0fs goroutines %5.0f  in flight %5.0f  window %6.0f  live heap %4.0f MiB  allocated %4.0f MiB  RSS %4.0f MiB  queue delay %4.0f ms  shed %7.0f",
			s.At.Seconds(), s.Goroutines, s.InFlight, s.Transactions, s.Heap/(1<<20), s.HeapAlloc/(1<<20), s.RSS/(1<<20), s.QueueDelay*1000, s.Rejected)
	}
	if !r.Alive {
		t.Fatal("the node died under overload")
	}
	if r.Got503 == 0 {
		t.Error("SIPp got no 503")
	}
	if bound := HeapBound(r.Before, o.MaxTransactions); r.Peak.Heap > bound {
		t.Errorf("peak live heap %.0f MiB over the bound of the configuration, %.0f MiB", r.Peak.Heap/(1<<20), bound/(1<<20))
	}
	if r.Recovered < 0 {
		t.Errorf("not back to the baseline within %v after SIPp exited", o.Recovery)
	}
}
