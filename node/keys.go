package node

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsn-ims/dsn/dht/tcp"
)

// clusterKeys is the keyring the node starts with: Deps.ClusterKeys, or
// the single Deps.ClusterKey.
func (d Deps) clusterKeys() [][]byte {
	if len(d.ClusterKeys) > 0 {
		return d.ClusterKeys
	}
	return [][]byte{d.ClusterKey}
}

// SetClusterKeys changes the cluster keys of a running node, keys[0] the
// new primary: one step of the rotation in the README ("Rotating the
// cluster key"), which dsn-node performs on SIGHUP after re-reading its
// -cluster-key-file. A bad keyring is refused and changes nothing.
func (n *Node) SetClusterKeys(keys [][]byte) error {
	n.mu.Lock()
	cl := n.cl
	n.mu.Unlock()
	if cl == nil {
		return errors.New("node: SetClusterKeys: not started")
	}
	if err := cl.SetKeys(keys); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.mu.Lock()
	na := n.nodeAuth
	n.mu.Unlock()
	if na != nil {
		// The SIP node marker (DSN-Node-Auth) follows the same keyring.
		if err := na.SetKeys(keys); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	return nil
}

// registerClusterStats exports the inter-node transport's counters
// (dht/tcp Stats): during a key rotation dsn_cluster_secondary_key_
// handshakes_total must stop growing on every node before the old key is
// removed, and dsn_cluster_handshakes_rejected_total counts peers that
// hold none of this node's keys (a rogue, or a step taken out of order).
func (n *Node) registerClusterStats(reg prometheus.Registerer) {
	stats := func() tcp.Stats {
		n.mu.Lock()
		cl := n.cl
		n.mu.Unlock()
		if cl == nil {
			return tcp.Stats{}
		}
		return cl.Transport().Stats()
	}
	for _, c := range []struct {
		name, help string
		get        func(tcp.Stats) uint64
	}{
		{"dsn_cluster_handshakes_rejected_total", "Inter-node handshakes refused on the cluster key, in either role.", func(s tcp.Stats) uint64 { return s.HandshakesRejected }},
		{"dsn_cluster_secondary_key_handshakes_total", "Inter-node handshakes made with a key other than this node's primary (key rotation in progress).", func(s tcp.Stats) uint64 { return s.SecondaryKeyHandshakes }},
		{"dsn_cluster_handshakes_failed_total", "Incoming inter-node handshakes broken off for another reason (timeout, I/O, version).", func(s tcp.Stats) uint64 { return s.HandshakesFailed }},
		{"dsn_cluster_bad_frames_total", "Inter-node connections closed for a forged, replayed or malformed frame.", func(s tcp.Stats) uint64 { return s.BadFrames }},
		{"dsn_cluster_dial_failures_total", "Outgoing inter-node connections that did not authenticate.", func(s tcp.Stats) uint64 { return s.DialFailures }},
	} {
		get := c.get
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(get(stats())) }))
	}
}
