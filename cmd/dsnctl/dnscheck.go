package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/node"
	"github.com/dsn-ims/dsn/node/reps"
)

// dnsQueryTimeout bounds one DNS exchange (the whole command is bounded
// by -timeout).
const dnsQueryTimeout = 3 * time.Second

func dnsCheckCommand() *command {
	var (
		domain, ignore string
		axfr           bool
	)
	return &command{
		name:    "dns-check",
		summary: "compare what DNS publishes with the live representatives; report OK, STALE, MISSING",
		help: `Reads what the DNS server (the first of -dns-server) publishes for the
DSN domain: the SRV records _sip._udp.<domain> and _sip._tcp.<domain>,
the A/AAAA of every SRV target and of <domain> itself. Compares them with
the representative set of the node at -admin (GET /v1/status: name and
SIP address of each representative), where representative L with SIP
address IP:PORT should have
    _sip._udp.<domain>  SRV  PORT L.<zone>.     (and _sip._tcp)
    L.<zone>.           A/AAAA IP
    <domain>.           A/AAAA IP
and reports every entry as OK (published and expected), STALE (published
but not a live representative: a crashed node nobody removed, a static
entry) or MISSING (a representative that is not published).
Exit 0 when DNS and the ring agree, 1 when anything is stale or missing,
2 when the node or the DNS server cannot be asked.

The zone is -dns-zone, by default the node's domain. With -axfr the zone
is read in one AXFR (needs -tsig-key-file; the server must allow transfer
to that key) instead of by queries. A TSIG key, when given, also signs
the queries and every reply must verify.`,
		flags: func(fs *flag.FlagSet, _ *globals) {
			fs.StringVar(&domain, "domain", domain, "DSN `domain` to check (default: the domain the node reports)")
			fs.BoolVar(&axfr, "axfr", axfr, "read the zone by AXFR (signed with -tsig-key-file) instead of queries")
			fs.StringVar(&ignore, "ignore", ignore, "node `labels` (comma list) of static SRV targets that are not representatives; their entries are shown as IGNORED")
		},
		run: func(ctx context.Context, e *env, _ []string) (result, error) {
			return dnsCheck(ctx, e, dnsCheckOptions{domain: domain, axfr: axfr, ignore: splitList(ignore)})
		},
	}
}

type dnsCheckOptions struct {
	domain string
	axfr   bool
	ignore []string
}

// dnsRep is a representative with the records it should have.
type dnsRep struct {
	Name    string `json:"name"`
	SIP     string `json:"sip"`
	DNSName string `json:"dns_name"`

	addr netip.AddrPort
}

// dnsEntry is one DNS record and its verdict.
type dnsEntry struct {
	State string `json:"state"` // ok, stale, missing, ignored
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"` // A/AAAA: the address; SRV: "port target"
	Node  string `json:"node,omitempty"`
}

// Entry states.
const (
	stateOK      = "ok"
	stateStale   = "stale"
	stateMissing = "missing"
	stateIgnored = "ignored"
)

// dnsCheckResult is the outcome of dns-check.
type dnsCheckResult struct {
	Server          string     `json:"server"`
	Source          string     `json:"source"` // "query" or "axfr"
	Zone            string     `json:"zone"`
	Domain          string     `json:"domain"`
	Node            string     `json:"node"`
	Representatives []dnsRep   `json:"representatives"`
	Entries         []dnsEntry `json:"entries"`
	OK              int        `json:"ok"`
	Stale           int        `json:"stale"`
	Missing         int        `json:"missing"`
	Ignored         int        `json:"ignored"`
	Consistent      bool       `json:"consistent"`
}

func dnsCheck(ctx context.Context, e *env, o dnsCheckOptions) (result, error) {
	servers, key, err := e.g.dnsSetup(e.stderr)
	if err != nil {
		return nil, err
	}
	if o.axfr && key == nil {
		return nil, usageErrorf("-axfr needs -tsig-key-file: zone transfers are only allowed to a key")
	}
	st, err := fetchStatus(ctx, e.g.admin)
	if err != nil {
		return nil, err
	}
	domain := cmp.Or(o.domain, st.Domain)
	if domain == "" {
		return nil, usageErrorf("the node reports no domain; give -domain")
	}
	if _, ok := dns.IsDomainName(domain); !ok {
		return nil, usageErrorf("domain %q is not a domain name", domain)
	}
	domain = dns.CanonicalName(domain)
	zone := dns.CanonicalName(cmp.Or(e.g.dnsZone, domain))
	if !dns.IsSubDomain(zone, domain) {
		return nil, usageErrorf("domain %s is not inside -dns-zone %s", domain, zone)
	}
	live, err := repsWithAddrs(st, zone)
	if err != nil {
		return nil, err
	}
	res := &dnsCheckResult{Server: servers[0], Source: "query", Zone: zone, Domain: domain, Node: st.Name, Representatives: live}
	var pub dnsreport.Published
	if o.axfr {
		res.Source = "axfr"
		rrs, err := dnsreport.Transfer(ctx, servers[0], zone, key, dnsQueryTimeout)
		if err != nil {
			return nil, withCode(exitUsage, fmt.Errorf("AXFR %s from %s: %w", zone, servers[0], err))
		}
		pub = reps.PublishedFromZone(rrs, zone, domain)
	} else {
		ex := dnsreport.NewNetExchanger(dnsQueryTimeout, key)
		if pub, err = dnsreport.ReadPublished(ctx, ex, servers[0], domain); err != nil {
			return nil, withCode(exitUsage, fmt.Errorf("read %s from %s: %w", domain, servers[0], err))
		}
	}
	res.Entries = compareDNS(live, pub, domain, zone, o.ignore)
	res.count()
	return res, nil
}

// repsWithAddrs takes the representatives from the status and computes
// the DNS name each publishes.
func repsWithAddrs(st node.Status, zone string) ([]dnsRep, error) {
	out := []dnsRep{}
	for _, p := range st.Representatives {
		if p.SIP == "" {
			return nil, usageErrorf("node %s lists representative %s without a SIP address in /v1/status; dns-check cannot know what it should publish (upgrade the node)", st.Name, p.Name)
		}
		ap, err := netip.ParseAddrPort(p.SIP)
		if err != nil || ap.Addr().IsUnspecified() || ap.Port() == 0 {
			return nil, usageErrorf("representative %s has SIP address %q; want a concrete ip:port (its -sip-advertise)", p.Name, p.SIP)
		}
		label, err := dnsreport.NodeLabel(p.Name)
		if err != nil {
			return nil, usageErrorf("representative %s: %v", p.Name, err)
		}
		out = append(out, dnsRep{Name: p.Name, SIP: p.SIP, DNSName: dns.CanonicalName(label + "." + zone),
			addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())})
	}
	return out, nil
}

// rrRef identifies a record for the comparison (SRV priority and weight
// and every TTL are left out).
type rrRef struct{ name, typ, value string }

func addrType(a netip.Addr) string {
	if a.Is4() {
		return "A"
	}
	return "AAAA"
}

func addrRef(name string, a netip.Addr) rrRef {
	return rrRef{name: name, typ: addrType(a), value: a.String()}
}

func srvRef(name string, port uint16, target string) rrRef {
	return rrRef{name: name, typ: "SRV", value: fmt.Sprintf("%d %s", port, dns.CanonicalName(target))}
}

// compareDNS sorts every expected and published record into ok, stale,
// missing or ignored. Pure: no I/O.
func compareDNS(reps []dnsRep, pub dnsreport.Published, domain, zone string, ignore []string) []dnsEntry {
	udp, tcp := "_sip._udp."+domain, "_sip._tcp."+domain
	expected := map[rrRef]string{} // -> representative name
	for _, r := range reps {
		for _, ref := range []rrRef{
			srvRef(udp, r.addr.Port(), r.DNSName),
			srvRef(tcp, r.addr.Port(), r.DNSName),
			addrRef(r.DNSName, r.addr.Addr()),
			addrRef(domain, r.addr.Addr()),
		} {
			expected[ref] = r.Name
		}
	}
	// Who a published name or address belongs to.
	byDNSName := map[string]string{}
	byAddr := map[netip.Addr]string{}
	for _, r := range reps {
		byDNSName[r.DNSName] = r.Name
		byAddr[r.addr.Addr()] = r.Name
	}
	ignored := map[string]bool{}
	ignoredAddr := map[netip.Addr]bool{}
	for _, l := range ignore {
		ignored[dns.CanonicalName(strings.TrimSuffix(l, ".")+"."+zone)] = true
	}
	for t, addrs := range pub.Targets {
		if ignored[t] {
			for _, a := range addrs {
				ignoredAddr[a] = true
			}
		}
	}
	var out []dnsEntry
	seen := map[rrRef]bool{}
	publish := func(ref rrRef, owner string, isIgnored bool) {
		if seen[ref] {
			return
		}
		seen[ref] = true
		e := dnsEntry{Name: ref.name, Type: ref.typ, Value: ref.value, Node: owner}
		switch n, ok := expected[ref]; {
		case ok:
			e.State, e.Node = stateOK, n
		case isIgnored:
			e.State = stateIgnored
		default:
			e.State = stateStale
		}
		out = append(out, e)
	}
	ownerOf := func(target string) string {
		if n, ok := byDNSName[target]; ok {
			return n
		}
		if dns.IsSubDomain(zone, target) && target != zone {
			return dns.SplitDomainName(target)[0]
		}
		return ""
	}
	for _, set := range []struct {
		name string
		srvs []*dns.SRV
	}{{udp, pub.UDP}, {tcp, pub.TCP}} {
		for _, s := range set.srvs {
			t := dns.CanonicalName(s.Target)
			publish(srvRef(set.name, s.Port, t), ownerOf(t), ignored[t])
		}
	}
	for t, addrs := range pub.Targets {
		for _, a := range addrs {
			publish(addrRef(t, a), ownerOf(t), ignored[t])
		}
	}
	for _, a := range pub.DomainAddrs {
		publish(addrRef(domain, a), byAddr[a], ignoredAddr[a])
	}
	for ref, n := range expected {
		if !seen[ref] {
			out = append(out, dnsEntry{State: stateMissing, Name: ref.name, Type: ref.typ, Value: ref.value, Node: n})
		}
	}
	slices.SortFunc(out, func(a, b dnsEntry) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Type, b.Type), cmp.Compare(a.Value, b.Value))
	})
	return out
}

func (r *dnsCheckResult) count() {
	r.OK, r.Stale, r.Missing, r.Ignored = 0, 0, 0, 0
	for _, e := range r.Entries {
		switch e.State {
		case stateOK:
			r.OK++
		case stateStale:
			r.Stale++
		case stateMissing:
			r.Missing++
		case stateIgnored:
			r.Ignored++
		}
	}
	r.Consistent = r.Stale == 0 && r.Missing == 0
}

func (r *dnsCheckResult) exitCode() int {
	if r.Consistent {
		return exitOK
	}
	return exitProblem
}

func (r *dnsCheckResult) writeTable(w io.Writer) error {
	fmt.Fprintf(w, "DNS %s (%s) for domain %s, zone %s; representatives seen by %s:", r.Server, r.Source, r.Domain, r.Zone, r.Node)
	if len(r.Representatives) == 0 {
		fmt.Fprint(w, " none")
	}
	for _, rep := range r.Representatives {
		fmt.Fprintf(w, " %s (%s)", rep.Name, rep.SIP)
	}
	fmt.Fprint(w, "\n\n")
	if len(r.Entries) > 0 {
		t := newTable("STATE", "NAME", "TYPE", "VALUE", "NODE")
		for _, e := range r.Entries {
			t.add(strings.ToUpper(e.State), e.Name, e.Type, e.Value, e.Node)
		}
		if err := t.write(w); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	verdict := "consistent"
	if !r.Consistent {
		verdict = "INCONSISTENT"
	}
	_, err := fmt.Fprintf(w, "%s: %d ok, %d stale, %d missing, %d ignored\n", verdict, r.OK, r.Stale, r.Missing, r.Ignored)
	if r.Stale > 0 {
		fmt.Fprintln(w, "stale entries: published for nodes that are not live representatives; the fleet's reconciliation removes them, or delete them by hand (nsupdate)")
	}
	if r.Missing > 0 {
		fmt.Fprintln(w, "missing entries: a representative is not published yet; check its log for dnsreport errors (TSIG key, update-policy)")
	}
	return err
}
