package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// Issue 4 acceptance 1-5 against a real BIND9.
func TestRepresentativesInBIND(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const domain = "dsn.test"
	f := fleet.NewDNS(t, domain, 5)

	// 1. Exactly K = 2 representatives are published within seconds,
	// and every node agrees on them.
	fleet.Eventually(t, 10*time.Second, "2 representatives published", func() error { return f.RepsOK(2) })

	t.Run("unsigned and wrongly signed updates are refused", func(t *testing.T) {
		// nsupdate without a key: BIND refuses.
		host, port, _ := net.SplitHostPort(f.Named)
		script := fmt.Sprintf("server %s %s\nzone %s\nupdate add evil.%s 30 A 10.6.6.6\nsend\n", host, port, domain, domain)
		cmd := exec.Command(fleet.RequireTool(t, "nsupdate"))
		cmd.Stdin = strings.NewReader(script)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "REFUSED") {
			t.Fatalf("unsigned nsupdate: %v %s", err, out)
		}
		// A node with the wrong secret under the right key name: refused,
		// and the node says so clearly.
		wrong := filepath.Join(f.Dir, "wrong.key")
		keyName := strings.TrimSuffix(f.BIND.KeyName(), ".")
		os.WriteFile(wrong, []byte(fmt.Sprintf("key %q {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXRoYXQtYmluZC1kb2VzLW5vdC1rbm93LTEyMzQ=\";\n};\n", keyName)), 0o600)
		lone := f.Fleet.Start("lone", "127.0.0.99", nil, "-dns-server", f.Named, "-tsig-key-file", wrong, "-reps", "1")
		defer lone.Kill()
		fleet.Eventually(t, 10*time.Second, "NOTAUTH logged", func() error {
			log := lone.LogTail(200)
			if strings.Contains(log, "NOTAUTH") && strings.Contains(log, "key") {
				return nil
			}
			return fmt.Errorf("no NOTAUTH in log yet")
		})
		if len(f.Dig("lone."+domain, "A")) != 0 {
			t.Fatal("wrongly signed update was applied")
		}
	})

	t.Run("SIGTERM withdraws before exit", func(t *testing.T) {
		rep := f.Reps()[0]
		if err := rep.Term(15 * time.Second); err != nil {
			t.Fatal(err)
		}
		// The process has exited: its records must already be gone.
		if f.IsPublished(rep) {
			t.Fatalf("%s still published after graceful exit", rep.Name)
		}
		fleet.Eventually(t, 10*time.Second, "a new representative", func() error { return f.RepsOK(2) })
	})

	t.Run("kill -9 a representative", func(t *testing.T) {
		f.Add()
		f.Stable(t, 2, time.Second) // the new node may still change the set when Settled first holds
		rep := f.Reps()[0]
		// Counters are summed over live processes: take the baseline
		// without the victim, whose counters die with it.
		before := map[string]float64{}
		for _, role := range []string{"predecessor", "successor", "backup"} {
			before[role] = f.MetricExcept(rep, "dsn_dns_deletions_sent_total", `role="`+role+`"`)
		}
		killed := time.Now()
		rep.Kill()
		fleet.Eventually(t, 5*time.Second, "records of the killed rep gone", func() error {
			if f.IsPublished(rep) {
				return fmt.Errorf("%s still published", rep.Name)
			}
			return nil
		})
		t.Logf("DNS forgot %s %.2fs after kill -9", rep.Name, time.Since(killed).Seconds())
		fleet.Eventually(t, 10*time.Second, "replacement published", func() error { return f.RepsOK(2) })
		t.Logf("replacement published %.2fs after kill -9", time.Since(killed).Seconds())
		// Each watcher sends its deletion independently.
		fleet.Eventually(t, 5*time.Second, "deletions from predecessor, successor and backup", func() error {
			for _, role := range []string{"predecessor", "successor", "backup"} {
				if got := f.Metric("dsn_dns_deletions_sent_total", `role="`+role+`"`); got <= before[role] {
					return fmt.Errorf("no deletion sent by the %s (metric %v -> %v)", role, before[role], got)
				}
			}
			return nil
		})
	})

	t.Run("kill -9 a representative and its successor together", func(t *testing.T) {
		f.Add()
		f.Add()
		f.Stable(t, 2, time.Second) // the new node may still change the set when Settled first holds
		rep := f.Reps()[0]
		succ := f.Procs[fleet.SuccessorOf(t, rep)]
		rep.Kill()
		succ.Kill()
		fleet.Eventually(t, 8*time.Second, "records gone", func() error {
			if f.IsPublished(rep) {
				return fmt.Errorf("%s still published", rep.Name)
			}
			return nil
		})
		fleet.Eventually(t, 15*time.Second, "replacement published", func() error { return f.RepsOK(2) })
	})

	t.Run("stale records removed after a DNS outage", func(t *testing.T) {
		f.Add()
		f.Stable(t, 2, time.Second) // the new node may still change the set when Settled first holds
		rep := f.Reps()[0]
		if err := f.BIND.Stop(); err != nil {
			t.Fatal(err)
		}
		failedBefore := f.FailedDeletes()
		rep.Kill()
		// Wait until the watchers detected the failure and their deletes
		// failed against the stopped DNS.
		fleet.Eventually(t, 10*time.Second, "failed delete attempts while DNS is down", func() error {
			if f.FailedDeletes() <= failedBefore {
				return fmt.Errorf("no failed delete yet")
			}
			return nil
		})
		if err := f.BIND.Start(); err != nil {
			t.Fatal(err)
		}
		restarted := time.Now()
		fleet.Eventually(t, 15*time.Second, "stale records removed", func() error {
			if f.IsPublished(rep) {
				return fmt.Errorf("%s still published", rep.Name)
			}
			return nil
		})
		t.Logf("stale records gone %.2fs after BIND came back", time.Since(restarted).Seconds())
		fleet.Eventually(t, 15*time.Second, "replacement published", func() error { return f.RepsOK(2) })
	})
}
