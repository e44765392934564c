package node

import (
	"context"
	"fmt"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/sip/proxy"
)

// ringLocator finds an AOR's home node over the DHT: home =
// successor(hash(canonical AOR)), whose SIP address is in its Peer.Meta.
// The home node's alternates are its first Replicas-1 successors, which
// hold replicas of its records: the proxy tries them when the home node
// does not answer (it may have crashed moments ago, before the ring
// noticed).
type ringLocator struct {
	ring    *dht.Node
	sipAddr string
	lookups func(hops int, err error)
}

var _ proxy.Locator = (*ringLocator)(nil)

func (l *ringLocator) Home(ctx context.Context, aor string) (proxy.Home, error) {
	res, err := l.ring.Lookup(ctx, dht.HashKey(aor))
	if l.lookups != nil {
		l.lookups(res.Hops, err)
	}
	if err != nil {
		return proxy.Home{}, fmt.Errorf("node: locate home of %q: %w", aor, err)
	}
	self := l.ring.Self()
	var home proxy.Home
	switch {
	case res.Owner.ID == self.ID:
		home = proxy.Home{Self: true, Name: self.Name, Addr: l.sipAddr}
	case res.Owner.Meta == "":
		return proxy.Home{}, fmt.Errorf("node: home of %q (%s) has no SIP address", aor, res.Owner.Name)
	default:
		home = proxy.Home{Name: res.Owner.Name, Addr: res.Owner.Meta}
	}
	home.Alternates = l.alternates(ctx, res)
	return home, nil
}

// alternates are the replica holders of res.Owner's records: its first
// Replicas-1 successors, this node marked Self. A holder whose SIP
// address is unknown still counts as one of them but is left out.
func (l *ringLocator) alternates(ctx context.Context, res dht.LookupResult) []proxy.Alternate {
	want := l.ring.Config().Replicas - 1
	if want <= 0 {
		return nil
	}
	self := l.ring.Self()
	var out []proxy.Alternate
	for _, s := range l.replicaHolders(ctx, res, want) {
		switch {
		case s.ID == self.ID:
			out = append(out, proxy.Alternate{Self: true, Name: self.Name, Addr: l.sipAddr})
		case s.Meta != "":
			out = append(out, proxy.Alternate{Name: s.Name, Addr: s.Meta})
		}
	}
	return out
}

// replicaHolders returns up to want successors of res.Owner, in ring
// order. The lookup's own list can be short: a node that answers from its
// successor list knows only the entries after the owner in that list. It
// is completed from this node's neighbourhood (when this node follows the
// owner, or has it in its successor list), then by looking up, for the
// last holder known, the node that follows it. A look-up that fails, or
// that comes round to the owner (a ring this small), ends the list.
func (l *ringLocator) replicaHolders(ctx context.Context, res dht.LookupResult, want int) []dht.Peer {
	owner := res.Owner
	known := res.Successors
	if local := l.arcAfter(owner); len(local) > len(known) {
		known = local
	}
	seen := map[dht.ID]bool{owner.ID: true}
	var out []dht.Peer
	// add appends the peers of a contiguous arc until one is known.
	add := func(ps []dht.Peer) {
		for _, p := range ps {
			if len(out) == want || p.IsZero() || seen[p.ID] {
				return
			}
			seen[p.ID] = true
			out = append(out, p)
		}
	}
	add(known)
	for len(out) < want {
		last := owner
		if len(out) > 0 {
			last = out[len(out)-1]
		}
		next, err := l.ring.Lookup(ctx, last.ID+1)
		if err != nil {
			break
		}
		n := len(out)
		add(append([]dht.Peer{next.Owner}, next.Successors...))
		if len(out) == n {
			break // came round to a holder already known
		}
	}
	return out
}

// arcAfter is what this node knows of the ring right after p: itself and
// its successors when p is its predecessor, the rest of its successor list
// when p is in it, else nothing.
func (l *ringLocator) arcAfter(p dht.Peer) []dht.Peer {
	succs := l.ring.Successors()
	if pred := l.ring.Predecessor(); !pred.IsZero() && pred.ID == p.ID {
		return append([]dht.Peer{l.ring.Self()}, succs...)
	}
	for i, s := range succs {
		if s.ID == p.ID {
			return succs[i+1:]
		}
	}
	return nil
}
