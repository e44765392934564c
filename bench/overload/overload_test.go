package overloadbench

import (
	"flag"
	"fmt"
	"testing"
	"time"
)

var (
	duration    = flag.Duration("duration", 5*time.Second, "length of the overload")
	multiple    = flag.Float64("multiple", 10, "offered call rate, as a multiple of the measured capacity")
	capacityRun = flag.Duration("capacity", 3*time.Second, "length of the capacity run")
	recovery    = flag.Duration("recovery", 60*time.Second, "how long the node may take, after SIPp exits, to come back to its baseline")
	maxInflight = flag.Int("max-inflight", 500, "the node's -max-inflight")
	nodeCPUs    = flag.Int("node-cpus", 1, "the node's GOMAXPROCS (SIPp gets the other CPUs)")
)

// TestOverloadBench measures one overload and prints the figures of
// README.md. CI runs the short default (5 s); run.sh the 30 s run:
//
//	go test -count=1 -v -run TestOverloadBench ./bench/overload -args -duration=30s
func TestOverloadBench(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process benchmark")
	}
	o := Options{
		IP:              "127.0.0.91",
		Capacity:        *capacityRun,
		CapacityCalls:   1000,
		Multiple:        *multiple,
		Duration:        *duration,
		Recovery:        *recovery,
		GoroutineMargin: 10,
		HeapMargin:      64 << 20,
		RSSMargin:       128 << 20,
		RSSPeakShare:    0.15,
		NodeArgs:        []string{"-max-inflight", fmt.Sprint(*maxInflight)},
		NodeCPUs:        *nodeCPUs,
	}
	r := Run(t, o)
	t.Logf("figures (Markdown):\n%s", Table(r, o))
	if !r.Alive {
		t.Fatal("the node died under overload")
	}
	if r.Got503 == 0 {
		t.Error("SIPp got no 503")
	}
	if r.Recovered < 0 {
		t.Errorf("not back to the baseline within %v after SIPp exited", o.Recovery)
	}
}
