package partition

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

var (
	holds  = flag.String("holds", "", "comma list of cut lengths, one cycle each (first: isolate one node); default 0,30s")
	nodes  = flag.Int("nodes", 0, "fleet size (default 6)")
	before = flag.Int("before", 0, "AORs registered before the first cut (default 60)")
	during = flag.Int("during", 0, "AORs registered on each side during each cut (default 20)")
)

// requireNetns fails in CI and skips elsewhere when this process may not
// create network namespaces.
func requireNetns(t *testing.T) string {
	t.Helper()
	stop := t.Skipf
	if os.Getenv("CI") != "" {
		stop = t.Fatalf
	}
	if os.Geteuid() != 0 {
		stop("creating network namespaces (ip netns) needs root; run as root (CI does)")
	}
	ip := fleet.RequireTool(t, "ip")
	probe := fmt.Sprintf("%s%dx-probe", namePrefix, os.Getpid())
	if out, err := exec.Command(ip, "netns", "add", probe).CombinedOutput(); err != nil {
		stop("ip netns add is not permitted here: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command(ip, "netns", "del", probe).CombinedOutput(); err != nil {
		t.Fatalf("ip netns del %s: %v: %s", probe, err, out)
	}
	return ip
}

func config(t *testing.T, ip string) Config {
	cfg := DefaultConfig()
	cfg.Net.IP = ip
	if *nodes > 0 {
		cfg.Net.Nodes = *nodes
	}
	if *before > 0 {
		cfg.Before = *before
	}
	if *during > 0 {
		cfg.During = *during
	}
	if *holds != "" {
		cfg.Holds = nil
		for _, h := range strings.Split(*holds, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(h))
			if err != nil {
				t.Fatalf("-holds: %v", err)
			}
			cfg.Holds = append(cfg.Holds, d)
		}
	}
	return cfg
}

// TestPartitionHeal runs the fleet in namespaces, cuts it (first one node
// off, as the baseline, then in two halves), registers AORs on both sides,
// heals, and requires one ring and every AOR back with all its copies.
func TestPartitionHeal(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test in network namespaces")
	}
	ip := requireNetns(t)
	if gone, err := SweepStale(ip); err != nil {
		t.Logf("removing namespaces of earlier runs: %v", err)
	} else if len(gone) > 0 {
		t.Logf("removed namespaces left by earlier runs: %v", gone)
	}
	cfg := config(t, ip)
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	nw, err := NewNet(cfg.Net, rng)
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the fleet, so it runs after the fleet's cleanup
	// stopped every node.
	t.Cleanup(func() {
		if err := nw.Close(); err != nil {
			t.Error(err)
		}
	})
	r, err := NewRunner(t, cfg, nw, Deps{Now: time.Now, Rand: rng, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	res := r.Run()

	t.Logf("seed %d; %d nodes; ring formed %.2fs after the last node started", seed, cfg.Net.Nodes, res.Formed.Seconds())
	t.Logf("%-5s %-22s %7s %9s %9s %11s %8s %9s %11s", "cycle", "split", "cut", "reform A", "reform B", "readable", "merge", "data", "lost b/d")
	base := res.Cycles[0]
	for i, c := range res.Cycles {
		t.Logf("%-5d %-22s %6.1fs %8.2fs %8.2fs %5d/%-5d %7.2fs %8.2fs %5d/%-5d", i, c.Split, c.Cut.Seconds(),
			c.ReformA.Seconds(), c.ReformB.Seconds(), c.ReadableA, c.ReadableB, c.Merge.Seconds(), c.Data.Seconds(), c.LostBefore, c.LostDuring)
		if i > 0 && base.Merge > 0 && c.Merge > 0 {
			t.Logf("      vs baseline (one node cut off): re-form %.1fx, merge %.1fx, data %.1fx",
				max(c.ReformA, c.ReformB).Seconds()/max(base.ReformA, base.ReformB, time.Millisecond).Seconds(),
				c.Merge.Seconds()/base.Merge.Seconds(), c.Data.Seconds()/base.Data.Seconds())
		}
	}
	for i, c := range res.Cycles {
		if c.Merge < 0 {
			t.Errorf("cycle %d (%s, cut %.1fs): the ring did not merge within %s", i, c.Split, c.Cut.Seconds(), cfg.MergeTimeout)
		}
		if len(c.Problems) > 0 {
			t.Errorf("cycle %d (%s): %d AORs registered before the cut and %d during it lost or short of copies: %v",
				i, c.Split, c.LostBefore, c.LostDuring, head(c.Problems, 10))
		}
	}
}

// SweepStale removes the namespaces of a run whose process is gone, and
// keeps those of live runs (here: this one's).
func TestSweepStale(t *testing.T) {
	ip := requireNetns(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("%s%dx0000-n1", namePrefix, dead.Process.Pid)
	live := fmt.Sprintf("%s%dx0000-n1", namePrefix, os.Getpid())
	for _, ns := range []string{stale, live} {
		if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
		}
		t.Cleanup(func() { exec.Command(ip, "netns", "del", ns).Run() })
	}
	gone, err := SweepStale(ip)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(gone, stale) || slices.Contains(gone, live) {
		t.Fatalf("swept %v; want %s removed and %s kept", gone, stale, live)
	}
	out, err := exec.Command(ip, "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), stale) || !strings.Contains(string(out), live) {
		t.Fatalf("ip netns list after the sweep:\n%s", out)
	}
}
