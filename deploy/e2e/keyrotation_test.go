package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// Issue 6 (inter-node): the cluster key is rotated on a running fleet
// without a restart and without a node leaving the ring, by the three
// steps of the README ("Rotating the cluster key"): each node's
// -cluster-key-file is rewritten and the node gets SIGHUP. After each
// step the ring is whole and lookups cross it; at the end a node with the
// new key alone joins, and one with the retired key alone is refused.
func TestClusterKeyRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const (
		domain = "dsn.rotate"
		k1     = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // the fleet's key
		k2     = "a2V5LXR3by1rZXktdHdvLWtleS10d28ta2V5LXR3bzI="
	)
	f := fleet.New(t, domain)
	keyFile := func(name string, keys ...string) string {
		p := filepath.Join(f.Dir, name+".key")
		if err := os.WriteFile(p, []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var ps []*fleet.Proc
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("kr%d", i)
		var join []string
		if len(ps) > 0 {
			join = []string{ps[0].Cluster}
		}
		p, err := f.TryStart(name, fmt.Sprintf("127.0.0.%d", 110+i), keyFile(name, k1), join)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	whole := func(ps []*fleet.Proc) func() error {
		return func() error {
			if err := fleet.RingConsistent(ps); err != nil {
				return err
			}
			// A lookup from every node: DHT RPCs over fresh and kept
			// connections.
			for _, p := range ps {
				for u := 0; u < 8; u++ {
					var r struct {
						Home struct {
							Name string `json:"name"`
						} `json:"home"`
					}
					code, err := p.GetJSON(fmt.Sprintf("/v1/lookup?aor=sip:rot%d@%s", u, domain), &r)
					if err != nil || code != 200 || r.Home.Name == "" {
						return fmt.Errorf("lookup from %s: %d %v %+v", p.Name, code, err, r)
					}
				}
			}
			return nil
		}
	}
	fleet.Eventually(t, 15*time.Second, "ring of 3 with K1", whole(ps))

	steps := []struct {
		what string
		keys []string
	}{
		{"K2 added as a secondary key", []string{k1, k2}},
		{"K2 made the primary", []string{k2, k1}},
		{"K1 removed", []string{k2}},
	}
	for _, s := range steps {
		for _, p := range ps {
			before := p.LogCount("cluster keys reloaded")
			keyFile(p.Name, s.keys...)
			if err := p.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			fleet.Eventually(t, 5*time.Second, p.Name+" reloads its keys", func() error {
				if p.LogCount("cluster keys reloaded") == before {
					return fmt.Errorf("no reload logged")
				}
				return nil
			})
			// Mid-step (this node switched, the next ones not yet) the
			// ring must be whole too.
			fleet.Eventually(t, 15*time.Second, p.Name+" switched, ring whole during: "+s.what, whole(ps))
		}
		for _, p := range ps {
			if !p.Alive() {
				t.Fatalf("%s exited during %s", p.Name, s.what)
			}
		}
	}

	// No handshake was refused at any point: every pair of nodes shared a
	// key throughout (a step out of order makes these grow).
	for _, p := range ps {
		m, err := p.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		if n := fleet.MetricSum(m, "dsn_cluster_handshakes_rejected_total"); n > 0 {
			t.Errorf("%s refused %.0f inter-node handshakes during the rotation", p.Name, n)
		}
		t.Logf("%s: %.0f handshakes with a secondary key during the rotation", p.Name, fleet.MetricSum(m, "dsn_cluster_secondary_key_handshakes_total"))
	}
	// Gossip too: every node still sees the other two alive.
	for _, p := range ps {
		if n := p.LogCount("node: neighbour failed") + p.LogCount("as failed"); n > 0 {
			t.Errorf("%s saw %d neighbour or member failures during the rotation", p.Name, n)
		}
	}
	p4, err := f.TryStart("kr4", "127.0.0.114", keyFile("kr4", k2), []string{ps[1].Cluster})
	if err != nil {
		t.Fatalf("a node with the new key alone: %v", err)
	}
	fleet.Eventually(t, 15*time.Second, "ring of 4 with K2", whole(append(ps, p4)))
	if p, err := f.TryStart("old", "127.0.0.115", keyFile("old", k1), []string{ps[0].Cluster}); err == nil {
		t.Fatalf("a node with the retired key joined: %s", p.Name)
	} else if !strings.Contains(err.Error(), "exited before serving") {
		t.Fatalf("retired key: %v", err)
	}
}
