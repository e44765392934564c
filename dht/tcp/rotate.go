package tcp

import (
	"bytes"
	"net"

	"go.uber.org/zap"
)

// SetKeys replaces the cluster keys at run time, for a key rotation
// without restart; keys are as for New and are copied. New connections,
// in both roles, use the new keys at once. Existing connections:
//
//   - outgoing ones not authenticated with the new primary are retired:
//     they take no new calls and close when their calls in flight end,
//     and the next call dials again, preferring the new primary; so no
//     call fails because of the change;
//   - incoming ones authenticated with a key that is no longer in the ring
//     are closed at once: a removed key is no longer trusted.
//
// Following the rotation procedure in the package documentation, no
// connection uses a key when it is removed (every node redialed with the
// new primary in step 2), so step 3 closes nothing. SetKeys is safe to
// call concurrently with everything else; it does not block on the
// network.
func (t *Transport) SetKeys(keys [][]byte) error {
	ring, err := newKeyring(keys)
	if err != nil {
		return err
	}
	var drained []*clientConn
	var removed []net.Conn
	t.mu.Lock()
	old := t.ring.Load()
	t.ring.Store(ring)
	for _, pc := range t.peers {
		for _, c := range pc.conns {
			if c.retired || bytes.Equal(c.sess.key, ring.keys[0]) {
				continue
			}
			c.retired = true
			if c.inflight == 0 {
				drained = append(drained, c)
			}
		}
	}
	for nc, key := range t.inbound {
		if key != nil && ring.index(key) < 0 {
			removed = append(removed, nc)
		}
	}
	t.mu.Unlock()

	for _, c := range drained {
		c.fail(errKeyRetired)
	}
	for _, nc := range removed {
		_ = nc.Close()
	}
	t.log.Info("cluster keys changed", zap.Strings("old_key_ids", old.ids), zap.Strings("key_ids", ring.ids),
		zap.Int("outgoing_retired", len(drained)), zap.Int("incoming_closed", len(removed)))
	return nil
}

// KeyIDs returns the KeyID of each cluster key, the primary first.
func (t *Transport) KeyIDs() []string {
	return append([]string(nil), t.ring.Load().ids...)
}

// admitInbound records that nc authenticated with key, unless SetKeys
// removed key in the meantime or the transport closed.
func (t *Transport) admitInbound(nc net.Conn, key []byte) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, tracked := t.inbound[nc]; !tracked || t.closed || t.ring.Load().index(key) < 0 {
		return false
	}
	t.inbound[nc] = key
	return true
}

// noteKey logs which key of ring authenticated a connection (its index
// and KeyID, never the key) and counts the ones that were not the
// primary.
func (t *Transport) noteKey(peer zap.Field, ring *keyring, s session) {
	fields := []zap.Field{peer, zap.Int("key_index", s.keyIndex), zap.String("key_id", ring.ids[s.keyIndex])}
	if s.keyIndex == 0 {
		t.log.Debug("peer authenticated", fields...)
		return
	}
	t.stats.secondaryKey.Add(1)
	t.log.Info("peer authenticated with a secondary cluster key", fields...)
}
