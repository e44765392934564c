package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// Issue 2 acceptance 4 with real processes: five dsn-node processes on
// 127.0.0.1-5 form one ring over TCP + memberlist; a process with the wrong
// cluster key is refused; after kill -9 of one node the ring repairs and no
// registration is lost (every AOR still has exactly 3 copies).
func TestFleetRingSurvivesCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const domain = "dsn.test"
	f := fleet.New(t, domain)
	var ps []*fleet.Proc
	for i := 1; i <= 5; i++ {
		var join []string
		if len(ps) > 0 {
			join = []string{ps[0].Cluster}
		}
		ps = append(ps, f.Start(fmt.Sprintf("sn%d", i), fmt.Sprintf("127.0.0.%d", i), join))
	}
	fleet.Eventually(t, 15*time.Second, "ring of 5", func() error { return fleet.RingConsistent(ps) })

	// Register 60 phones through different nodes.
	const users = 60
	inf := fleet.WriteUsers(t, f.Dir, domain, users)
	for i, p := range ps {
		_ = i
		fleet.SIPp(t, p.SIP, "-sf", "testdata/register.xml", "-inf", inf, "-m", fmt.Sprint(users/len(ps)),
			"-i", "127.0.0.1", "-r", "50")
	}
	// SIPp reads the injection file from the start each run, so each node
	// registered the first 12 users; together they re-registered the same
	// AORs (refreshes through other nodes). Register the rest once.
	fleet.SIPp(t, ps[0].SIP, "-sf", "testdata/register.xml", "-inf", inf, "-m", fmt.Sprint(users), "-i", "127.0.0.1", "-r", "100")
	copies := func(live []*fleet.Proc) (owned, replica int, err error) {
		for _, p := range live {
			st, err := p.Status()
			if err != nil {
				return 0, 0, err
			}
			owned += st.Registrations.Owned
			replica += st.Registrations.Replica
		}
		return
	}
	wantCopies := func(live []*fleet.Proc) func() error {
		return func() error {
			o, r, err := copies(live)
			if err != nil {
				return err
			}
			if o != users || r != 2*users {
				return fmt.Errorf("owned %d replica %d, want %d and %d", o, r, users, 2*users)
			}
			return nil
		}
	}
	fleet.Eventually(t, 15*time.Second, "3 copies of every registration", wantCopies(ps))

	// A process holding the wrong cluster key cannot join.
	wrongKey := filepath.Join(f.Dir, "wrong.key")
	os.WriteFile(wrongKey, []byte("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=\n"), 0o600)
	if p, err := f.TryStart("rogue", "127.0.0.9", wrongKey, []string{ps[1].Cluster}); err == nil {
		t.Fatalf("node with the wrong key joined: %v", p.Name)
	} else if !strings.Contains(err.Error(), "exited before serving") {
		t.Fatalf("rogue: %v", err)
	}

	// Crash one node: the ring repairs and every registration is still
	// there, three times.
	ps[2].Kill()
	live := append(append([]*fleet.Proc(nil), ps[:2]...), ps[3:]...)
	fleet.Eventually(t, 15*time.Second, "ring of 4 after kill -9", func() error { return fleet.RingConsistent(live) })
	fleet.Eventually(t, 15*time.Second, "3 copies after the crash", wantCopies(live))
	for i := 0; i < users; i++ {
		var b struct {
			Bindings []struct {
				Contact string `json:"contact"`
			} `json:"bindings"`
		}
		code, err := live[i%len(live)].GetJSON(fmt.Sprintf("/v1/bindings?aor=sip:user%04d@%s", i, domain), &b)
		if err != nil || code != 200 || len(b.Bindings) != 1 {
			t.Fatalf("user%04d after crash: %d %v %+v", i, code, err, b)
		}
	}

	// Graceful leave: exit 0, ring of 3, nothing lost.
	if err := live[1].Term(15 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	rest := []*fleet.Proc{live[0], live[2], live[3]}
	fleet.Eventually(t, 15*time.Second, "ring of 3 after leave", func() error { return fleet.RingConsistent(rest) })
	fleet.Eventually(t, 15*time.Second, "3 copies after the leave", wantCopies(rest))
}
