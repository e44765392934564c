package reps

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/dnsreport"
)

const (
	opPublish = "publish"
	opDelete  = "delete"
)

// ParseSIPAddr reads the SIP advertise address a node keeps in
// dht.Peer.Meta: "ip:port" or "[ipv6]:port". The address must be a
// concrete IP (it is published in DNS) and the port non-zero.
func ParseSIPAddr(meta string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(meta)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w %q: want ip:port or [ipv6]:port: %v", ErrBadSIPAddr, meta, err)
	}
	if ap.Addr().IsUnspecified() || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%w %q: needs a concrete IP and a non-zero port (set -sip-advertise)", ErrBadSIPAddr, meta)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// representative is the record set p publishes when it is a representative.
func (m *Manager) representative(p dht.Peer) (dnsreport.Representative, error) {
	label, err := dnsreport.NodeLabel(p.Name)
	if err != nil {
		return dnsreport.Representative{}, fmt.Errorf("reps: %w", err)
	}
	ap, err := m.sipAddr(p)
	if err != nil {
		return dnsreport.Representative{}, fmt.Errorf("reps: node %s: %w", p.Name, err)
	}
	return m.cfg.Records.Representative(m.cfg.Zone, m.cfg.Domain, label, []netip.Addr{ap.Addr()}, ap.Port()), nil
}

// deleteChange removes exactly p's records, except the domain addresses
// listed in keep (addresses other live representatives publish too: the
// D. A/AAAA record of a shared IP is one record, and deleting it for one
// node would delete it for the other).
func (m *Manager) deleteChange(p dht.Peer, keep map[netip.Addr]bool) (dnsreport.Change, error) {
	rep, err := m.representative(p)
	if err != nil {
		return dnsreport.Change{}, err
	}
	ch, err := rep.DeleteChange()
	if err != nil {
		return dnsreport.Change{}, fmt.Errorf("reps: %w", err)
	}
	ch.Delete = slices.DeleteFunc(ch.Delete, func(rr dns.RR) bool {
		return dns.CanonicalName(rr.Header().Name) == m.cfg.Domain && keep[rrAddr(rr)]
	})
	return ch, nil
}

// rrAddr is the address of an A or AAAA record (invalid otherwise).
func rrAddr(rr dns.RR) netip.Addr {
	var a netip.Addr
	switch v := rr.(type) {
	case *dns.A:
		a, _ = netip.AddrFromSlice(v.A)
	case *dns.AAAA:
		a, _ = netip.AddrFromSlice(v.AAAA)
	}
	return a.Unmap()
}

// keepLocked returns the SIP IPs of the current representatives other than
// except.
func (m *Manager) keepLocked(except dht.ID) map[netip.Addr]bool {
	keep := map[netip.Addr]bool{}
	for _, p := range m.reps {
		if p.ID == except {
			continue
		}
		if ap, err := m.sipAddr(p); err == nil {
			keep[ap.Addr()] = true
		}
	}
	return keep
}

// publishSelfLocked submits this node's records (kept and refreshed by the
// Publisher).
func (m *Manager) publishSelfLocked() error {
	rep, err := m.representative(m.self)
	if err != nil {
		return err
	}
	ch, err := rep.PublishChange()
	if err != nil {
		return fmt.Errorf("reps: %w", err)
	}
	if err := m.pub.Submit(dnsreport.Intent{Key: selfKey, Change: ch, Role: RoleSelf, Refresh: true}); err != nil {
		return fmt.Errorf("reps: publish own records: %w", err)
	}
	m.selfOp = opPublish
	m.log.Info("reps: this node is a representative; registering in DNS", zap.String("label", m.selfLabel))
	return nil
}

// withdrawSelfLocked submits the deletion of this node's records.
func (m *Manager) withdrawSelfLocked(role string, hooks *hookCalls) error {
	ch, err := m.deleteChange(m.self, m.keepLocked(m.self.ID))
	if err != nil {
		return err
	}
	m.pub.Cancel(selfRepairKey)
	if err := m.pub.Submit(dnsreport.Intent{Key: selfKey, Change: ch, Role: role}); err != nil {
		return fmt.Errorf("reps: withdraw own records: %w", err)
	}
	m.selfOp = opDelete
	m.log.Info("reps: withdrawing this node's records from DNS", zap.String("label", m.selfLabel), zap.String("role", role))
	hooks.add(func() { callS(m.hooks.DeletionSent, role) })
	return nil
}

// Leave is the graceful leave of SIGTERM: it stops elections and, if this
// node published records (or a withdrawal is still pending), deletes them
// and waits until DNS confirmed the deletion, ctx ends, or the Publisher is
// closed. Call it before leaving the ring and while the Publisher still
// runs (Reporter.Run). It returns nil at once for a node that published
// nothing.
func (m *Manager) Leave(ctx context.Context) error {
	var hooks hookCalls
	m.mu.Lock()
	m.leaving = true
	var err error
	switch m.selfOp {
	case opPublish:
		err = m.withdrawSelfLocked(RoleLeave, &hooks)
	case "":
		m.mu.Unlock()
		return nil
	}
	if m.isRep {
		m.isRep = false
		hooks.add(func() { callB(m.hooks.RepStatus, false) })
	}
	m.mu.Unlock()
	hooks.run()
	if err != nil {
		return err
	}
	if err := m.pub.Flush(ctx, selfKey); err != nil {
		return fmt.Errorf("reps: leave: %w", err)
	}
	m.log.Info("reps: own records deleted from DNS before leaving")
	return nil
}

func callB(f func(bool), b bool) {
	if f != nil {
		f(b)
	}
}

func callS(f func(string), s string) {
	if f != nil {
		f(s)
	}
}
