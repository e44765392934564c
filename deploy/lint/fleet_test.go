package lint

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/node"
)

// fleetRun drives deploy/local/fleet.sh with its own state directory and
// loopback range, so it cannot collide with another fleet.
type fleetRun struct {
	t      *testing.T
	dir    string
	prefix string
	env    []string
}

func newFleetRun(t *testing.T, prefix string, prebuilt bool, extra ...string) *fleetRun {
	t.Helper()
	requireTool(t, "curl")
	f := &fleetRun{t: t, dir: t.TempDir(), prefix: prefix}
	f.env = append(os.Environ(), "DSN_FLEET_DIR="+f.dir, "DSN_FLEET_IP_PREFIX="+prefix, "DSN_FLEET_IP_START=1")
	if prebuilt {
		tl := buildTools(t)
		bin := filepath.Join(f.dir, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{tl.node, tl.ctl} {
			data, err := os.ReadFile(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(bin, filepath.Base(b)), data, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		f.env = append(f.env, "DSN_FLEET_NO_BUILD=1")
	}
	f.env = append(f.env, extra...)
	t.Cleanup(func() {
		if out, err := f.exec("stop"); err != nil {
			t.Errorf("cleanup: fleet.sh stop: %v\n%s", err, out)
		}
	})
	return f
}

// exec runs fleet.sh with args and returns its combined output.
func (f *fleetRun) exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(deployDir(f.t), "local", "fleet.sh"), args...)
	cmd.Env = f.env
	cmd.Dir = root(f.t)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (f *fleetRun) must(args ...string) string {
	f.t.Helper()
	out, err := f.exec(args...)
	if err != nil {
		f.t.Fatalf("fleet.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (f *fleetRun) ip(i int) string { return fmt.Sprintf("%s%d", f.prefix, i) }

func (f *fleetRun) admin(i int) string { return f.ip(i) + ":8080" }

// pids reads the node pid files (and named's, when there is one).
func (f *fleetRun) pids() map[string]int {
	out := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(f.dir, "nodes", "*.pid"))
	files = append(files, filepath.Join(f.dir, "bind", "named.pid"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			out[strings.TrimSuffix(filepath.Base(p), ".pid")] = pid
		}
	}
	return out
}

// leftovers lists running processes whose command line mentions the
// fleet's directory.
func (f *fleetRun) leftovers() []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(f.dir)) {
			continue
		}
		out = append(out, filepath.Base(filepath.Dir(p))+": "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return out
}

func status(ctx context.Context, admin string) (node.Status, error) {
	var st node.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/v1/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func ready(ctx context.Context, admin string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// ringProblem checks n statuses form one ring: sorted by ID, each node's
// first successor is the next and its predecessor the one before.
func ringProblem(sts []node.Status) string {
	slices.SortFunc(sts, func(a, b node.Status) int { return cmp.Compare(a.ID, b.ID) })
	for i, st := range sts {
		next, prev := sts[(i+1)%len(sts)], sts[(i+len(sts)-1)%len(sts)]
		switch {
		case len(st.Successors) == 0 || st.Successors[0].Name != next.Name:
			return fmt.Sprintf("%s: successors %v, want %s first", st.Name, st.Successors, next.Name)
		case st.Predecessor == nil || st.Predecessor.Name != prev.Name:
			return fmt.Sprintf("%s: predecessor %v, want %s", st.Name, st.Predecessor, prev.Name)
		}
	}
	return ""
}

// waitRing polls the admin API of nodes 1..n until every node is ready
// and the ring is consistent (stabilization runs every few hundred ms).
func (f *fleetRun) waitRing(n int) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	last := ""
	for {
		sts := make([]node.Status, 0, n)
		for i := 1; i <= n; i++ {
			if !ready(ctx, f.admin(i)) {
				last = f.admin(i) + " not ready"
				break
			}
			st, err := status(ctx, f.admin(i))
			if err != nil {
				last = err.Error()
				break
			}
			sts = append(sts, st)
		}
		if len(sts) == n {
			if last = ringProblem(sts); last == "" {
				return
			}
		}
		select {
		case <-ctx.Done():
			f.t.Fatalf("ring of %d not consistent within 30s: %s", n, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// diagnose returns fleet.sh status and the node log lines that mention
// any of words, for failure messages.
func (f *fleetRun) diagnose(words ...string) string {
	var b strings.Builder
	out, _ := f.exec("status")
	b.WriteString(out)
	logs, _ := filepath.Glob(filepath.Join(f.dir, "nodes", "*.log"))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		fmt.Fprintf(&b, "--- %s ---\n", filepath.Base(l))
		for _, line := range strings.Split(string(data), "\n") {
			if slices.ContainsFunc(words, func(w string) bool { return strings.Contains(line, w) }) {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

// stopAndCheck stops the fleet and checks that no process is left.
func (f *fleetRun) stopAndCheck() {
	f.t.Helper()
	pids := f.pids()
	if len(pids) == 0 {
		f.t.Fatal("no pid files before stop")
	}
	out := f.must("stop")
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
			f.t.Errorf("%s (pid %d) still exists after stop (kill -0: %v)\n%s", name, pid, err, out)
		}
	}
	if left := f.leftovers(); len(left) > 0 {
		f.t.Errorf("processes left after stop:\n%s", strings.Join(left, "\n"))
	}
	if left := f.pids(); len(left) > 0 {
		f.t.Errorf("pid files left after stop: %v", left)
	}
}

func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real 3-node fleet; skipped with -short")
	}
	t.Parallel()
	f := newFleetRun(t, "127.77.0.", false)
	out := f.must("start", "3")
	if !strings.Contains(out, "3 node(s) ready") {
		t.Errorf("start output:\n%s", out)
	}
	f.waitRing(3)
	ctl := filepath.Join(f.dir, "bin", "dsnctl")
	all := f.admin(1) + "," + f.admin(2) + "," + f.admin(3)
	if out, err := exec.Command(ctl, "ring", "-all", all).CombinedOutput(); err != nil {
		t.Errorf("dsnctl ring -all: %v\n%s", err, out)
	}
	out = f.must("status")
	for _, want := range []string{"sn1", "sn2", "sn3", "ring consistent: 3 nodes"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	// Starting again keeps the running nodes.
	before := f.pids()
	f.must("start", "3")
	if after := f.pids(); !maps(before, after) {
		t.Errorf("start 3 again replaced processes: %v -> %v", before, after)
	}
	// The node the cluster key belongs to is the fleet's own.
	if st, err := os.Stat(filepath.Join(f.dir, "cluster.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("cluster key: %v, mode %v", err, st.Mode())
	}
	f.stopAndCheck()
	// Stopping twice is fine; status then says there is no fleet.
	f.must("stop")
	if out, err := f.exec("status"); err == nil || !strings.Contains(out, "no fleet") {
		t.Errorf("status after stop: %v\n%s", err, out)
	}
}

func maps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestFleetBind runs the fleet with BIND9: the representatives register
// in named, dsnctl dns-check agrees, ENUM provisioning works.
func TestFleetBind(t *testing.T) {
	if testing.Short() {
		t.Skip("starts named and a real 3-node fleet; skipped with -short")
	}
	t.Parallel()
	requireTool(t, "named")
	requireTool(t, "tsig-keygen")
	requireTool(t, "dig")
	f := newFleetRun(t, "127.78.0.", true, "DSN_FLEET_DNS_PORT=5453")
	out := f.must("start", "3", "--bind")
	f.waitRing(3)
	portB, err := os.ReadFile(filepath.Join(f.dir, "bind", "port"))
	if err != nil {
		t.Fatal(err)
	}
	dnsServer := "127.0.0.1:" + strings.TrimSpace(string(portB))
	key := filepath.Join(f.dir, "bind", "dsn-update.key")
	ctl := filepath.Join(f.dir, "bin", "dsnctl")
	if !strings.Contains(out, "named on "+dnsServer) {
		t.Errorf("start output does not name the DNS server %s:\n%s", dnsServer, out)
	}

	if tl := buildTools(t); !tl.flags["dns-server"] {
		t.Skip("this dsn-node has no -dns-server flag yet: the fleet runs without DNS reporting")
	}
	// The representatives publish themselves; poll until DNS and the ring
	// agree.
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.Command(ctl, "-admin", f.admin(1), "-dns-server", dnsServer, "dns-check")
		out, err := cmd.CombinedOutput()
		if err == nil && strings.Contains(string(out), "consistent:") && !strings.Contains(string(out), " 0 ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dns-check not consistent within 30s: %v\n%s\n%s", err, out, f.diagnose("reps", "dns"))
		}
		time.Sleep(300 * time.Millisecond) // polling an external process, with a deadline
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(ctl, append([]string{"-dns-server", dnsServer, "-tsig-key-file", key}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dsnctl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("enum", "add", "+15550100", "sip:alice@dsn.local")
	dig, err := exec.Command("dig", "+short", "-p", strings.TrimPrefix(dnsServer, "127.0.0.1:"), "@127.0.0.1",
		"NAPTR", "0.0.1.0.5.5.5.1.e164.arpa").Output()
	if err != nil || !strings.Contains(string(dig), "sip:alice@dsn.local") {
		t.Errorf("dig NAPTR after enum add: %v %q", err, dig)
	}
	run("enum", "del", "+15550100")
	f.stopAndCheck()
}

// TestFleetStartFailure: a node that cannot start makes start fail with
// its log tail.
func TestFleetStartFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("runs fleet.sh; skipped with -short")
	}
	t.Parallel()
	f := newFleetRun(t, "127.79.0.", true, "DSN_FLEET_DOMAIN=bad domain")
	out, err := f.exec("start", "1")
	if err == nil {
		t.Fatalf("start succeeded with a bad domain:\n%s", out)
	}
	for _, want := range []string{"sn1 exited during start-up", "last lines of", "-domain"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if out, err := f.exec("start", "0"); err == nil || !strings.Contains(out, "N must be a positive number") {
		t.Errorf("start 0: %v\n%s", err, out)
	}
}
