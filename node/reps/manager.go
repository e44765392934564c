package reps

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/dnsreport"
)

// Publisher keys. A node's own records use one key, so a withdraw
// supersedes a publish that is still pending (and the other way round);
// deletions of another node use "node/<label>", shared by the watcher and
// the reconciler paths of this node.
const (
	selfKey       = "self"
	selfRepairKey = "self-repair"
)

// NodeKey is the Publisher key of the deletion of another node's records.
func NodeKey(label string) string { return "node/" + label }

// Roles of a deletion (dnsreport.Intent.Role and the metrics label).
const (
	RolePredecessor = "predecessor"
	RoleSuccessor   = "successor"
	RoleBackup      = "backup"
	RoleReconcile   = "reconcile"
	RoleLeave       = "leave"
	RoleSelf        = "self"
)

// maxFormer bounds the memory of former representatives kept for
// reconciliation's liveness checks.
const maxFormer = 256

// Manager elects the representatives, publishes and withdraws this node's
// own records, watches the representatives it neighbours and deletes their
// records when they die, and reconciles DNS with the live ring. Its
// methods are synchronous and safe for concurrent use; Run drives them.
type Manager struct {
	cfg       Config
	ring      Ring
	prober    Prober
	pub       Publisher
	reader    Reader
	members   func() []dht.Peer
	sipAddr   func(dht.Peer) (netip.AddrPort, error)
	clock     dnsreport.Clock
	log       *zap.Logger
	hooks     Hooks
	self      dht.Peer
	selfLabel string
	points    []dht.ID
	protected map[string]bool

	electKick chan struct{}
	probeKick chan struct{}

	mu         sync.Mutex
	nextSeq    uint64
	appliedSeq uint64
	elected    bool
	reps       []dht.Peer
	isRep      bool
	selfOp     string // "", "publish" or "delete": the last own intent submitted
	leaving    bool
	lastElect  time.Time
	electErr   error
	watches    map[dht.ID]*watch
	former     map[string]dht.Peer // label -> representatives seen
	sightings  map[string]int      // label -> consecutive reconciliations found dead
	reconciled time.Time
	recErr     error
}

// New checks cfg and deps and returns a Manager that has not elected yet.
func New(cfg Config, deps Deps) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Ring == nil || deps.Prober == nil || deps.Publisher == nil {
		return nil, errors.New("reps: New needs a Ring, a Prober and a Publisher")
	}
	if deps.SIPAddr == nil {
		deps.SIPAddr = func(p dht.Peer) (netip.AddrPort, error) { return ParseSIPAddr(p.Meta) }
	}
	if deps.Clock == nil {
		deps.Clock = dnsreport.SystemClock{}
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	self := deps.Ring.Self()
	label, err := dnsreport.NodeLabel(self.Name)
	if err != nil {
		return nil, fmt.Errorf("reps: %w", err)
	}
	if _, err := deps.SIPAddr(self); err != nil {
		return nil, fmt.Errorf("reps: this node's SIP address: %w", err)
	}
	cfg.Zone, cfg.Domain = dns.CanonicalName(cfg.Zone), dns.CanonicalName(cfg.Domain)
	prot := make(map[string]bool, len(cfg.Protected))
	for _, p := range cfg.Protected {
		prot[strings.ToLower(p)] = true
	}
	return &Manager{
		cfg: cfg, ring: deps.Ring, prober: deps.Prober, pub: deps.Publisher, reader: deps.Reader,
		members: deps.Members, sipAddr: deps.SIPAddr, clock: deps.Clock,
		log: deps.Logger.With(zap.String("node", self.Name)), hooks: deps.Hooks,
		self: self, selfLabel: label, points: SlotPoints(cfg.K, cfg.SlotSeed), protected: prot,
		electKick: make(chan struct{}, 1), probeKick: make(chan struct{}, 1),
		watches: map[dht.ID]*watch{}, former: map[string]dht.Peer{}, sightings: map[string]int{},
	}, nil
}

// Config returns the configuration in use (Zone and Domain canonical).
func (m *Manager) Config() Config { return m.cfg }

// Reps returns the current representative set in slot order (a copy).
func (m *Manager) Reps() []dht.Peer {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.reps)
}

// IsRep reports whether this node is a representative.
func (m *Manager) IsRep() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.isRep
}

// Registered reports whether this node is a representative whose own
// records DNS has confirmed (for /readyz).
func (m *Manager) Registered() bool {
	m.mu.Lock()
	isRep := m.isRep && m.selfOp == opPublish
	m.mu.Unlock()
	if !isRep {
		return false
	}
	st, ok := m.pub.Status(selfKey)
	return ok && st.Applied && st.Op == opPublish
}

// WatchStatus describes one representative this node watches.
type WatchStatus struct {
	Peer  dht.Peer `json:"peer"`
	Roles []string `json:"roles"`
	// InSet is false for a former representative still probed until it
	// answers or is deleted.
	InSet      bool      `json:"in_set"`
	Misses     int       `json:"misses"`
	LastAnswer time.Time `json:"last_answer,omitzero"`
	Deleted    bool      `json:"deleted"`
}

// Status is a snapshot for the admin API.
type Status struct {
	Self  dht.Peer `json:"self"`
	Label string   `json:"label"`
	IsRep bool     `json:"is_representative"`
	// Registered: a representative whose records DNS confirmed.
	Registered     bool          `json:"registered"`
	Reps           []dht.Peer    `json:"representatives"`
	Elected        time.Time     `json:"elected,omitzero"`
	ElectError     string        `json:"elect_error,omitempty"`
	Watching       []WatchStatus `json:"watching,omitempty"`
	Reconciled     time.Time     `json:"reconciled,omitzero"`
	ReconcileError string        `json:"reconcile_error,omitempty"`
	Leaving        bool          `json:"leaving"`
}

// Status returns a snapshot of the manager's state.
func (m *Manager) Status() Status {
	reg := m.Registered()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Status{
		Self: m.self, Label: m.selfLabel, IsRep: m.isRep, Registered: reg,
		Reps: slices.Clone(m.reps), Elected: m.lastElect, Reconciled: m.reconciled, Leaving: m.leaving,
	}
	if m.electErr != nil {
		st.ElectError = m.electErr.Error()
	}
	if m.recErr != nil {
		st.ReconcileError = m.recErr.Error()
	}
	for _, w := range m.watches {
		st.Watching = append(st.Watching, WatchStatus{
			Peer: w.peer, Roles: w.roles.names(), InSet: w.inSet, Misses: w.misses,
			LastAnswer: w.lastOK, Deleted: w.deleted,
		})
	}
	slices.SortFunc(st.Watching, func(a, b WatchStatus) int { return cmpID(a.Peer.ID, b.Peer.ID) })
	return st
}

// OnRingEvent takes the ring's events (dht.Deps.Observer). A failed or
// departed neighbour that is a watched representative is probed at once
// (its records are still deleted only after SuspectAfter failed probes of
// this node's own); any change of this node's neighbours triggers an
// election. It never blocks.
func (m *Manager) OnRingEvent(ev dht.Event) {
	switch ev.Kind {
	case dht.EventNeighborFailed, dht.EventNeighborLeft:
		now := m.clock.Now()
		m.mu.Lock()
		w := m.watches[ev.Peer.ID]
		if w == nil && m.inSetLocked(ev.Peer.ID) {
			// A representative we had no watch on yet: the event tells
			// what it was to us.
			var r roles
			if ev.WasPredecessor {
				r |= roleSuccessor
			}
			if ev.SuccessorIndex == 0 {
				r |= rolePredecessor
			}
			if r != 0 {
				w = &watch{peer: ev.Peer, roles: r, inSet: true, created: now}
				m.watches[ev.Peer.ID] = w
			}
		}
		if w != nil && !w.deleted {
			w.suspect = true
			w.nextProbe = now
		}
		m.mu.Unlock()
		if w != nil {
			kick(m.probeKick)
		}
		kick(m.electKick)
	case dht.EventPredecessorChanged, dht.EventSuccessorChanged:
		kick(m.electKick)
	}
}

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (m *Manager) inSetLocked(id dht.ID) bool {
	for _, p := range m.reps {
		if p.ID == id {
			return true
		}
	}
	return false
}

// hookCalls collects metrics callbacks made under the lock, to run after it.
type hookCalls []func()

func (h *hookCalls) add(f func()) { *h = append(*h, f) }

func (h hookCalls) run() {
	for _, f := range h {
		f()
	}
}

func cmpID(a, b dht.ID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
