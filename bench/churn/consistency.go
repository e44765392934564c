package churn

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// published asks BIND (one UDP query per name, no dig process) for the
// representatives it names: the _sip._udp SRV targets with their A
// record and port (label -> ip:port), checking that _sip._tcp names the
// same, and the domain's A set.
func published(server, domain string) (map[string]string, []string, error) {
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	ask := func(name string, t uint16) ([]dns.RR, error) {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), t)
		r, _, err := c.Exchange(m, server)
		if err != nil {
			return nil, fmt.Errorf("churn: dns %s %s: %w", name, dns.TypeToString[t], err)
		}
		if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
			return nil, fmt.Errorf("churn: dns %s %s: %s", name, dns.TypeToString[t], dns.RcodeToString[r.Rcode])
		}
		return r.Answer, nil
	}
	srvSet := func(name string) (map[string]uint16, error) {
		rrs, err := ask(name, dns.TypeSRV)
		if err != nil {
			return nil, err
		}
		out := map[string]uint16{}
		for _, rr := range rrs {
			if s, ok := rr.(*dns.SRV); ok {
				out[strings.ToLower(s.Target)] = s.Port
			}
		}
		return out, nil
	}
	udp, err := srvSet("_sip._udp." + domain)
	if err != nil {
		return nil, nil, err
	}
	tcp, err := srvSet("_sip._tcp." + domain)
	if err != nil {
		return nil, nil, err
	}
	if fmt.Sprint(udp) != fmt.Sprint(tcp) {
		return nil, nil, fmt.Errorf("churn: _sip._udp SRV %v != _sip._tcp SRV %v", udp, tcp)
	}
	pub := map[string]string{}
	for target, port := range udp {
		as, err := ask(target, dns.TypeA)
		if err != nil {
			return nil, nil, err
		}
		var ips []string
		for _, rr := range as {
			if a, ok := rr.(*dns.A); ok {
				ips = append(ips, a.A.String())
			}
		}
		if len(ips) != 1 {
			return nil, nil, fmt.Errorf("churn: SRV target %s has A %v", target, ips)
		}
		label := strings.SplitN(target, ".", 2)[0]
		pub[label] = net.JoinHostPort(ips[0], strconv.Itoa(int(port)))
	}
	as, err := ask(domain, dns.TypeA)
	if err != nil {
		return nil, nil, err
	}
	var domainA []string
	for _, rr := range as {
		if a, ok := rr.(*dns.A); ok {
			domainA = append(domainA, a.A.String())
		}
	}
	sort.Strings(domainA)
	return pub, domainA, nil
}

// sample is one look at the fleet during an event: whether DNS, the ring
// and the replica counts are consistent (nil) or why not.
type sample struct {
	At                time.Time
	DNS, Ring, Copies error
}

func (s sample) ok() bool { return s.DNS == nil && s.Ring == nil && s.Copies == nil }

// look takes one sample of the live nodes (those the harness has not
// signalled; a node stopping counts as gone).
//
// DNS is consistent when every live node agrees on the representative set,
// the set has reps members, each is a live node at its SIP address, and
// BIND publishes exactly that set (SRV over UDP and TCP, each target's A,
// the domain's A). The ring is consistent when fleet.RingConsistent holds.
// The copies are when the live nodes together own aors records and hold
// (replicas-1)*aors replicas.
func look(live []*fleet.Proc, named, domain string, reps, replicas, aors int) sample {
	s := sample{At: time.Now()}
	sts := make([]fleet.Status, len(live))
	for i, p := range live {
		st, err := p.Status()
		if err != nil {
			err = fmt.Errorf("churn: status of %s: %w", p.Name, err)
			s.DNS, s.Ring, s.Copies = err, err, err
			return s
		}
		sts[i] = st
	}
	s.DNS = dnsConsistent(live, sts, named, domain, reps)
	s.Ring = fleet.RingConsistent(live)
	owned, replica := 0, 0
	for _, st := range sts {
		owned += st.Registrations.Owned
		replica += st.Registrations.Replica
	}
	if owned != aors || replica != (replicas-1)*aors {
		s.Copies = fmt.Errorf("churn: live nodes own %d and replicate %d records, want %d and %d",
			owned, replica, aors, (replicas-1)*aors)
	}
	return s
}

func dnsConsistent(live []*fleet.Proc, sts []fleet.Status, named, domain string, reps int) error {
	sipOf := map[string]string{}
	for _, p := range live {
		sipOf[p.Name] = p.SIP
	}
	agreed := ""
	for i, st := range sts {
		var set []string
		for _, r := range st.Representatives {
			set = append(set, r.Name+"="+r.SIP)
		}
		sort.Strings(set)
		s := strings.Join(set, ",")
		if i == 0 {
			agreed = s
		} else if s != agreed {
			return fmt.Errorf("churn: %s sees representatives {%s}, %s sees {%s}", live[i].Name, s, live[0].Name, agreed)
		}
		if i == 0 && len(set) != reps {
			return fmt.Errorf("churn: %d representatives {%s}, want %d", len(set), s, reps)
		}
	}
	for _, r := range sts[0].Representatives {
		if sip, ok := sipOf[r.Name]; !ok || sip != r.SIP {
			return fmt.Errorf("churn: representative %s=%s is not a live node", r.Name, r.SIP)
		}
	}
	pub, domainA, err := published(named, domain)
	if err != nil {
		return err
	}
	var got, ips []string
	for label, addr := range pub {
		got = append(got, label+"="+addr)
		h, _, _ := net.SplitHostPort(addr)
		ips = append(ips, h)
	}
	sort.Strings(got)
	sort.Strings(ips)
	if s := strings.Join(got, ","); s != agreed {
		return fmt.Errorf("churn: DNS publishes {%s}, the nodes agree on {%s}", s, agreed)
	}
	if strings.Join(domainA, ",") != strings.Join(ips, ",") {
		return fmt.Errorf("churn: %s A %v, want %v", domain, domainA, ips)
	}
	return nil
}

// settle times how long each check took to become true for good within
// a phase: the offset from start of the last sample at which it turned
// true, or -1 if it was false at the phase's last sample.
type settle struct{ DNS, Ring, Copies time.Duration }

func settleTimes(start time.Time, ss []sample) settle {
	last := func(get func(sample) error) time.Duration {
		if len(ss) == 0 || get(ss[len(ss)-1]) != nil {
			return -1
		}
		i := len(ss) - 1
		for i > 0 && get(ss[i-1]) == nil {
			i--
		}
		return max(ss[i].At.Sub(start), 0)
	}
	return settle{
		DNS:    last(func(s sample) error { return s.DNS }),
		Ring:   last(func(s sample) error { return s.Ring }),
		Copies: last(func(s sample) error { return s.Copies }),
	}
}
