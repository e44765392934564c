package node

import (
	"context"
	"fmt"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/sip/proxy"
)

// ringLocator finds an AOR's home node over the DHT: home =
// successor(hash(canonical AOR)), whose SIP address is in its Peer.Meta.
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
	if res.Owner.ID == self.ID {
		return proxy.Home{Self: true, Name: self.Name, Addr: l.sipAddr}, nil
	}
	if res.Owner.Meta == "" {
		return proxy.Home{}, fmt.Errorf("node: home of %q (%s) has no SIP address", aor, res.Owner.Name)
	}
	return proxy.Home{Name: res.Owner.Name, Addr: res.Owner.Meta}, nil
}
