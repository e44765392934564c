package fleet

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dsn-ims/dsn/dnsreport/bindtest"
)

// DNSFleet is a fleet of dsn-node processes reporting to a real BIND9.
type DNSFleet struct {
	*Fleet
	BIND  *bindtest.Server
	Named string // host:port
	Procs map[string]*Proc
	seq   int
}

func StartBIND(t TB, domain string) *bindtest.Server {
	t.Helper()
	RequireTool(t, "named")
	RequireTool(t, "tsig-keygen")
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

func NewDNS(t TB, domain string, n int) *DNSFleet {
	t.Helper()
	RequireTool(t, "dig")
	f := &DNSFleet{Fleet: New(t, domain), BIND: StartBIND(t, domain), Procs: map[string]*Proc{}}
	f.Named = f.BIND.Addr()
	for i := 0; i < n; i++ {
		f.Add()
	}
	return f
}

// Restart starts a stopped node again under the same name and IP (new
// ports), joined to the live ones.
func (f *DNSFleet) Restart(p *Proc) *Proc {
	f.t.Helper()
	if p.Alive() {
		p.Kill()
	}
	var join []string
	for _, q := range f.Live() {
		join = append(join, q.Cluster)
		if len(join) == 2 {
			break
		}
	}
	np := f.Start(p.Name, p.IP, join, "-dns-server", f.Named, "-tsig-key-file", f.BIND.KeyFile(), "-reps", "2")
	f.Procs[p.Name] = np
	return np
}

// add starts one more node joined to the live ones.
func (f *DNSFleet) Add() *Proc {
	f.t.Helper()
	f.seq++
	name := fmt.Sprintf("sn%d", f.seq)
	var join []string
	for _, p := range f.Live() {
		join = append(join, p.Cluster)
		if len(join) == 2 {
			break
		}
	}
	p := f.Start(name, fmt.Sprintf("127.0.0.%d", 10+f.seq), join,
		"-dns-server", f.Named, "-tsig-key-file", f.BIND.KeyFile(), "-reps", "2")
	f.Procs[name] = p
	return p
}

func (f *DNSFleet) Live() []*Proc {
	var out []*Proc
	for _, p := range f.Procs {
		if p.Alive() {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// dig runs the real dig against BIND and returns the answer lines.
func (f *DNSFleet) Dig(name, typ string) []string {
	f.t.Helper()
	host, port, _ := net.SplitHostPort(f.Named)
	out, err := exec.Command(RequireTool(f.t, "dig"), "+short", "+tries=1", "+time=2", "@"+host, "-p", port, name, typ).CombinedOutput()
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
func (f *DNSFleet) Published() (map[string]string, error) {
	udp := f.Dig("_sip._udp."+f.Domain, "SRV")
	tcp := f.Dig("_sip._tcp."+f.Domain, "SRV")
	if strings.Join(udp, "|") != strings.Join(tcp, "|") {
		return nil, fmt.Errorf("udp SRV %v != tcp SRV %v", udp, tcp)
	}
	out := map[string]string{}
	for _, l := range udp {
		fs := strings.Fields(l)
		if len(fs) != 4 {
			return nil, fmt.Errorf("bad SRV line %q", l)
		}
		a := f.Dig(fs[3], "A")
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
func (f *DNSFleet) RepsOK(k int) error {
	pub, err := f.Published()
	if err != nil {
		return err
	}
	if len(pub) != k {
		return fmt.Errorf("%d published (%v), want %d", len(pub), pub, k)
	}
	var agreed string
	for _, p := range f.Live() {
		st, err := p.Status()
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
	if got := f.Dig(f.Domain, "A"); strings.Join(got, ",") != strings.Join(ips, ",") {
		return fmt.Errorf("%s A = %v, want %v", f.Domain, got, ips)
	}
	return nil
}

// reps returns the live representative processes. Published fails while
// an UPDATE lands between its queries (the UDP and TCP SRV sets differ for
// a moment); it is asked again until it answers.
func (f *DNSFleet) Reps() []*Proc {
	f.t.Helper()
	var pub map[string]string
	Eventually(f.t, 10*time.Second, "a consistent SRV answer", func() (err error) {
		pub, err = f.Published()
		return err
	})
	var out []*Proc
	for label := range pub {
		if p, ok := f.Procs[label]; ok && p.Alive() {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (f *DNSFleet) IsPublished(p *Proc) bool {
	pub, err := f.Published()
	if err != nil {
		return true
	}
	_, ok := pub[p.Name]
	host, _, _ := net.SplitHostPort(p.SIP)
	for _, a := range f.Dig(f.Domain, "A") {
		if a == host {
			ok = true
		}
	}
	return ok || len(f.Dig(p.Name+"."+f.Domain, "A")) > 0
}

// metric sums a counter over the live nodes' /metrics.
func (f *DNSFleet) Metric(name, label string) float64 { return f.MetricExcept(nil, name, label) }

// metricExcept sums a counter over the live nodes other than skip.
func (f *DNSFleet) MetricExcept(skip *Proc, name, label string) float64 {
	var sum float64
	for _, p := range f.Live() {
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
func (f *DNSFleet) FailedDeletes() float64 {
	return f.Metric("dsn_dns_updates_total", `op="delete"`) - f.Metric("dsn_dns_updates_total", `op="delete",result="ok"`)
}

// watched checks that every representative is watched by three distinct
// live nodes, one in each role (predecessor, successor, backup).
func (f *DNSFleet) Watched() error {
	roles := map[string]map[string]string{} // rep -> role -> watcher
	for _, p := range f.Live() {
		st, err := p.Status()
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
	for _, rep := range f.Reps() {
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
func (f *DNSFleet) Settled(t TB, k int) {
	t.Helper()
	Eventually(t, 10*time.Second, "representatives published and watched", func() error {
		if err := f.RepsOK(k); err != nil {
			return err
		}
		return f.Watched()
	})
}

// Stable waits until k representatives are published, agreed on and
// watched, and have stayed the same for d (a restarted node may still be
// about to reclaim its slot when Settled first holds).
func (f *DNSFleet) Stable(t TB, k int, d time.Duration) {
	t.Helper()
	f.Settled(t, k)
	deadline := time.Now().Add(30 * time.Second)
	var since time.Time
	last := ""
	for time.Now().Before(deadline) {
		cur := ""
		if f.RepsOK(k) == nil {
			pub, _ := f.Published()
			for _, p := range f.Reps() {
				cur += p.Name + "=" + pub[p.Name] + ","
			}
		}
		switch {
		case cur == "" || cur != last:
			last, since = cur, time.Now()
		case time.Since(since) >= d:
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("representative set not stable for %s within 30 s (last %q)", d, last)
}

func SuccessorOf(t TB, p *Proc) string {
	st, err := p.Status()
	if err != nil || len(st.Successors) == 0 {
		t.Fatalf("status of %s: %v", p.Name, err)
	}
	return st.Successors[0].Name
}
