package reps

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/dnsreport"
)

// ReconcileResult reports one reconciliation.
type ReconcileResult struct {
	// Checked counts the other nodes' entries examined (SRV targets in the
	// zone, this node and protected labels excluded).
	Checked int
	// Suspect lists labels found dead but not yet confirmed.
	Suspect []string
	// Deleted lists labels whose deletion was submitted.
	Deleted []string
	// Republished: this node's own records were missing or wrong in DNS
	// and were submitted again.
	Republished bool
}

// Reconcile runs on representatives only (others return at once): it reads
// what DNS publishes (Reader) and deletes the entries of nodes that are not
// alive — not among the live members or representatives, and not answering
// a ping when their address is known — once ReconcileConfirmations
// consecutive reconciliations found them dead. So a stale entry cannot
// outlive the loss of all three watchers of a representative, or a DNS
// outage during its failure. It also checks this node's own records and
// publishes them again when they are missing (a watcher that wrongly
// thought it dead, an operator's mistake) or deletes leftovers of an
// earlier address. SRV targets outside the zone and Protected labels are
// never touched. Reconcile blocks on the DNS reads and pings.
func (m *Manager) Reconcile(ctx context.Context) (ReconcileResult, error) {
	var res ReconcileResult
	m.mu.Lock()
	active := m.reader != nil && m.isRep && !m.leaving
	m.mu.Unlock()
	if !active {
		return res, nil
	}
	selfSt, ok := m.pub.Status(selfKey)
	selfApplied := ok && selfSt.Applied && selfSt.Op == opPublish
	pub, err := m.reader.ReadPublished(ctx)
	if err != nil {
		err = fmt.Errorf("reps: reconcile: read DNS: %w", err)
		m.mu.Lock()
		m.recErr = err
		m.mu.Unlock()
		return res, err
	}

	targets := map[string][]*dns.SRV{}
	for _, s := range slices.Concat(pub.UDP, pub.TCP) {
		t := dns.CanonicalName(s.Target)
		targets[t] = append(targets[t], s)
	}
	alive, known := m.liveness()

	// Decide which entries are dead; ping the ones we can reach by address.
	type cand struct {
		target, label string
		peer          dht.Peer
		pinged        bool
		answered      bool
	}
	var cands []*cand
	names := make([]string, 0, len(targets))
	for t := range targets {
		names = append(names, t)
	}
	slices.Sort(names)
	aliveTargets := []string{}
	for _, t := range names {
		label, ok := m.labelOf(t)
		if !ok || label == m.selfLabel || m.protected[label] {
			continue
		}
		res.Checked++
		if alive[label] {
			aliveTargets = append(aliveTargets, t)
			continue
		}
		c := &cand{target: t, label: label}
		if p, ok := known[label]; ok {
			c.peer, c.pinged = p, true
		}
		cands = append(cands, c)
	}
	var wg sync.WaitGroup
	for _, c := range cands {
		if c.pinged {
			wg.Go(func() {
				pctx, cancel := context.WithTimeout(ctx, m.cfg.ProbeTimeout)
				defer cancel()
				c.answered = m.prober.Ping(pctx, c.peer) == nil
			})
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return res, fmt.Errorf("reps: reconcile: %w", ctx.Err())
	}

	var hooks hookCalls
	m.mu.Lock()
	defer func() {
		m.mu.Unlock()
		hooks.run()
	}()
	m.recErr, m.reconciled = nil, m.clock.Now()
	if !m.isRep || m.leaving {
		return res, nil
	}
	keep := m.keepLocked(0)
	if ap, err := m.sipAddr(m.self); err == nil {
		keep[ap.Addr()] = true
	}
	for _, t := range aliveTargets {
		for _, ip := range pub.Targets[t] {
			keep[ip] = true
		}
	}
	seen := map[string]bool{}
	for _, c := range cands {
		if c.answered {
			delete(m.sightings, c.label)
			continue
		}
		seen[c.label] = true
		m.sightings[c.label]++
		if m.sightings[c.label] < m.cfg.ReconcileConfirmations {
			res.Suspect = append(res.Suspect, c.label)
			continue
		}
		delete(m.sightings, c.label)
		ch := m.staleChange(c.target, targets[c.target], pub, keep)
		if err := m.pub.Submit(dnsreport.Intent{Key: NodeKey(c.label), Change: ch, Role: RoleReconcile}); err != nil {
			m.log.Error("reps: reconcile: cannot delete a stale entry", zap.String("label", c.label), zap.Error(err))
			continue
		}
		res.Deleted = append(res.Deleted, c.label)
		m.log.Warn("reps: reconcile: deleting the DNS entry of a node that is not alive",
			zap.String("label", c.label), zap.String("target", c.target), zap.Bool("pinged", c.pinged), zap.Stringer("change", ch))
		hooks.add(func() { callS(m.hooks.DeletionSent, RoleReconcile) })
	}
	for l := range m.sightings {
		if !seen[l] {
			delete(m.sightings, l)
		}
	}
	if selfApplied && m.selfOp == opPublish {
		res.Republished = m.checkSelfLocked(pub, targets, keep, &hooks)
	}
	return res, nil
}

// liveness returns the labels of nodes known to be alive (the gossip
// members, the representatives, this node) and the peers whose address is
// known (those, the ring neighbours and fingers, watched and former
// representatives), by label.
func (m *Manager) liveness() (alive map[string]bool, known map[string]dht.Peer) {
	var members []dht.Peer
	if m.members != nil {
		members = m.members()
	}
	st := m.ring.State()
	alive, known = map[string]bool{}, map[string]dht.Peer{}
	add := func(p dht.Peer, isAlive bool) {
		if p.IsZero() {
			return
		}
		l, err := dnsreport.NodeLabel(p.Name)
		if err != nil {
			return
		}
		known[l] = p
		if isAlive {
			alive[l] = true
		}
	}
	m.mu.Lock()
	for _, p := range m.former {
		add(p, false)
	}
	for _, w := range m.watches {
		add(w.peer, false)
	}
	for _, p := range m.reps {
		add(p, true)
	}
	m.mu.Unlock()
	add(st.Predecessor, false)
	for _, p := range st.Successors {
		add(p, false)
	}
	for _, f := range st.Fingers {
		add(f.Node, false)
	}
	for _, p := range members {
		add(p, true)
	}
	add(m.self, true)
	return alive, known
}

// labelOf returns L for a target L.Z.; ok is false for names outside the
// zone or deeper below it (not a node's own name).
func (m *Manager) labelOf(target string) (string, bool) {
	suffix := "." + m.cfg.Zone
	if !strings.HasSuffix(target, suffix) {
		return "", false
	}
	l := strings.TrimSuffix(target, suffix)
	if l == "" || strings.Contains(l, ".") {
		return "", false
	}
	return l, true
}

// staleChange deletes exactly what DNS holds for a dead node: the SRV
// records naming it, its domain addresses that no live node shares, and
// every record at its own name.
func (m *Manager) staleChange(target string, srvs []*dns.SRV, pub dnsreport.Published, keep map[netip.Addr]bool) dnsreport.Change {
	ch := dnsreport.Change{Zone: m.cfg.Zone, DeleteNames: []string{target}}
	for _, s := range srvs {
		ch.Delete = append(ch.Delete, dns.Copy(s))
	}
	for _, ip := range pub.Targets[target] {
		if !keep[ip] && slices.Contains(pub.DomainAddrs, ip) {
			ch.Delete = append(ch.Delete, addrRR(m.cfg.Domain, ip))
		}
	}
	return ch
}

// checkSelfLocked compares this representative's records with DNS; when
// they are missing or wrong it publishes them again and deletes what an
// earlier address left behind. It reports whether it republished.
func (m *Manager) checkSelfLocked(pub dnsreport.Published, targets map[string][]*dns.SRV, keep map[netip.Addr]bool, hooks *hookCalls) bool {
	rep, err := m.representative(m.self)
	if err != nil {
		return false
	}
	me := rep.NodeName()
	ip := rep.IPs[0]
	var wrong []dns.RR
	have := map[string]bool{}
	for _, s := range targets[me] {
		if s.Port == rep.Port && s.Priority == rep.Priority && s.Weight == rep.Weight {
			have[dns.CanonicalName(s.Hdr.Name)] = true
		} else {
			wrong = append(wrong, dns.Copy(s))
		}
	}
	for _, old := range pub.Targets[me] {
		if old != ip && !keep[old] && slices.Contains(pub.DomainAddrs, old) {
			wrong = append(wrong, addrRR(m.cfg.Domain, old))
		}
	}
	complete := len(have) == len(rep.SRVNames()) &&
		slices.Equal(pub.Targets[me], []netip.Addr{ip}) && slices.Contains(pub.DomainAddrs, ip)
	if complete && len(wrong) == 0 {
		return false
	}
	if len(wrong) > 0 {
		ch := dnsreport.Change{Zone: m.cfg.Zone, Delete: wrong}
		if err := m.pub.Submit(dnsreport.Intent{Key: selfRepairKey, Change: ch, Role: RoleSelf}); err != nil {
			m.log.Error("reps: reconcile: cannot delete this node's outdated records", zap.Error(err))
		}
	}
	if err := m.publishSelfLocked(); err != nil {
		m.log.Error("reps: reconcile: cannot publish this node's records again", zap.Error(err))
		return false
	}
	m.log.Warn("reps: reconcile: this node's records were missing or outdated in DNS; published them again",
		zap.Bool("complete", complete), zap.Int("outdated", len(wrong)))
	hooks.add(func() {
		if m.hooks.Republished != nil {
			m.hooks.Republished()
		}
	})
	return true
}

// addrRR is an A or AAAA record for name.
func addrRR(name string, ip netip.Addr) dns.RR {
	if ip.Is4() {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IP(ip.AsSlice())}
	}
	return &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET}, AAAA: net.IP(ip.AsSlice())}
}
