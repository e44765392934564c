package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/dnsreport/bindtest"
)

// dnsFleet is a fleet of dsn-node processes reporting to a real BIND9.
type dnsFleet struct {
	*fleet
	bind  *bindtest.Server
	named string // host:port
	procs map[string]*proc
	seq   int
}

func startBIND(t *testing.T, domain string) *bindtest.Server {
	t.Helper()
	requireTool(t, "named")
	requireTool(t, "tsig-keygen")
	srv, err := bindtest.Start(bindtest.Config{Zones: []bindtest.Zone{
		{Origin: domain, Text: bindtest.MinimalZone(domain)},
		{Origin: "e164.arpa", Text: bindtest.MinimalZone("e164.arpa")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func newDNSFleet(t *testing.T, domain string, n int) *dnsFleet {
	t.Helper()
	requireTool(t, "dig")
	f := &dnsFleet{fleet: newFleet(t, domain), bind: startBIND(t, domain), procs: map[string]*proc{}}
	f.named = f.bind.Addr()
	for i := 0; i < n; i++ {
		f.add()
	}
	return f
}

// add starts one more node joined to the live ones.
func (f *dnsFleet) add() *proc {
	f.t.Helper()
	f.seq++
	name := fmt.Sprintf("sn%d", f.seq)
	var join []string
	for _, p := range f.live() {
		join = append(join, p.Cluster)
		if len(join) == 2 {
			break
		}
	}
	p := f.start(name, fmt.Sprintf("127.0.0.%d", 10+f.seq), join,
		"-dns-server", f.named, "-tsig-key-file", f.bind.KeyFile(), "-reps", "2")
	f.procs[name] = p
	return p
}

func (f *dnsFleet) live() []*proc {
	var out []*proc
	for _, p := range f.procs {
		if p.alive() {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// dig runs the real dig against BIND and returns the answer lines.
func (f *dnsFleet) dig(name, typ string) []string {
	f.t.Helper()
	host, port, _ := net.SplitHostPort(f.named)
	out, err := exec.Command(requireTool(f.t, "dig"), "+short", "+tries=1", "+time=2", "@"+host, "-p", port, name, typ).CombinedOutput()
	if err != nil {
		f.t.Fatalf("dig %s %s: %v\n%s", name, typ, err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, ";") {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return lines
}

// published returns the node labels in the _sip._udp SRV set, checking on
// the way that _sip._tcp matches and that every target has its A record.
func (f *dnsFleet) published() (map[string]string, error) {
	udp := f.dig("_sip._udp."+f.domain, "SRV")
	tcp := f.dig("_sip._tcp."+f.domain, "SRV")
	if strings.Join(udp, "|") != strings.Join(tcp, "|") {
		return nil, fmt.Errorf("udp SRV %v != tcp SRV %v", udp, tcp)
	}
	out := map[string]string{}
	for _, l := range udp {
		fs := strings.Fields(l)
		if len(fs) != 4 {
			return nil, fmt.Errorf("bad SRV line %q", l)
		}
		a := f.dig(fs[3], "A")
		if len(a) != 1 {
			return nil, fmt.Errorf("target %s has A %v", fs[3], a)
		}
		label := strings.SplitN(fs[3], ".", 2)[0]
		out[label] = net.JoinHostPort(a[0], fs[2])
	}
	return out, nil
}

// repsOK checks that exactly k representatives are published, that they
// are the set every live node agrees on, with their SIP addresses, and that
// the domain's A set is exactly their IPs.
func (f *dnsFleet) repsOK(k int) error {
	pub, err := f.published()
	if err != nil {
		return err
	}
	if len(pub) != k {
		return fmt.Errorf("%d published (%v), want %d", len(pub), pub, k)
	}
	var agreed string
	for _, p := range f.live() {
		st, err := p.status()
		if err != nil {
			return err
		}
		var names []string
		for _, r := range st.Representatives {
			names = append(names, r.Name+"="+r.SIP)
		}
		sort.Strings(names)
		s := strings.Join(names, ",")
		if agreed == "" {
			agreed = s
		} else if s != agreed {
			return fmt.Errorf("%s sees reps %s, others %s", p.Name, s, agreed)
		}
	}
	var pubs, ips []string
	for label, addr := range pub {
		pubs = append(pubs, label+"="+addr)
		h, _, _ := net.SplitHostPort(addr)
		ips = append(ips, h)
	}
	sort.Strings(pubs)
	sort.Strings(ips)
	if strings.Join(pubs, ",") != agreed {
		return fmt.Errorf("published %v, nodes agree on %s", pubs, agreed)
	}
	if got := f.dig(f.domain, "A"); strings.Join(got, ",") != strings.Join(ips, ",") {
		return fmt.Errorf("%s A = %v, want %v", f.domain, got, ips)
	}
	return nil
}

// reps returns the live representative processes.
func (f *dnsFleet) reps() []*proc {
	pub, _ := f.published()
	var out []*proc
	for label := range pub {
		if p, ok := f.procs[label]; ok && p.alive() {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (f *dnsFleet) isPublished(p *proc) bool {
	pub, err := f.published()
	if err != nil {
		return true
	}
	_, ok := pub[p.Name]
	host, _, _ := net.SplitHostPort(p.SIP)
	for _, a := range f.dig(f.domain, "A") {
		if a == host {
			ok = true
		}
	}
	return ok || len(f.dig(p.Name+"."+f.domain, "A")) > 0
}

// metric sums a counter over the live nodes' /metrics.
func (f *dnsFleet) metric(name, label string) float64 { return f.metricExcept(nil, name, label) }

// metricExcept sums a counter over the live nodes other than skip.
func (f *dnsFleet) metricExcept(skip *proc, name, label string) float64 {
	var sum float64
	for _, p := range f.live() {
		if p == skip {
			continue
		}
		res, err := http.Get("http://" + p.Admin + "/metrics")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			l := sc.Text()
			if strings.HasPrefix(l, name) && strings.Contains(l, label) {
				fs := strings.Fields(l)
				v, _ := strconv.ParseFloat(fs[len(fs)-1], 64)
				sum += v
			}
		}
		res.Body.Close()
	}
	return sum
}

// failedDeletes sums the DNS delete attempts that did not succeed.
func (f *dnsFleet) failedDeletes() float64 {
	return f.metric("dsn_dns_updates_total", `op="delete"`) - f.metric("dsn_dns_updates_total", `op="delete",result="ok"`)
}

// watched checks that every representative is watched by three distinct
// live nodes, one in each role (predecessor, successor, backup).
func (f *dnsFleet) watched() error {
	roles := map[string]map[string]string{} // rep -> role -> watcher
	for _, p := range f.live() {
		st, err := p.status()
		if err != nil {
			return err
		}
		if st.DNS == nil {
			continue
		}
		for _, w := range st.DNS.Watching {
			if !w.InSet {
				continue
			}
			if roles[w.Peer.Name] == nil {
				roles[w.Peer.Name] = map[string]string{}
			}
			for _, r := range w.Roles {
				roles[w.Peer.Name][r] = p.Name
			}
		}
	}
	for _, rep := range f.reps() {
		for _, r := range []string{"predecessor", "successor", "backup"} {
			if roles[rep.Name][r] == "" {
				return fmt.Errorf("%s has no %s watching it yet (%v)", rep.Name, r, roles[rep.Name])
			}
		}
	}
	return nil
}

// settled waits until k representatives are published, agreed on and
// fully watched.
func (f *dnsFleet) settled(t *testing.T, k int) {
	t.Helper()
	eventually(t, 10*time.Second, "representatives published and watched", func() error {
		if err := f.repsOK(k); err != nil {
			return err
		}
		return f.watched()
	})
}

func successorOf(t *testing.T, p *proc) string {
	st, err := p.status()
	if err != nil || len(st.Successors) == 0 {
		t.Fatalf("status of %s: %v", p.Name, err)
	}
	return st.Successors[0].Name
}

// Issue 4 acceptance 1-5 against a real BIND9.
func TestRepresentativesInBIND(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const domain = "dsn.test"
	f := newDNSFleet(t, domain, 5)

	// 1. Exactly K = 2 representatives are published within seconds,
	// and every node agrees on them.
	eventually(t, 10*time.Second, "2 representatives published", func() error { return f.repsOK(2) })

	t.Run("unsigned and wrongly signed updates are refused", func(t *testing.T) {
		// nsupdate without a key: BIND refuses.
		host, port, _ := net.SplitHostPort(f.named)
		script := fmt.Sprintf("server %s %s\nzone %s\nupdate add evil.%s 30 A 10.6.6.6\nsend\n", host, port, domain, domain)
		cmd := exec.Command(requireTool(t, "nsupdate"))
		cmd.Stdin = strings.NewReader(script)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "REFUSED") {
			t.Fatalf("unsigned nsupdate: %v %s", err, out)
		}
		// A node with the wrong secret under the right key name: refused,
		// and the node says so clearly.
		wrong := filepath.Join(f.dir, "wrong.key")
		keyName := strings.TrimSuffix(f.bind.KeyName(), ".")
		os.WriteFile(wrong, []byte(fmt.Sprintf("key %q {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXRoYXQtYmluZC1kb2VzLW5vdC1rbm93LTEyMzQ=\";\n};\n", keyName)), 0o600)
		lone := f.fleet.start("lone", "127.0.0.99", nil, "-dns-server", f.named, "-tsig-key-file", wrong, "-reps", "1")
		defer lone.kill()
		eventually(t, 10*time.Second, "NOTAUTH logged", func() error {
			log := lone.logTail(200)
			if strings.Contains(log, "NOTAUTH") && strings.Contains(log, "key") {
				return nil
			}
			return fmt.Errorf("no NOTAUTH in log yet")
		})
		if len(f.dig("lone."+domain, "A")) != 0 {
			t.Fatal("wrongly signed update was applied")
		}
	})

	t.Run("SIGTERM withdraws before exit", func(t *testing.T) {
		rep := f.reps()[0]
		if err := rep.term(15 * time.Second); err != nil {
			t.Fatal(err)
		}
		// The process has exited: its records must already be gone.
		if f.isPublished(rep) {
			t.Fatalf("%s still published after graceful exit", rep.Name)
		}
		eventually(t, 10*time.Second, "a new representative", func() error { return f.repsOK(2) })
	})

	t.Run("kill -9 a representative", func(t *testing.T) {
		f.add()
		f.settled(t, 2)
		rep := f.reps()[0]
		// Counters are summed over live processes: take the baseline
		// without the victim, whose counters die with it.
		before := map[string]float64{}
		for _, role := range []string{"predecessor", "successor", "backup"} {
			before[role] = f.metricExcept(rep, "dsn_dns_deletions_sent_total", `role="`+role+`"`)
		}
		killed := time.Now()
		rep.kill()
		eventually(t, 5*time.Second, "records of the killed rep gone", func() error {
			if f.isPublished(rep) {
				return fmt.Errorf("%s still published", rep.Name)
			}
			return nil
		})
		t.Logf("DNS forgot %s %.2fs after kill -9", rep.Name, time.Since(killed).Seconds())
		eventually(t, 10*time.Second, "replacement published", func() error { return f.repsOK(2) })
		t.Logf("replacement published %.2fs after kill -9", time.Since(killed).Seconds())
		// Each watcher sends its deletion independently.
		eventually(t, 5*time.Second, "deletions from predecessor, successor and backup", func() error {
			for _, role := range []string{"predecessor", "successor", "backup"} {
				if got := f.metric("dsn_dns_deletions_sent_total", `role="`+role+`"`); got <= before[role] {
					return fmt.Errorf("no deletion sent by the %s (metric %v -> %v)", role, before[role], got)
				}
			}
			return nil
		})
	})

	t.Run("kill -9 a representative and its successor together", func(t *testing.T) {
		f.add()
		f.add()
		f.settled(t, 2)
		rep := f.reps()[0]
		succ := f.procs[successorOf(t, rep)]
		rep.kill()
		succ.kill()
		eventually(t, 8*time.Second, "records gone", func() error {
			if f.isPublished(rep) {
				return fmt.Errorf("%s still published", rep.Name)
			}
			return nil
		})
		eventually(t, 15*time.Second, "replacement published", func() error { return f.repsOK(2) })
	})

	t.Run("stale records removed after a DNS outage", func(t *testing.T) {
		f.add()
		f.settled(t, 2)
		rep := f.reps()[0]
		if err := f.bind.Stop(); err != nil {
			t.Fatal(err)
		}
		failedBefore := f.failedDeletes()
		rep.kill()
		// Wait until the watchers detected the failure and their deletes
		// failed against the stopped DNS.
		eventually(t, 10*time.Second, "failed delete attempts while DNS is down", func() error {
			if f.failedDeletes() <= failedBefore {
				return fmt.Errorf("no failed delete yet")
			}
			return nil
		})
		if err := f.bind.Start(); err != nil {
			t.Fatal(err)
		}
		restarted := time.Now()
		eventually(t, 15*time.Second, "stale records removed", func() error {
			if f.isPublished(rep) {
				return fmt.Errorf("%s still published", rep.Name)
			}
			return nil
		})
		t.Logf("stale records gone %.2fs after BIND came back", time.Since(restarted).Seconds())
		eventually(t, 15*time.Second, "replacement published", func() error { return f.repsOK(2) })
	})
}
