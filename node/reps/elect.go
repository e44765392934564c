package reps

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/dnsreport"
)

// SlotPoints returns the k ring points whose owners are the
// representatives: evenly spaced from HashKey(seed), so the representatives
// spread over the ring and their neighbourhoods do not overlap.
func SlotPoints(k int, seed string) []dht.ID {
	base := dht.HashKey(seed)
	step := dht.ID(0)
	if k > 1 {
		step = dht.ID(^uint64(0)/uint64(k) + 1)
	}
	pts := make([]dht.ID, k)
	for i := range pts {
		pts[i] = base + dht.ID(i)*step
	}
	return pts
}

// slotPick is the representative of one slot and its successors as the
// look-up saw them (the first two tell its successor and backup).
type slotPick struct {
	peer  dht.Peer
	succs []dht.Peer
}

// pick finds the representative of the slot at pt: the first node at or
// after pt (its owner, then the owner's successors) not chosen for an
// earlier slot. Every node that sees the same ring picks the same one.
// When a look-up's successor list runs out (a small ring: the answering
// node never lists itself), the walk continues with a look-up just past
// the last candidate; having come back to a node already met means every
// node is taken. ok is false then.
func (m *Manager) pick(ctx context.Context, pt dht.ID, taken map[dht.ID]bool) (pk slotPick, ok bool, err error) {
	met := map[dht.ID]bool{}
	id := pt
	for range m.cfg.K + 2 {
		res, err := m.ring.Lookup(ctx, id)
		if err != nil {
			return slotPick{}, false, err
		}
		list := append([]dht.Peer{res.Owner}, res.Successors...)
		for j, c := range list {
			if c.IsZero() {
				continue
			}
			if met[c.ID] {
				return slotPick{}, false, nil // around the ring
			}
			met[c.ID] = true
			if !taken[c.ID] {
				return slotPick{peer: c, succs: list[j+1:]}, true, nil
			}
			id = c.ID + 1
		}
	}
	return slotPick{}, false, nil
}

// Elect recomputes the representative set with one ring look-up per slot,
// then publishes this node's records if it was chosen, or withdraws them if
// it stopped being chosen, and starts watching the representatives this
// node neighbours. A failed look-up leaves everything as it was. Elect
// blocks on the look-ups (at most LookupTimeout). After Leave it returns
// ErrLeaving.
func (m *Manager) Elect(ctx context.Context) error {
	m.mu.Lock()
	if m.leaving {
		m.mu.Unlock()
		return ErrLeaving
	}
	m.nextSeq++
	seq := m.nextSeq
	m.mu.Unlock()

	lctx, cancel := context.WithTimeout(ctx, m.cfg.LookupTimeout)
	defer cancel()
	var picks []slotPick
	taken := map[dht.ID]bool{}
	for i, pt := range m.points {
		pk, ok, err := m.pick(lctx, pt, taken)
		if err != nil {
			err = fmt.Errorf("reps: elect: look-up of slot %d (%s): %w", i, pt, err)
			m.mu.Lock()
			if seq > m.appliedSeq {
				m.electErr = err
			}
			m.mu.Unlock()
			return err
		}
		if ok {
			taken[pk.peer.ID] = true
			picks = append(picks, pk)
		}
	}
	st := m.ring.State()
	pp := m.predecessorOf(lctx, st.Predecessor)
	now := m.clock.Now()

	var hooks hookCalls
	m.mu.Lock()
	if seq <= m.appliedSeq || m.leaving {
		m.mu.Unlock()
		return nil // a newer election already applied, or Leave began
	}
	m.appliedSeq = seq
	err := m.applyLocked(picks, st, pp, now, &hooks)
	m.electErr = err
	m.mu.Unlock()
	hooks.run()
	return err
}

// applyLocked installs an election result.
func (m *Manager) applyLocked(picks []slotPick, st dht.State, predPred dht.Peer, now time.Time, hooks *hookCalls) error {
	first := !m.elected
	m.elected = true
	wasRep := m.isRep
	reps := make([]dht.Peer, len(picks))
	changed := first || len(picks) != len(m.reps)
	isRep := false
	for i, pk := range picks {
		reps[i] = pk.peer
		if !changed && m.reps[i].ID != pk.peer.ID {
			changed = true
		}
		if pk.peer.ID == m.self.ID {
			isRep = true
		}
		m.rememberLocked(pk.peer)
	}
	m.reps, m.isRep, m.lastElect = reps, isRep, now
	m.updateWatchesLocked(picks, st, predPred, now)

	var err error
	switch {
	case isRep && m.selfOp != opPublish:
		err = m.publishSelfLocked()
	case !isRep && m.selfOp == opPublish:
		err = m.withdrawSelfLocked(RoleSelf, hooks)
	case !isRep && m.selfOp == "" && first && m.cfg.WithdrawStale:
		err = m.withdrawSelfLocked(RoleSelf, hooks)
	}
	if first || isRep != wasRep {
		hooks.add(func() { callB(m.hooks.RepStatus, isRep) })
	}
	if changed {
		n := len(reps)
		hooks.add(func() {
			if m.hooks.RepSetSize != nil {
				m.hooks.RepSetSize(n)
			}
		})
		names := make([]string, len(reps))
		for i, p := range reps {
			names[i] = p.Name
		}
		m.log.Info("reps: representative set", zap.String("reps", strings.Join(names, ",")), zap.Bool("self", isRep))
	}
	return err
}

// predecessorOf asks pred for its own predecessor: the node whose second
// successor, and so whose backup, this node is. The look-ups' successor
// lists cannot tell it reliably (they may end at the representative), and
// this costs each node one call per election. Zero when unknown.
func (m *Manager) predecessorOf(ctx context.Context, pred dht.Peer) dht.Peer {
	if pred.IsZero() || pred.ID == m.self.ID {
		return dht.Peer{}
	}
	nb, err := m.prober.GetNeighbors(ctx, pred)
	if err != nil || nb.Predecessor.ID == m.self.ID {
		return dht.Peer{}
	}
	return nb.Predecessor
}

// rememberLocked keeps p among the representatives seen, so that
// reconciliation can still ping it after it left the set.
func (m *Manager) rememberLocked(p dht.Peer) {
	label, err := dnsreport.NodeLabel(p.Name)
	if err != nil {
		return
	}
	if _, ok := m.former[label]; !ok && len(m.former) >= maxFormer {
		for k := range m.former {
			delete(m.former, k)
			break
		}
	}
	m.former[label] = p
}
