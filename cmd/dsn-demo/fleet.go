package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/dnsreport/dnsserver"
	"github.com/dsn-ims/dsn/node"
)

// fleetConfig is the shape of the demo fleet.
type fleetConfig struct {
	Nodes int
	Reps  int
	// Domain is the DSN SIP domain; the embedded DNS server serves it as a
	// zone next to e164.arpa.
	Domain string
	// FirstIP is the address of sn1; node i listens on FirstIP+i-1.
	FirstIP netip.Addr
	// SIPPort and ClusterPort are tried first on every node's address;
	// 0, or a port that is taken, means a free one.
	SIPPort, ClusterPort int
}

// member is one node of the fleet.
type member struct {
	Name    string
	IP      string
	SIP     string // advertised SIP address
	Cluster string
	Node    *node.Node
	// Killed is set by the failover step before the node is closed; the
	// node's methods are not called after that.
	Killed bool
}

// fleet is the embedded DNS server and the nodes.
type fleet struct {
	cfg     fleetConfig
	dns     *dnsserver.Server
	key     dnsreport.Key
	view    *dnsView
	members []*member
	log     *zap.Logger
}

// startDNS starts the embedded DNS server with a freshly generated TSIG
// key: zones for the domain and e164.arpa., UPDATE and AXFR for key holders.
func startDNS(domain string, log *zap.Logger) (*dnsserver.Server, dnsreport.Key, error) {
	key, err := dnsreport.GenerateKey("dsn-demo", "", rand.Reader)
	if err != nil {
		return nil, key, err
	}
	srv, err := dnsserver.Start(dnsserver.DevConfig(domain, "", key), log.Named("dns"))
	if err != nil {
		return nil, key, fmt.Errorf("embedded DNS server: %w", err)
	}
	return srv, key, nil
}

// startFleet starts the nodes one after the other, each joining the first,
// all with the same generated cluster key, reporting to the DNS server and
// resolving through it.
func startFleet(cfg fleetConfig, dns *dnsserver.Server, key dnsreport.Key, log *zap.Logger) (*fleet, error) {
	clusterKey := make([]byte, 32)
	if _, err := rand.Read(clusterKey); err != nil {
		return nil, err
	}
	f := &fleet{cfg: cfg, dns: dns, key: key, view: newDNSView(dns.Addr(), cfg.Domain), log: log}
	ip := cfg.FirstIP
	for i := 1; i <= cfg.Nodes; i++ {
		var join []string
		if len(f.members) > 0 {
			join = []string{f.members[0].Cluster}
		}
		m, err := f.startMember(fmt.Sprintf("sn%d", i), ip.String(), join, clusterKey)
		if err != nil {
			f.closeAll()
			return nil, err
		}
		f.members = append(f.members, m)
		ip = ip.Next()
	}
	return f, nil
}

// nodeConfig is the product's default configuration with the demo's
// addresses, DNS server and representative count.
func (f *fleet) nodeConfig(name, ip string, sipPort, clusterPort int, join []string) node.Config {
	cfg := node.DefaultConfig()
	cfg.Name = name
	cfg.Domain = f.cfg.Domain
	cfg.SIPListen = net.JoinHostPort(ip, fmt.Sprint(sipPort))
	cfg.Cluster.TCP.BindAddr = net.JoinHostPort(ip, fmt.Sprint(clusterPort))
	cfg.Cluster.Join = join
	cfg.AdminListen = ""
	cfg.Reps.K = f.cfg.Reps
	cfg.DNS.Client.Servers = []string{f.dns.Addr()}
	cfg.DNS.Resolver.Server = f.dns.Addr()
	return cfg
}

// startMember starts one node on ip, on the configured ports when they
// are free, else on free ones.
func (f *fleet) startMember(name, ip string, join []string, clusterKey []byte) (*member, error) {
	deps := node.Deps{ClusterKey: clusterKey, TSIGKey: &f.key, Logger: f.log.Named(name)}
	try := func(sipPort, clusterPort int) (*node.Node, error) {
		n, err := node.New(f.nodeConfig(name, ip, sipPort, clusterPort, join), deps)
		if err != nil {
			return nil, err
		}
		if err := n.Start(); err != nil {
			return nil, err
		}
		return n, nil
	}
	n, err := try(f.cfg.SIPPort, f.cfg.ClusterPort)
	if err != nil && (f.cfg.SIPPort != 0 || f.cfg.ClusterPort != 0) {
		f.log.Info("demo: configured ports not usable, taking free ones", zap.String("node", name), zap.Error(err))
		n, err = try(0, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", name, ip, err)
	}
	return &member{Name: name, IP: ip, SIP: n.SIPAddr(), Cluster: n.ClusterAddr(), Node: n}, nil
}

// live returns the members not killed.
func (f *fleet) live() []*member {
	var out []*member
	for _, m := range f.members {
		if !m.Killed {
			out = append(out, m)
		}
	}
	return out
}

// byLabel finds a member by its DNS label (its name) or SIP address.
func (f *fleet) byLabel(label string) *member {
	for _, m := range f.members {
		if strings.EqualFold(m.Name, label) {
			return m
		}
	}
	return nil
}

func (f *fleet) bySIP(addr string) *member {
	for _, m := range f.members {
		if m.SIP == addr {
			return m
		}
	}
	return nil
}

// ringConsistent checks that the live nodes form one ring: ordered by ID,
// each one's first successor and predecessor are its neighbours.
func (f *fleet) ringConsistent() error {
	live := f.live()
	type entry struct {
		m  *member
		st dht.State
	}
	es := make([]entry, 0, len(live))
	for _, m := range live {
		es = append(es, entry{m, m.Node.Ring().State()})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].st.Self.ID < es[j].st.Self.ID })
	for i, e := range es {
		next, prev := es[(i+1)%len(es)].m.Name, es[(i-1+len(es))%len(es)].m.Name
		succ, pred := "", e.st.Predecessor.Name
		if len(e.st.Successors) > 0 {
			succ = e.st.Successors[0].Name
		}
		if succ != next {
			return fmt.Errorf("%s: successor %q, want %q", e.m.Name, succ, next)
		}
		if pred != prev {
			return fmt.Errorf("%s: predecessor %q, want %q", e.m.Name, pred, prev)
		}
	}
	return nil
}

// forgotten reports whether no live node still has dead as its predecessor
// or in its successor list.
func (f *fleet) forgotten(dead *member) bool {
	for _, m := range f.live() {
		st := m.Node.Ring().State()
		if st.Predecessor.Name == dead.Name {
			return false
		}
		for _, s := range st.Successors {
			if s.Name == dead.Name {
				return false
			}
		}
	}
	return true
}

// agreedReps returns the representative set every live node computes
// (names, sorted), or an error naming a node that disagrees or a
// representative not yet registered in DNS or not yet watched by a
// predecessor, a successor and a backup (as far as the ring has them).
func (f *fleet) agreedReps() ([]string, error) {
	live := f.live()
	var agreed []string
	roles := map[string]map[string]bool{}
	registered := map[string]bool{}
	for i, m := range live {
		st := m.Node.StatusSnapshot()
		var names []string
		for _, r := range st.Representatives {
			names = append(names, r.Name)
		}
		sort.Strings(names)
		if i == 0 {
			agreed = names
		} else if !slices.Equal(names, agreed) {
			return nil, fmt.Errorf("%s sees representatives %v, %s sees %v", m.Name, names, live[0].Name, agreed)
		}
		if st.DNS == nil {
			return nil, fmt.Errorf("%s does not report to DNS", m.Name)
		}
		registered[m.Name] = st.Representative && st.DNS.Registered
		for _, w := range st.DNS.Watching {
			if !w.InSet {
				continue
			}
			if roles[w.Peer.Name] == nil {
				roles[w.Peer.Name] = map[string]bool{}
			}
			for _, r := range w.Roles {
				roles[w.Peer.Name][r] = true
			}
		}
	}
	if want := min(f.cfg.Reps, len(live)); len(agreed) != want {
		return nil, fmt.Errorf("%d representatives %v, want %d", len(agreed), agreed, want)
	}
	// A ring of two has no backup distinct from the predecessor.
	needRoles := []string{"predecessor", "successor", "backup"}
	if len(live) < 3 {
		needRoles = needRoles[:len(live)]
	}
	for _, r := range agreed {
		if !registered[r] {
			return nil, fmt.Errorf("representative %s not yet registered in DNS", r)
		}
		for _, role := range needRoles {
			if !roles[r][role] {
				return nil, fmt.Errorf("representative %s has no %s watching it yet", r, role)
			}
		}
	}
	return agreed, nil
}

// repsPublished checks that DNS publishes exactly the agreed representative
// set with their SIP addresses, and returns it.
func (f *fleet) repsPublished(ctx context.Context) ([]publishedRep, error) {
	agreed, err := f.agreedReps()
	if err != nil {
		return nil, err
	}
	pub, err := f.view.reps(ctx)
	if err != nil {
		return nil, err
	}
	var got []string
	for _, p := range pub {
		got = append(got, p.Label)
		m := f.byLabel(p.Label)
		if m == nil || m.SIP != p.Addr.String() {
			return nil, fmt.Errorf("DNS publishes %s at %s, not a node's SIP address", p.Label, p.Addr)
		}
	}
	if !slices.Equal(got, agreed) {
		return nil, fmt.Errorf("DNS publishes %v, the nodes agree on %v", got, agreed)
	}
	return pub, nil
}

// waitFor polls cond every interval until it holds or ctx ends; the error
// then says what was awaited and what the last check found. Used for
// states that have no readiness signal (ring convergence, DNS contents).
func waitFor(ctx context.Context, interval time.Duration, what string, cond func() error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// shutdown makes every live node leave gracefully, one after the other
// (each representative withdraws its DNS records first), then stops the
// DNS server.
func (f *fleet) shutdown(ctx context.Context) (left int, err error) {
	var errs []error
	for _, m := range f.live() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if e := m.Node.Shutdown(sctx); e != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.Name, e))
		} else {
			left++
		}
		cancel()
		m.Killed = true // closed: no more calls into it
	}
	return left, errors.Join(errs...)
}

// closeAll closes whatever still runs, without leaving (error paths).
func (f *fleet) closeAll() {
	for _, m := range f.members {
		if !m.Killed {
			m.Node.Close()
			m.Killed = true
		}
	}
}
