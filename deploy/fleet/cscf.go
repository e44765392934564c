package fleet

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// CSCF finds the DSN the way an IMS CSCF does (RFC 3263 section 4 for a
// sip: URI without port or transport and no NAPTR): SRV
// _sip._udp.<domain>, ordered by priority and then by weighted random
// choice (RFC 2782), then the A record of each target. It asks one DNS
// server with plain miekg/dns queries and caches nothing, so every call
// sees what DNS serves at that moment. Not safe for concurrent use (the
// random source).
type CSCF struct {
	Server string
	rng    *rand.Rand
	c      *dns.Client
}

// NewCSCF asks server (host:port); seed fixes the weighted choice.
func NewCSCF(server string, seed uint64) *CSCF {
	return &CSCF{Server: server, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)),
		c: &dns.Client{Net: "udp", Timeout: time.Second}}
}

// Resolve returns the SIP UDP addresses of domain in the order a CSCF
// tries them.
func (c *CSCF) Resolve(domain string) ([]netip.AddrPort, error) {
	rrs, err := c.query("_sip._udp."+domain, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	var srvs []*dns.SRV
	for _, rr := range rrs {
		if s, ok := rr.(*dns.SRV); ok && s.Target != "." {
			srvs = append(srvs, s)
		}
	}
	var out []netip.AddrPort
	for _, s := range c.order(srvs) {
		as, err := c.query(s.Target, dns.TypeA)
		if err != nil {
			return nil, err
		}
		for _, rr := range as {
			if a, ok := rr.(*dns.A); ok {
				ip, _ := netip.AddrFromSlice(a.A.To4())
				out = append(out, netip.AddrPortFrom(ip, s.Port))
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("cscf: %s: no SIP server in DNS", domain)
	}
	return out, nil
}

// order sorts by priority; within a priority it picks at random in
// proportion to weight+1 (RFC 2782's weighted choice, with weight 0 given
// a small chance instead of RFC 2782's running-sum rule).
func (c *CSCF) order(srvs []*dns.SRV) []*dns.SRV {
	sort.SliceStable(srvs, func(i, j int) bool { return srvs[i].Priority < srvs[j].Priority })
	var out []*dns.SRV
	for start := 0; start < len(srvs); {
		end := start
		for end < len(srvs) && srvs[end].Priority == srvs[start].Priority {
			end++
		}
		group := append([]*dns.SRV(nil), srvs[start:end]...)
		for len(group) > 0 {
			sum := 0
			for _, s := range group {
				sum += int(s.Weight) + 1
			}
			pick, i := c.rng.IntN(sum), 0
			for ; pick >= int(group[i].Weight)+1; i++ {
				pick -= int(group[i].Weight) + 1
			}
			out = append(out, group[i])
			group = append(group[:i], group[i+1:]...)
		}
		start = end
	}
	return out
}

func (c *CSCF) query(name string, qtype uint16) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.c.Exchange(m, c.Server)
	if err != nil {
		return nil, fmt.Errorf("cscf: %s %s: %w", name, dns.TypeToString[qtype], err)
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("cscf: %s %s: %s", name, dns.TypeToString[qtype], dns.RcodeToString[r.Rcode])
	}
	return r.Answer, nil
}

// Contains reports whether addr is among addrs.
func Contains(addrs []netip.AddrPort, addr string) bool {
	for _, a := range addrs {
		if strings.EqualFold(a.String(), addr) {
			return true
		}
	}
	return false
}
