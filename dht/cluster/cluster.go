package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	stdlog "log"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/dht/tcp"
)

// Config describes one ring member on the network.
type Config struct {
	// Name is the node's unique, stable name; its ring ID derives from it.
	Name string
	// Meta is opaque data published with the node (the node package puts
	// the SIP advertise address here).
	Meta string
	// Join lists cluster addresses of members already in the ring; empty
	// starts a new ring.
	Join []string
	// JoinTimeout bounds joining (gossip and ring).
	JoinTimeout time.Duration
	// TCP configures the shared listener (BindAddr, AdvertiseAddr, limits).
	TCP tcp.Config
	// DHT configures the ring protocol and its timers.
	DHT dht.Config
	// GossipPreset is "lan" (memberlist.DefaultLANConfig) or "local"
	// (DefaultLocalConfig, for loopback tests).
	GossipPreset string
	// LeaveTimeout bounds the graceful leave.
	LeaveTimeout time.Duration
	// PushPullInterval is how often a member does a full state sync with a
	// random other member. memberlist's gossip broadcasts are best-effort
	// and do not reach every member; this sync is what guarantees that the
	// membership list converges, so it is kept short.
	PushPullInterval time.Duration
	// ReconnectInterval is how often a member tries to join again one
	// member (picked at random) that gossip declared dead. memberlist
	// gossips to a dead member only for GossipToTheDeadTime and then
	// forgets it, so without this the two sides of a partition that lasted
	// longer stay two clusters, and two rings, after it heals.
	ReconnectInterval time.Duration
	// ReconnectTimeout is how long a dead member is tried again before it
	// is forgotten.
	ReconnectTimeout time.Duration
	// GossipToTheDeadTime, if positive, replaces the preset's (30 s for
	// "lan", 15 s for "local"): how long memberlist still gossips to a dead
	// member, which lets it refute its death after a short partition.
	GossipToTheDeadTime time.Duration
}

// DefaultConfig returns production defaults.
func DefaultConfig() Config {
	return Config{
		JoinTimeout:      10 * time.Second,
		TCP:              tcp.DefaultConfig(),
		DHT:              dht.DefaultConfig(),
		GossipPreset:     "lan",
		LeaveTimeout:     5 * time.Second,
		PushPullInterval: 10 * time.Second,

		ReconnectInterval: 5 * time.Second,
		ReconnectTimeout:  24 * time.Hour,
	}
}

// LocalConfig returns defaults for tests on loopback: a free port on
// 127.0.0.1 and fast timers.
func LocalConfig(name string) Config {
	c := DefaultConfig()
	c.Name = name
	c.TCP = tcp.LocalConfig()
	c.DHT = dht.FastConfig()
	c.GossipPreset = "local"
	c.PushPullInterval = time.Second
	c.ReconnectInterval = 500 * time.Millisecond
	return c
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("cluster: Name must be set (a unique, stable node name)"))
	}
	if c.JoinTimeout <= 0 {
		errs = append(errs, fmt.Errorf("cluster: JoinTimeout must be positive, got %s", c.JoinTimeout))
	}
	if c.PushPullInterval <= 0 {
		errs = append(errs, fmt.Errorf("cluster: PushPullInterval must be positive, got %s", c.PushPullInterval))
	}
	if c.ReconnectInterval <= 0 || c.ReconnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("cluster: ReconnectInterval (%s) and ReconnectTimeout (%s) must be positive", c.ReconnectInterval, c.ReconnectTimeout))
	}
	if c.GossipToTheDeadTime < 0 {
		errs = append(errs, fmt.Errorf("cluster: GossipToTheDeadTime must not be negative, got %s", c.GossipToTheDeadTime))
	}
	if c.LeaveTimeout <= 0 {
		errs = append(errs, fmt.Errorf("cluster: LeaveTimeout must be positive, got %s", c.LeaveTimeout))
	}
	if c.GossipPreset != "lan" && c.GossipPreset != "local" {
		errs = append(errs, fmt.Errorf("cluster: GossipPreset must be lan or local, got %q", c.GossipPreset))
	}
	for i, j := range c.Join {
		if !strings.Contains(j, ":") {
			errs = append(errs, fmt.Errorf("cluster: Join[%d] %q must be host:port", i, j))
		}
	}
	if err := c.TCP.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.DHT.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Cluster is a running ring member.
type Cluster struct {
	cfg  Config
	log  *zap.Logger
	tr   *tcp.Transport
	node *dht.Node
	ml   *memberlist.Memberlist

	keysMu     sync.Mutex // serialises SetKeys
	gossipKeys *memberlist.Keyring

	// members mirrors memberlist's live members, by node name, from its
	// event callbacks: the *Node values memberlist.Members returns are
	// rewritten by its gossip without a lock the caller could take.
	membersMu sync.Mutex
	members   map[string]dht.Peer

	gossipLog *gossipLog

	// failed holds the members gossip declared dead, by name, to be
	// joined again (reconnect.go).
	failedMu sync.Mutex
	failed   map[string]failedMember

	cancel     context.CancelFunc
	done       chan struct{}
	reconnDone chan struct{}

	closeOnce sync.Once
	leftMu    sync.Mutex
	left      bool

	// bg tracks goroutines started from gossip callbacks; closed stops
	// callbacks from touching the node once Close began.
	bg     sync.WaitGroup
	bgMu   sync.Mutex
	closed bool
}

// background runs f in a tracked goroutine unless the member is closing.
func (c *Cluster) background(f func()) {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.closed {
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		f()
	}()
}

// Start is StartKeys with a single cluster key.
func Start(cfg Config, key []byte, logger *zap.Logger, observer func(dht.Event)) (*Cluster, error) {
	return StartKeys(cfg, [][]byte{key}, logger, observer)
}

// StartKeys brings a member up: it listens, creates or joins the ring, and
// starts the maintenance driver. keys are the cluster keys (see
// tcp.ValidateKeys), the primary first: gossip is encrypted with the
// primary and decrypted with any of them, and DHT RPC authenticates with
// any key both sides hold, preferring the primary. observer (may be nil)
// receives ring events; it must not block.
func StartKeys(cfg Config, keys [][]byte, logger *zap.Logger, observer func(dht.Event)) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	log := logger.Named("cluster")
	tr, err := tcp.New(cfg.TCP, keys, logger.Named("tcp"))
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	gossipKeys, err := newGossipKeyring(keys)
	if err != nil {
		tr.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	self := dht.Peer{ID: dht.NodeID(cfg.Name), Name: cfg.Name, Addr: tr.Addr(), Meta: cfg.Meta}
	c := &Cluster{cfg: cfg, log: log, tr: tr, gossipKeys: gossipKeys, members: make(map[string]dht.Peer), done: make(chan struct{}),
		failed: make(map[string]failedMember)}
	node, err := dht.New(cfg.DHT, self, dht.Deps{
		Transport: tr, Logger: logger.Named("dht"), Observer: observer,
		Rand: rand.New(rand.NewSource(time.Now().UnixNano())),
	})
	if err != nil {
		tr.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c.node = node
	tr.Serve(node)

	mlc := memberlist.DefaultLANConfig()
	if cfg.GossipPreset == "local" {
		mlc = memberlist.DefaultLocalConfig()
	}
	mlc.Name = cfg.Name
	mlc.PushPullInterval = cfg.PushPullInterval
	if cfg.GossipToTheDeadTime > 0 {
		mlc.GossipToTheDeadTime = cfg.GossipToTheDeadTime
	}
	mlc.Transport = tr.Memberlist()
	mlc.Keyring = gossipKeys
	mlc.Delegate = &metaDelegate{self: self}
	mlc.Events = &events{c: c}
	c.gossipLog = &gossipLog{l: logger.Named("gossip")}
	mlc.Logger = stdlog.New(c.gossipLog, "", 0)
	ml, err := memberlist.Create(mlc)
	if err != nil {
		tr.Close()
		return nil, fmt.Errorf("cluster: gossip: %w", err)
	}
	c.ml = ml

	if err := c.joinRing(); err != nil {
		c.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	drv := dht.NewDriver(node, rand.New(rand.NewSource(time.Now().UnixNano())), logger.Named("dht"), c.Members)
	go func() {
		defer close(c.done)
		drv.Run(ctx)
	}()
	c.reconnDone = make(chan struct{})
	go func() {
		defer close(c.reconnDone)
		c.reconnectLoop(ctx, rand.New(rand.NewSource(time.Now().UnixNano())))
	}()
	log.Info("cluster: member up", zap.String("name", cfg.Name), zap.String("id", self.ID.String()),
		zap.String("addr", self.Addr), zap.Strings("join", cfg.Join))
	return c, nil
}

func (c *Cluster) joinRing() error {
	if len(c.cfg.Join) == 0 {
		c.node.Create()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.JoinTimeout)
	defer cancel()
	var lastErr error
	for ctx.Err() == nil {
		if _, err := c.ml.Join(c.cfg.Join); err != nil {
			lastErr = fmt.Errorf("cluster: gossip join %v: %w", c.cfg.Join, err)
		} else {
			for _, addr := range c.cfg.Join {
				err := c.node.Join(ctx, dht.Peer{Addr: addr})
				if err == nil {
					return nil
				}
				lastErr = err
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("cluster: could not join %v within %s: %w", c.cfg.Join, c.cfg.JoinTimeout, lastErr)
}

// Node returns the ring member.
func (c *Cluster) Node() *dht.Node { return c.node }

// Transport returns the network transport (for its statistics).
func (c *Cluster) Transport() *tcp.Transport { return c.tr }

// Members returns the live members memberlist knows, as ring peers,
// ordered by ring ID.
func (c *Cluster) Members() []dht.Peer {
	c.membersMu.Lock()
	out := make([]dht.Peer, 0, len(c.members))
	for _, p := range c.members {
		out = append(out, p)
	}
	c.membersMu.Unlock()
	slices.SortFunc(out, func(a, b dht.Peer) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// setMember records a live member's ring identity (meta that does not
// decode leaves the member out, as before it joined).
func (c *Cluster) setMember(n *memberlist.Node) (dht.Peer, bool) {
	p, ok := decodeMeta(n.Meta)
	c.membersMu.Lock()
	defer c.membersMu.Unlock()
	if ok {
		c.members[n.Name] = p
	} else {
		delete(c.members, n.Name)
	}
	return p, ok
}

func (c *Cluster) dropMember(name string) {
	c.membersMu.Lock()
	delete(c.members, name)
	c.membersMu.Unlock()
}

// Leave departs gracefully: hands records to the successor, tells the
// neighbours, leaves the gossip cluster, and closes the transport.
func (c *Cluster) Leave(ctx context.Context) error {
	c.leftMu.Lock()
	if c.left {
		c.leftMu.Unlock()
		return nil
	}
	c.left = true
	c.leftMu.Unlock()
	c.cancel()
	<-c.done
	err := c.node.Leave(ctx)
	if lerr := c.ml.Leave(c.cfg.LeaveTimeout); lerr != nil && err == nil {
		err = fmt.Errorf("cluster: gossip leave: %w", lerr)
	}
	c.Close()
	return err
}

// Close stops the member without leaving (as a crash would look to the
// others, except that sockets close).
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		c.bgMu.Lock()
		c.closed = true
		c.bgMu.Unlock()
		c.bg.Wait()
		if c.cancel != nil {
			c.cancel()
			<-c.done
		}
		_ = c.ml.Shutdown()
		_ = c.tr.Close() // ends a reconnect's dial in progress
		if c.reconnDone != nil {
			<-c.reconnDone
		}
		c.gossipLog.silence()
	})
}

// metaDelegate publishes this node's ring identity in memberlist metadata.
type metaDelegate struct{ self dht.Peer }

type wireMeta struct {
	ID   string `json:"id"`
	Name string `json:"n"`
	Addr string `json:"a"`
	Meta string `json:"m,omitempty"`
}

func (d *metaDelegate) NodeMeta(limit int) []byte {
	b, _ := json.Marshal(wireMeta{ID: d.self.ID.String(), Name: d.self.Name, Addr: d.self.Addr, Meta: d.self.Meta})
	if len(b) > limit {
		return nil
	}
	return b
}
func (d *metaDelegate) NotifyMsg([]byte)                {}
func (d *metaDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *metaDelegate) LocalState(bool) []byte          { return nil }
func (d *metaDelegate) MergeRemoteState([]byte, bool)   {}

func decodeMeta(b []byte) (dht.Peer, bool) {
	var m wireMeta
	if len(b) == 0 || json.Unmarshal(b, &m) != nil || m.Addr == "" {
		return dht.Peer{}, false
	}
	var id uint64
	if _, err := fmt.Sscanf(m.ID, "%016x", &id); err != nil || dht.ID(id) != dht.NodeID(m.Name) {
		return dht.Peer{}, false
	}
	return dht.Peer{ID: dht.ID(id), Name: m.Name, Addr: m.Addr, Meta: m.Meta}, true
}

// events feeds memberlist's view into the ring and the member table.
// memberlist calls it with its node lock held: n is read here, and only
// here.
type events struct{ c *Cluster }

func (e *events) NotifyJoin(n *memberlist.Node) {
	e.c.forgetFailed(n.Name)
	if p, ok := e.c.setMember(n); ok && p.ID != e.c.node.Self().ID {
		e.c.background(func() {
			ctx, cancel := context.WithTimeout(context.Background(), e.c.cfg.DHT.RPCTimeout)
			defer cancel()
			e.c.node.Consider(ctx, []dht.Peer{p})
		})
	}
}

func (e *events) NotifyLeave(n *memberlist.Node) {
	e.c.dropMember(n.Name)
	if n.Name != e.c.cfg.Name {
		e.c.noteFailed(n.Name, n.Address())
	}
	if p, ok := decodeMeta(n.Meta); ok && p.ID != e.c.node.Self().ID {
		e.c.background(func() { e.c.node.Suspect(p) })
	}
}

func (e *events) NotifyUpdate(n *memberlist.Node) { e.c.setMember(n) }

// gossipLog routes memberlist's "[LEVEL] memberlist: ..." lines to zap at
// the matching level, until silenced: memberlist's Shutdown does not wait
// for its goroutines, and no line may be logged once Close returned.
type gossipLog struct {
	l        *zap.Logger
	mu       sync.RWMutex
	silenced bool
}

func (g *gossipLog) silence() {
	g.mu.Lock()
	g.silenced = true
	g.mu.Unlock()
}

func (g *gossipLog) Write(p []byte) (int, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.silenced {
		return len(p), nil
	}
	msg := strings.TrimSpace(string(p))
	switch {
	case strings.HasPrefix(msg, "[ERR]"):
		g.l.Error(strings.TrimSpace(strings.TrimPrefix(msg, "[ERR]")))
	case strings.HasPrefix(msg, "[WARN]"):
		g.l.Warn(strings.TrimSpace(strings.TrimPrefix(msg, "[WARN]")))
	case strings.HasPrefix(msg, "[INFO]"):
		g.l.Info(strings.TrimSpace(strings.TrimPrefix(msg, "[INFO]")))
	default:
		g.l.Debug(strings.TrimSpace(strings.TrimPrefix(msg, "[DEBUG]")))
	}
	return len(p), nil
}
