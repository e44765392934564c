package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeUsers writes a SIPp injection file of n users in domain.
func writeUsers(t *testing.T, dir, domain string, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("SEQUENTIAL\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "user%04d;%s\n", i, domain)
	}
	p := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sipp runs SIPp to completion against target and fails the test on any
// failed call.
func sipp(t *testing.T, target string, args ...string) string {
	t.Helper()
	bin := requireTool(t, "sipp")
	dir := t.TempDir()
	for i, a := range args {
		if strings.HasSuffix(a, ".xml") && !filepath.IsAbs(a) {
			abs, err := filepath.Abs(a)
			if err != nil {
				t.Fatal(err)
			}
			args[i] = abs
		}
	}
	full := append([]string{target, "-trace_stat", "-stf", filepath.Join(dir, "stat.csv"), "-nostdin", "-timeout", "60s", "-timeout_error"}, args...)
	cmd := exec.Command(bin, full...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		logs, _ := filepath.Glob(filepath.Join(dir, "*_errors.log"))
		var errLog []byte
		if len(logs) > 0 {
			errLog, _ = os.ReadFile(logs[0])
		}
		t.Fatalf("sipp %v: %v\n%s\n%s", full, err, tail(string(out), 40), tail(string(errLog), 20))
	}
	return string(out)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Issue 2 acceptance 4 with real processes: five dsn-node processes on
// 127.0.0.1-5 form one ring over TCP + memberlist; a process with the wrong
// cluster key is refused; after kill -9 of one node the ring repairs and no
// registration is lost (every AOR still has exactly 3 copies).
func TestFleetRingSurvivesCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const domain = "dsn.test"
	f := newFleet(t, domain)
	var ps []*proc
	for i := 1; i <= 5; i++ {
		var join []string
		if len(ps) > 0 {
			join = []string{ps[0].Cluster}
		}
		ps = append(ps, f.start(fmt.Sprintf("sn%d", i), fmt.Sprintf("127.0.0.%d", i), join))
	}
	eventually(t, 15*time.Second, "ring of 5", func() error { return ringConsistent(ps) })

	// Register 60 phones through different nodes.
	const users = 60
	inf := writeUsers(t, f.dir, domain, users)
	for i, p := range ps {
		_ = i
		sipp(t, p.SIP, "-sf", "testdata/register.xml", "-inf", inf, "-m", fmt.Sprint(users/len(ps)),
			"-i", "127.0.0.1", "-r", "50")
	}
	// SIPp reads the injection file from the start each run, so each node
	// registered the first 12 users; together they re-registered the same
	// AORs (refreshes through other nodes). Register the rest once.
	sipp(t, ps[0].SIP, "-sf", "testdata/register.xml", "-inf", inf, "-m", fmt.Sprint(users), "-i", "127.0.0.1", "-r", "100")
	copies := func(live []*proc) (owned, replica int, err error) {
		for _, p := range live {
			st, err := p.status()
			if err != nil {
				return 0, 0, err
			}
			owned += st.Registrations.Owned
			replica += st.Registrations.Replica
		}
		return
	}
	wantCopies := func(live []*proc) func() error {
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
	eventually(t, 15*time.Second, "3 copies of every registration", wantCopies(ps))

	// A process holding the wrong cluster key cannot join.
	wrongKey := filepath.Join(f.dir, "wrong.key")
	os.WriteFile(wrongKey, []byte("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=\n"), 0o600)
	if p, err := f.tryStart("rogue", "127.0.0.9", wrongKey, []string{ps[1].Cluster}); err == nil {
		t.Fatalf("node with the wrong key joined: %v", p.Name)
	} else if !strings.Contains(err.Error(), "exited before serving") {
		t.Fatalf("rogue: %v", err)
	}

	// Crash one node: the ring repairs and every registration is still
	// there, three times.
	ps[2].kill()
	live := append(append([]*proc(nil), ps[:2]...), ps[3:]...)
	eventually(t, 15*time.Second, "ring of 4 after kill -9", func() error { return ringConsistent(live) })
	eventually(t, 15*time.Second, "3 copies after the crash", wantCopies(live))
	for i := 0; i < users; i++ {
		var b struct {
			Bindings []struct {
				Contact string `json:"contact"`
			} `json:"bindings"`
		}
		code, err := live[i%len(live)].getJSON(fmt.Sprintf("/v1/bindings?aor=sip:user%04d@%s", i, domain), &b)
		if err != nil || code != 200 || len(b.Bindings) != 1 {
			t.Fatalf("user%04d after crash: %d %v %+v", i, code, err, b)
		}
	}

	// Graceful leave: exit 0, ring of 3, nothing lost.
	if err := live[1].term(15 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	rest := []*proc{live[0], live[2], live[3]}
	eventually(t, 15*time.Second, "ring of 3 after leave", func() error { return ringConsistent(rest) })
	eventually(t, 15*time.Second, "3 copies after the leave", wantCopies(rest))
}
