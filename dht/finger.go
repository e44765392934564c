package dht

import "context"

// FixFinger refreshes the next finger in round-robin order (Chord's
// fix_fingers), skipping ahead over fingers that point at the same node.
func (n *Node) FixFinger(ctx context.Context) error {
	n.mu.Lock()
	i := n.nextFinger
	n.mu.Unlock()
	next, err := n.fixFrom(ctx, i)
	n.mu.Lock()
	n.nextFinger = next % Bits
	n.mu.Unlock()
	return err
}

// FixFingers refreshes the whole finger table: about log2(N) lookups, since
// consecutive fingers that fall before the same node are filled at once.
func (n *Node) FixFingers(ctx context.Context) error {
	i := 0
	for i < Bits {
		next, err := n.fixFrom(ctx, i)
		if err != nil {
			return err
		}
		i = next
	}
	return nil
}

// fixFrom looks up finger i and fills every following finger whose start
// also falls before the found node; it returns the next index to fix.
func (n *Node) fixFrom(ctx context.Context, i int) (int, error) {
	start := fingerStart(n.self.ID, i)
	res, err := n.Lookup(ctx, start)
	if err != nil {
		return i + 1, err
	}
	owner := res.Owner
	n.mu.Lock()
	defer n.mu.Unlock()
	j := i
	for ; j < Bits; j++ {
		s := fingerStart(n.self.ID, j)
		if j > i && !betweenRightIncl(s, n.self.ID, owner.ID) {
			break
		}
		if owner.ID == n.self.ID {
			n.fingers[j] = Peer{}
		} else {
			n.fingers[j] = owner
		}
		if owner.ID == n.self.ID {
			// Every later finger also wraps to us in a one-node view.
			continue
		}
	}
	return j, nil
}
