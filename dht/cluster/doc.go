// Package cluster runs one ring member on a real network: the dht/tcp
// transport (DHT RPC and gossip share one authenticated port), a dht.Node
// driven by a dht.Driver, and hashicorp/memberlist for membership, all
// keyed with the shared cluster key.
//
// memberlist supplies the membership list (who is in the cluster, with
// each member's ring identity in its node metadata): new members are
// offered to the ring (dht.Node.Consider), which is how rings split by a
// partition merge back, and members memberlist declares dead are suspected
// in the ring's routing state. memberlist forgets a dead member once
// GossipToTheDeadTime has passed (30 s on a LAN) and never contacts it
// again, so every ReconnectInterval a member tries to join one member that
// gossip declared dead (for ReconnectTimeout, as Serf does): after a
// partition of any length heals, one such join merges the two member
// lists, and with them the rings. Fast failure detection of the immediate
// neighbours is the ring's own probing (dht.Node.ProbeNeighbors, about a
// second), not memberlist's (4-7 s with its presets).
//
// Keys: StartKeys takes the cluster keys, the primary first (Start takes
// a single key). DHT RPC authenticates with any key both sides hold;
// memberlist gets a keyring that encrypts gossip with the primary and
// decrypts with any key. SetKeys changes both at run time; the rotation
// procedure (add the new key as secondary everywhere, make it primary
// everywhere, remove the old one) is in the dht/tcp documentation.
//
// Start returns once the node has created or joined a ring. Cluster's
// methods are safe for concurrent use; Leave and Close block until done.
package cluster
