package reps

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/dnsreport"
)

// roles is the set of positions this node has next to a representative.
type roles uint8

const (
	rolePredecessor roles = 1 << iota // the representative is our successor
	roleSuccessor                     // the representative is our predecessor
	roleBackup                        // we are the representative's second successor
)

// primary is the role a deletion is sent under.
func (r roles) primary() string {
	switch {
	case r&rolePredecessor != 0:
		return RolePredecessor
	case r&roleSuccessor != 0:
		return RoleSuccessor
	case r&roleBackup != 0:
		return RoleBackup
	}
	return ""
}

func (r roles) names() []string {
	var out []string
	for _, x := range []struct {
		r    roles
		name string
	}{{rolePredecessor, RolePredecessor}, {roleSuccessor, RoleSuccessor}, {roleBackup, RoleBackup}} {
		if r&x.r != 0 {
			out = append(out, x.name)
		}
	}
	return out
}

// rolesFromElection places this node next to a chosen representative
// using its own ring state, its predecessor's predecessor, and the
// representative's successors as the election's look-up saw them.
func rolesFromElection(self dht.Peer, st dht.State, predPred dht.Peer, pk slotPick) roles {
	var r roles
	if len(st.Successors) > 0 && st.Successors[0].ID == pk.peer.ID {
		r |= rolePredecessor
	}
	if !st.Predecessor.IsZero() && st.Predecessor.ID == pk.peer.ID {
		r |= roleSuccessor
	}
	if len(pk.succs) > 0 && pk.succs[0].ID == self.ID {
		r |= roleSuccessor
	}
	if (len(pk.succs) > 1 && pk.succs[1].ID == self.ID) || (!predPred.IsZero() && predPred.ID == pk.peer.ID) {
		r |= roleBackup
	}
	return r
}

// rolesFromNeighbors places this node next to peer using the neighbours
// peer reported itself, and this node's own ring state.
func rolesFromNeighbors(self dht.Peer, st dht.State, peer dht.Peer, nb dht.Neighbors) roles {
	var r roles
	if (!nb.Predecessor.IsZero() && nb.Predecessor.ID == self.ID) ||
		(len(st.Successors) > 0 && st.Successors[0].ID == peer.ID) {
		r |= rolePredecessor
	}
	if (len(nb.Successors) > 0 && nb.Successors[0].ID == self.ID) ||
		(!st.Predecessor.IsZero() && st.Predecessor.ID == peer.ID) {
		r |= roleSuccessor
	}
	if len(nb.Successors) > 1 && nb.Successors[1].ID == self.ID {
		r |= roleBackup
	}
	return r
}

// watch is one representative this node probes.
type watch struct {
	peer    dht.Peer
	roles   roles
	inSet   bool      // in the current representative set
	created time.Time // when the watch began
	lastOK  time.Time // last answer (zero: none yet)
	misses  int       // consecutive failed probes
	suspect bool      // the ring reported it failed
	// nextProbe is when it is due; zero means now.
	nextProbe time.Time
	deleted   bool // its deletion was submitted
	deletedAt time.Time
}

// silentSince is the start of the current silence: the last answer, or
// the start of the watch if it never answered.
func (w *watch) silentSince() time.Time {
	if w.lastOK.After(w.created) {
		return w.lastOK
	}
	return w.created
}

// updateWatchesLocked starts watching the chosen representatives this node
// neighbours. Watches are never dropped here: a representative that left
// the set may have left it because it died (the look-ups route around dead
// nodes), so it stays watched until it answers or is deleted.
func (m *Manager) updateWatchesLocked(picks []slotPick, st dht.State, predPred dht.Peer, now time.Time) {
	inSet := make(map[dht.ID]bool, len(picks))
	for _, pk := range picks {
		inSet[pk.peer.ID] = true
	}
	for _, w := range m.watches {
		w.inSet = inSet[w.peer.ID]
	}
	for _, pk := range picks {
		if pk.peer.ID == m.self.ID {
			continue
		}
		r := rolesFromElection(m.self, st, predPred, pk)
		w := m.watches[pk.peer.ID]
		if w != nil && (w.peer.Addr != pk.peer.Addr || w.peer.Meta != pk.peer.Meta) {
			// The same node restarted at a new address: a new incarnation.
			// The old watch (perhaps already deleted, and then no longer
			// able to delete) concerned the previous one; start over, and
			// cancel a delete of the old incarnation still pending, which
			// would otherwise remove the new one's records. Leftovers of
			// the old address are cleaned by the new incarnation itself.
			if w.deleted {
				if label, err := dnsreport.NodeLabel(w.peer.Name); err == nil {
					m.pub.Cancel(NodeKey(label))
				}
			}
			m.log.Info("reps: representative came back at a new address; watching the new incarnation",
				zap.String("peer", pk.peer.Name), zap.String("old", w.peer.Addr), zap.String("new", pk.peer.Addr))
			delete(m.watches, pk.peer.ID)
			w = nil
		}
		if w == nil {
			if r == 0 {
				continue
			}
			w = &watch{peer: pk.peer, inSet: true, created: now, nextProbe: now}
			m.watches[pk.peer.ID] = w
			m.log.Debug("reps: watching representative", zap.String("peer", pk.peer.Name), zap.Strings("roles", r.names()))
		}
		w.roles |= r
		if !w.deleted {
			w.peer = pk.peer
		}
	}
}

// ProbeStats reports one probe round.
type ProbeStats struct {
	Probed    int // representatives asked
	Failed    int // of which did not answer
	Deleted   int // deletions submitted
	Cancelled int // pending deletions cancelled because the peer answered
	// Withheld counts deletions not sent because this node could not reach
	// any other member either: it is the one cut off.
	Withheld int
}

type probeResult struct {
	w   *watch
	nb  dht.Neighbors
	err error
}

// Probe asks every watched representative that is due for its neighbours
// (all at once, each bounded by ProbeTimeout) and acts on the answers:
//
//   - an answer resets the miss count, refreshes this node's roles from the
//     representative's own neighbour list (the watch ends when it no longer
//     neighbours this node, or the peer is no longer a representative), and
//     cancels a deletion still pending for it;
//   - a miss counts; after SuspectAfter consecutive misses, and at least
//     MinSilence after its last answer, this node submits the deletion of
//     the representative's records under its role (predecessor, successor
//     or backup) and triggers an election — provided it can still reach
//     some other member (a ring neighbour, representative or gossip
//     member): a node that lost its own network must not delete the
//     representatives it can no longer see.
//
// The representative's predecessor, successor and backup each do this
// independently; the deletions are idempotent. Probe blocks for at most
// twice ProbeTimeout.
func (m *Manager) Probe(ctx context.Context) ProbeStats {
	var st ProbeStats
	now := m.clock.Now()
	m.mu.Lock()
	var due []*watch
	for id, w := range m.watches {
		if w.deleted && !w.inSet && now.Sub(w.deletedAt) >= m.cfg.ForgetAfter {
			delete(m.watches, id)
			continue
		}
		if !w.nextProbe.After(now) {
			due = append(due, w)
		}
	}
	peers := make([]dht.Peer, len(due))
	for i, w := range due {
		peers[i] = w.peer
	}
	m.mu.Unlock()
	if len(due) == 0 {
		return st
	}

	res := make([]probeResult, len(due))
	var wg sync.WaitGroup
	for i := range due {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, m.cfg.ProbeTimeout)
			defer cancel()
			nb, err := m.prober.GetNeighbors(pctx, peers[i])
			res[i] = probeResult{w: due[i], nb: nb, err: err}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return st // shutting down: a cancelled probe is no evidence
	}
	ring := m.ring.State()
	now = m.clock.Now()

	var dead []probeResult
	m.mu.Lock()
	for _, r := range res {
		w := r.w
		if m.watches[w.peer.ID] != w {
			continue // replaced or dropped meanwhile
		}
		st.Probed++
		if r.err == nil {
			if m.answeredLocked(w, r.nb, ring, now) {
				st.Cancelled++
			}
			continue
		}
		st.Failed++
		if m.missedLocked(w, r.err, now) {
			dead = append(dead, r)
		}
	}
	suspects := m.suspectsLocked()
	m.mu.Unlock()
	if len(dead) == 0 {
		return st
	}

	connected := m.connected(ctx, ring, suspects)
	var hooks hookCalls
	m.mu.Lock()
	for _, r := range dead {
		w := r.w
		if m.watches[w.peer.ID] != w || w.deleted || w.misses < m.cfg.SuspectAfter {
			continue // it answered meanwhile, or another round deleted it
		}
		if !connected {
			st.Withheld++
			m.log.Warn("reps: representative does not answer, but neither does any other member: this node is cut off; not deleting",
				zap.String("peer", w.peer.Name), zap.Int("misses", w.misses))
			continue
		}
		if m.deleteLocked(w, r.err, now, &hooks) {
			st.Deleted++
		}
	}
	m.mu.Unlock()
	hooks.run()
	if st.Deleted > 0 {
		kick(m.electKick)
	}
	return st
}

// answeredLocked handles an answer; it reports whether a pending deletion
// was cancelled.
func (m *Manager) answeredLocked(w *watch, nb dht.Neighbors, ring dht.State, now time.Time) bool {
	cancelled := false
	if w.deleted {
		label, _ := dnsreport.NodeLabel(w.peer.Name)
		m.pub.Cancel(NodeKey(label))
		w.deleted = false
		cancelled = true
		m.log.Warn("reps: representative answers again after its deletion was submitted; cancelled what was still pending (it re-registers itself if DNS lost its records)",
			zap.String("peer", w.peer.Name))
	}
	w.lastOK, w.misses, w.suspect = now, 0, false
	w.nextProbe = now.Add(m.cfg.ProbeInterval)
	w.roles = rolesFromNeighbors(m.self, ring, w.peer, nb)
	if w.roles == 0 || !w.inSet {
		delete(m.watches, w.peer.ID)
	}
	return cancelled
}

// missedLocked counts a failed probe; it reports whether the
// representative is now to be deleted.
func (m *Manager) missedLocked(w *watch, perr error, now time.Time) bool {
	if w.deleted {
		w.nextProbe = now.Add(m.cfg.ElectInterval)
		return false
	}
	w.misses++
	w.nextProbe = now.Add(m.cfg.RetryInterval)
	silence := now.Sub(w.silentSince())
	if w.misses < m.cfg.SuspectAfter || silence < m.cfg.MinSilence {
		m.log.Debug("reps: representative missed a probe", zap.String("peer", w.peer.Name),
			zap.Int("misses", w.misses), zap.Duration("silence", silence), zap.Error(perr))
		return false
	}
	return true
}

// suspectsLocked lists the peers this node currently gets no answer from.
func (m *Manager) suspectsLocked() map[dht.ID]bool {
	out := map[dht.ID]bool{}
	for id, w := range m.watches {
		if w.misses > 0 || w.deleted {
			out[id] = true
		}
	}
	return out
}

// maxWitnesses bounds the pings of the connectivity check.
const maxWitnesses = 3

// connected reports whether this node reaches at least one member other
// than the suspects: its ring neighbours first, then the representatives
// and the gossip members. With nobody else to ask it reports true (a ring
// of two, or one that lost everyone else).
func (m *Manager) connected(ctx context.Context, ring dht.State, suspects map[dht.ID]bool) bool {
	cands := append([]dht.Peer{ring.Predecessor}, ring.Successors...)
	cands = append(cands, m.Reps()...)
	if m.members != nil {
		cands = append(cands, m.members()...)
	}
	var witnesses []dht.Peer
	seen := map[dht.ID]bool{m.self.ID: true}
	for _, p := range cands {
		if p.IsZero() || seen[p.ID] || suspects[p.ID] {
			continue
		}
		seen[p.ID] = true
		witnesses = append(witnesses, p)
		if len(witnesses) == maxWitnesses {
			break
		}
	}
	if len(witnesses) == 0 {
		return true
	}
	ok := make(chan bool, len(witnesses))
	for _, p := range witnesses {
		go func() {
			pctx, cancel := context.WithTimeout(ctx, m.cfg.ProbeTimeout)
			defer cancel()
			ok <- m.prober.Ping(pctx, p) == nil
		}()
	}
	for range witnesses {
		if <-ok {
			return true
		}
	}
	return false
}

// deleteLocked submits the deletion of a failed representative's records
// under this node's role; it reports whether it did.
func (m *Manager) deleteLocked(w *watch, perr error, now time.Time, hooks *hookCalls) bool {
	role := w.roles.primary()
	label, err := dnsreport.NodeLabel(w.peer.Name)
	var ch dnsreport.Change
	if err == nil {
		ch, err = m.deleteChange(w.peer, m.keepLocked(w.peer.ID))
	}
	if err == nil {
		err = m.pub.Submit(dnsreport.Intent{Key: NodeKey(label), Change: ch, Role: role})
	}
	if err != nil {
		m.log.Error("reps: cannot delete a failed representative's records", zap.String("peer", w.peer.Name), zap.Error(err))
		return false
	}
	w.deleted, w.deletedAt = true, now
	w.nextProbe = now.Add(m.cfg.ElectInterval)
	m.log.Warn("reps: representative stopped answering; deleting its records from DNS",
		zap.String("peer", w.peer.Name), zap.String("addr", w.peer.Addr), zap.String("role", role),
		zap.Int("misses", w.misses), zap.Duration("silence", now.Sub(w.silentSince())),
		zap.Bool("ring_reported", w.suspect), zap.Error(perr))
	hooks.add(func() {
		callS(m.hooks.NeighborFailed, role)
		callS(m.hooks.DeletionSent, role)
	})
	return true
}

// NextProbe is when the earliest watched representative falls due (zero:
// none is watched).
func (m *Manager) NextProbe() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	var next time.Time
	for _, w := range m.watches {
		if next.IsZero() || w.nextProbe.Before(next) {
			next = w.nextProbe
		}
	}
	return next
}
