// Package cluster runs one ring member on a real network: the dht/tcp
// transport (DHT RPC and gossip share one authenticated port), a dht.Node
// driven by a dht.Driver, and hashicorp/memberlist for membership, all
// keyed with the shared cluster key.
//
// memberlist supplies the membership list (who is in the cluster, with
// each member's ring identity in its node metadata): new members are
// offered to the ring (dht.Node.Consider), which is how rings split by a
// partition merge back, and members memberlist declares dead are suspected
// in the ring's routing state. Fast failure detection of the immediate
// neighbours is the ring's own probing (dht.Node.ProbeNeighbors, about a
// second), not memberlist's (4-7 s with its presets).
//
// Start returns once the node has created or joined a ring. Cluster's
// methods are safe for concurrent use; Leave and Close block until done.
package cluster
