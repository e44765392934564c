package cluster

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/hashicorp/memberlist"

	"github.com/dsn-ims/dsn/dht/tcp"
)

// SetKeys changes the cluster keys at run time, keys[0] the new primary,
// for a rotation without restart (the procedure is in the dht/tcp package
// documentation): the DHT transport as tcp.Transport.SetKeys describes,
// and the gossip keyring, which then encrypts with keys[0] and decrypts
// with any of keys. A bad list is refused and changes nothing. Safe for
// concurrent use.
func (c *Cluster) SetKeys(keys [][]byte) error {
	if err := tcp.ValidateKeys(keys); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	c.keysMu.Lock()
	defer c.keysMu.Unlock()
	if err := setGossipKeys(c.gossipKeys, keys); err != nil {
		return fmt.Errorf("cluster: gossip keyring: %w", err)
	}
	if err := c.tr.SetKeys(keys); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

// newGossipKeyring builds memberlist's keyring from the cluster keys.
func newGossipKeyring(keys [][]byte) (*memberlist.Keyring, error) {
	if err := tcp.ValidateKeys(keys); err != nil {
		return nil, err
	}
	secondary := make([][]byte, 0, len(keys)-1)
	for _, k := range keys[1:] {
		secondary = append(secondary, bytes.Clone(k))
	}
	return memberlist.NewKeyring(secondary, bytes.Clone(keys[0]))
}

// setGossipKeys makes kr hold exactly keys, keys[0] the primary, in place:
// memberlist holds kr and reads it on every packet. It adds the new keys,
// switches the primary, then removes the others, always taking the last
// key of the ring: memberlist's RemoveKey shifts the keys after the one it
// removes in the very slice that readers got from GetKeys without a lock,
// while removing the last one moves nothing. A key to keep that sat after
// a key to remove is added back at once (the usual rotation removes the
// oldest key, which is last, and never needs this).
func setGossipKeys(kr *memberlist.Keyring, keys [][]byte) error {
	for _, k := range keys {
		if err := kr.AddKey(bytes.Clone(k)); err != nil {
			return err
		}
	}
	if err := kr.UseKey(keys[0]); err != nil {
		return err
	}
	wanted := func(k []byte) bool {
		return slices.ContainsFunc(keys, func(w []byte) bool { return bytes.Equal(w, k) })
	}
	var keep [][]byte
	for {
		cur := kr.GetKeys()
		if !slices.ContainsFunc(cur, func(k []byte) bool { return !wanted(k) }) {
			break
		}
		last := cur[len(cur)-1] // never the primary: an unwanted key is still there
		if err := kr.RemoveKey(last); err != nil {
			return err
		}
		if wanted(last) {
			keep = append(keep, last)
		}
	}
	for _, k := range slices.Backward(keep) {
		if err := kr.AddKey(k); err != nil {
			return err
		}
	}
	return nil
}
