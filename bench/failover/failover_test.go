// Package failover is the product's headline benchmark: how fast DNS
// forgets a crashed representative, and that a quiet fleet never removes a
// live one. It runs real dsn-node processes against a real BIND9.
//
//	go test -count=1 -v ./bench/failover -args -trials=10 -quiet=5m
//
// CI runs the short default (3 trials, 20 s quiet).
package failover

import (
	"flag"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

var (
	trials = flag.Int("trials", 3, "kill -9 trials")
	quiet  = flag.Duration("quiet", 20*time.Second, "length of the quiet run (no failures) checked for false removals")
)

const domain = "dsn.bench"

// addrsPublished asks BIND directly (one UDP query per name, no process
// start-up as with dig) whether ip appears in the domain's A set or the SRV
// targets' addresses.
func addrsPublished(server, ip string) (bool, error) {
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	ask := func(name string, t uint16) ([]dns.RR, error) {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), t)
		r, _, err := c.Exchange(m, server)
		if err != nil {
			return nil, err
		}
		return r.Answer, nil
	}
	as, err := ask(domain, dns.TypeA)
	if err != nil {
		return false, err
	}
	for _, rr := range as {
		if a, ok := rr.(*dns.A); ok && a.A.String() == ip {
			return true, nil
		}
	}
	srvs, err := ask("_sip._udp."+domain, dns.TypeSRV)
	if err != nil {
		return false, err
	}
	for _, rr := range srvs {
		s, ok := rr.(*dns.SRV)
		if !ok {
			continue
		}
		ts, err := ask(s.Target, dns.TypeA)
		if err != nil {
			return false, err
		}
		for _, t := range ts {
			if a, ok := t.(*dns.A); ok && a.A.String() == ip {
				return true, nil
			}
		}
	}
	return false, nil
}

func stats(ds []time.Duration) string {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return fmt.Sprintf("min %.2fs  median %.2fs  max %.2fs  (n=%d)",
		s[0].Seconds(), s[len(s)/2].Seconds(), s[len(s)-1].Seconds(), len(s))
}

func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process benchmark")
	}
	f := fleet.NewDNS(t, domain, 5)
	f.Stable(t, 2, 2*time.Second)

	var forget, replace []time.Duration
	for i := 0; i < *trials; i++ {
		reps := f.Reps()
		if len(reps) == 0 {
			t.Fatalf("trial %d: no live representative published", i)
		}
		rep := reps[0]
		ip, _, _ := net.SplitHostPort(rep.SIP)
		t0 := time.Now()
		rep.Kill()
		var gone time.Duration
		for time.Since(t0) < 30*time.Second {
			pub, err := addrsPublished(f.Named, ip)
			if err == nil && !pub {
				gone = time.Since(t0)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if gone == 0 {
			t.Fatalf("trial %d: %s still published 30 s after kill -9", i, rep.Name)
		}
		if gone > 3*time.Second {
			t.Errorf("trial %d: DNS took %.2fs to forget %s (target max 3 s)", i, gone.Seconds(), rep.Name)
		}
		fleet.Eventually(t, 30*time.Second, "replacement published", func() error { return f.RepsOK(2) })
		repl := time.Since(t0)
		forget = append(forget, gone)
		replace = append(replace, repl)
		t.Logf("trial %d: killed %s; DNS forgot it after %.2fs, replacement published after %.2fs", i, rep.Name, gone.Seconds(), repl.Seconds())
		// Restart the node under the same name (as an operator's
		// supervisor would) and wait until the fleet is settled again.
		f.Restart(rep)
		f.Stable(t, 2, 2*time.Second)
	}
	t.Logf("time until DNS no longer returns the killed representative: %s", stats(forget))
	t.Logf("time until a replacement is published:                       %s", stats(replace))

	// Quiet run: no failures; no live representative may be removed.
	// Start once the set has not changed for 3 election periods (the last
	// restarted node may reclaim its slot, a legitimate hand-over).
	f.Stable(t, 2, 3*time.Second)
	before := map[string]float64{}
	roles := []string{"predecessor", "successor", "backup", "reconcile"}
	for _, r := range roles {
		before[r] = f.Metric("dsn_dns_deletions_sent_total", `role="`+r+`"`)
	}
	reps := f.Reps()
	end := time.Now().Add(*quiet)
	polls := 0
	for time.Now().Before(end) {
		for _, p := range reps {
			ip, _, _ := net.SplitHostPort(p.SIP)
			pub, err := addrsPublished(f.Named, ip)
			if err != nil {
				t.Fatalf("quiet run: DNS query failed: %v", err)
			}
			if !pub {
				t.Fatalf("quiet run: live representative %s was removed from DNS", p.Name)
			}
		}
		polls++
		time.Sleep(100 * time.Millisecond)
	}
	var removed []string
	for _, r := range roles {
		if d := f.Metric("dsn_dns_deletions_sent_total", `role="`+r+`"`) - before[r]; d > 0 {
			removed = append(removed, fmt.Sprintf("%s=%v", r, d))
		}
	}
	if len(removed) > 0 {
		t.Fatalf("quiet run: deletions sent with no failure: %s", strings.Join(removed, ", "))
	}
	t.Logf("quiet run of %s: %d DNS polls, 0 false removals of live representatives", *quiet, polls)
}
