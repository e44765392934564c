package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/dht/cluster"
	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/node/reps"
	"github.com/dsn-ims/dsn/sip/proxy"
	"github.com/dsn-ims/dsn/sip/registrar"
)

// Deps are a node's dependencies and secrets.
type Deps struct {
	// ClusterKey authenticates and encrypts inter-node traffic (16, 24 or
	// 32 bytes). ClusterKeys, when set, replaces it.
	ClusterKey []byte
	// ClusterKeys is the cluster keyring for a key rotation, the primary
	// first (see the dht/tcp package documentation): gossip and DHT RPC
	// are sent with the primary and accepted with any of them.
	ClusterKeys [][]byte
	// Authenticator decides who may REGISTER (sip/auth digest, or
	// registrar.AllowAll for -auth-open); nil means AllowAll.
	Authenticator registrar.Authenticator
	// Trusted are the peers (-trusted, e.g. the IMS CSCF) exempt from
	// the call policy and the relay rule; nil means none.
	Trusted proxy.TrustedPeers
	// Callers authenticates callers by Digest for the call policy and the
	// relay rule (the sip/auth Digest of -auth-file); nil means no
	// credentials: nobody is challenged.
	Callers proxy.Callers
	// SIPLog is the handler sipgo logs through; nil means one of the
	// node's own. cmd/ shares it with sipgo's default logger.
	SIPLog *SIPLog
	// TSIGKey signs DNS UPDATEs; required when Config.DNS.Client.Servers
	// is set (unless Config.DNS.Client.Insecure).
	TSIGKey *dnsreport.Key
	Logger  *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Node is a running dsn service node.
type Node struct {
	cfg  Config
	deps Deps
	log  *zap.Logger
	now  func() time.Time

	metrics *metrics

	mu       sync.Mutex
	started  bool
	cl       *cluster.Cluster
	reg      *registrar.Registrar
	ua       *sipgo.UserAgent
	proxy    *proxy.Proxy
	nodeAuth *proxy.NodeAuth // DSN-Node-Auth keys, rotated with the cluster keys
	sipSrv   *sipgo.Server
	sipUDP   net.PacketConn
	sipTCP   net.Listener
	sipAddr  string // advertised SIP host:port
	resolver *dnsreport.DNSResolver
	reporter *dnsreport.Reporter
	// reps is read by ring-event callbacks, which can fire while Start
	// holds mu (the join emits events): an atomic, never under mu.
	reps     atomic.Pointer[reps.Manager]
	admin    *http.Server
	adminLn  net.Listener
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closed   bool
	leaving  bool
	joinedAt time.Time
}

// New checks cfg and prepares a node; nothing listens until Start.
func New(cfg Config, deps Deps) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	n := &Node{cfg: cfg, deps: deps, log: deps.Logger, now: deps.Now, metrics: newMetrics()}
	n.registerClusterStats(n.metrics.reg)
	return n, nil
}

// Start binds the SIP, cluster and admin sockets, creates or joins the
// ring, and serves. On error everything started is closed again.
func (n *Node) Start() (err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started {
		return errors.New("node: already started")
	}
	n.started = true
	defer func() {
		if err != nil {
			n.closeLocked()
		}
	}()
	if err := n.listenSIP(); err != nil {
		return err
	}
	ccfg := n.cfg.Cluster
	ccfg.Name = n.cfg.Name
	ccfg.Meta = n.sipAddr
	cl, err := cluster.StartKeys(ccfg, n.deps.clusterKeys(), n.log, n.onRingEvent)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.cl = cl
	n.joinedAt = n.now()
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	if err := n.startDNS(ctx); err != nil {
		return err
	}
	if err := n.startSIP(ctx); err != nil {
		return err
	}
	if err := n.startAdmin(); err != nil {
		return err
	}
	n.log.Info("node: serving", zap.String("name", n.cfg.Name), zap.String("sip", n.sipAddr),
		zap.String("cluster", cl.Transport().Addr()), zap.String("admin", n.AdminAddr()),
		zap.String("domain", n.cfg.Domain))
	return nil
}

// listenSIP binds TCP and UDP on the same port and works out the address
// to advertise.
func (n *Node) listenSIP() error {
	host, port, _ := net.SplitHostPort(n.cfg.SIPListen)
	var lastErr error
	for try := 0; try < 20; try++ {
		tcp, err := net.Listen("tcp", net.JoinHostPort(host, port))
		if err != nil {
			return fmt.Errorf("node: -sip %s: %w", n.cfg.SIPListen, err)
		}
		bound := strconv.Itoa(tcp.Addr().(*net.TCPAddr).Port)
		udp, err := net.ListenPacket("udp", net.JoinHostPort(host, bound))
		if err != nil {
			tcp.Close()
			lastErr = err
			if port == "0" {
				continue // the free TCP port was taken for UDP: pick another
			}
			return fmt.Errorf("node: -sip %s (udp): %w", n.cfg.SIPListen, err)
		}
		n.sipTCP, n.sipUDP = tcp, udp
		adv := n.cfg.SIPAdvertise
		if adv == "" {
			ip := net.ParseIP(host)
			if ip == nil || ip.IsUnspecified() {
				ip = outboundIP()
			}
			adv = net.JoinHostPort(ip.String(), bound)
		}
		n.sipAddr = adv
		return nil
	}
	return fmt.Errorf("node: -sip %s: no port free for both TCP and UDP: %w", n.cfg.SIPListen, lastErr)
}

// outboundIP returns the first non-loopback unicast address of this host,
// or 127.0.0.1.
func outboundIP() net.IP {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && ipn.IP.IsGlobalUnicast() {
				return ipn.IP
			}
		}
	}
	return net.IPv4(127, 0, 0, 1)
}

func (n *Node) startSIP(ctx context.Context) error {
	rcfg := n.cfg.Registrar
	if len(rcfg.Domains) == 0 {
		h, _, _ := net.SplitHostPort(n.sipAddr)
		rcfg.Domains = []string{n.cfg.Domain, h}
	}
	ring := n.cl.Node()
	self := "<sip:" + n.sipAddr + ";lr>"
	reg, err := registrar.New(rcfg, &ringStore{ring: ring, now: n.now}, n.now, n.log.Named("registrar"),
		registrar.WithAuthenticator(n.deps.Authenticator),
		registrar.WithPathSelf(func(aor string) (string, bool) {
			return self, !ring.Owns(dht.HashKey(aor))
		}))
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.reg = reg
	host, _, _ := net.SplitHostPort(n.sipAddr)
	sec, err := n.sipSecurity()
	if err != nil {
		return err
	}
	// The proxy's response tap handles responses the transaction layer
	// does not match; the default handler would only log them.
	ua, err := sipgo.NewUA(append(sec.uaOptions, sipgo.WithUserAgent("dsn/"+n.cfg.Name), sipgo.WithUserAgentHostname(host),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerUnhandledResponseHandler(func(*sip.Response) {})))...)
	if err != nil {
		return fmt.Errorf("node: sip: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(sec.slog))
	if err != nil {
		return fmt.Errorf("node: sip: %w", err)
	}
	n.ua, n.sipSrv = ua, srv
	// Admission control and input limits sit below sipgo, on the sockets
	// (sip/overload): a request shed there costs no goroutine and no
	// transaction.
	guard, err := n.startOverload(ctx)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	pc := n.cfg.Proxy
	pc.CallPolicy = n.callPolicy()
	pc.Domain = n.cfg.Domain
	pc.Advertise = n.sipAddr
	pc.ListenUDP = n.sipUDP.LocalAddr().String()
	deps := proxy.Deps{
		Locator:  &ringLocator{ring: ring, sipAddr: n.sipAddr, lookups: n.metrics.observeLookup},
		Bindings: reg,
		RegisterHandler: guard.countRegisters(func(req *sip.Request, tx sip.ServerTransaction) {
			n.metrics.registrations.Inc()
			reg.ServeSIP(req, tx)
		}),
		Logger:   n.log.Named("proxy"),
		Metrics:  proxy.MetricsFunc(n.metrics.observeCall),
		Trusted:  n.deps.Trusted,
		Callers:  n.deps.Callers,
		NodeAuth: sec.nodeAuth,
		Dials:    sec.dials,
	}
	if n.resolver != nil {
		deps.Resolver = n.resolver
	}
	px, err := proxy.New(pc, deps)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := px.Register(srv); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.proxy = px
	n.nodeAuth = sec.nodeAuth
	guard.proxy.Store(px)
	// Closing the wrappers closes the sockets.
	regUDP := startUDPRegistrar(ctx, &n.wg, &udpRegistrar{reg: reg, parser: proxy.NewParser(), timeout: rcfg.RequestTimeout,
		inflight: &guard.registers, served: n.metrics.registrations.Inc, slog: sec.slog}, n.cfg.Overload.MaxInflight)
	lanes := guard.gate.PacketConns(n.sipUDP, regUDP)
	n.sipUDP, n.sipTCP = lanes[0], guard.gate.Listener(n.sipTCP)
	tcp := n.sipTCP
	for _, udp := range lanes {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := srv.ServeUDP(udp); err != nil && ctx.Err() == nil {
				n.log.Warn("node: sip udp stopped", zap.Error(err))
			}
		}()
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := srv.ServeTCP(tcp); err != nil && ctx.Err() == nil {
			n.log.Warn("node: sip tcp stopped", zap.Error(err))
		}
	}()
	return nil
}

func (n *Node) onRingEvent(ev dht.Event) {
	n.metrics.ringEvents.WithLabelValues(ev.Kind.String()).Inc()
	if mgr := n.reps.Load(); mgr != nil {
		mgr.OnRingEvent(ev)
	}
	if ev.Kind == dht.EventNeighborFailed {
		n.log.Warn("node: neighbour failed", zap.String("peer", ev.Peer.Name), zap.String("addr", ev.Peer.Addr),
			zap.Bool("was_predecessor", ev.WasPredecessor), zap.Int("successor_index", ev.SuccessorIndex))
	}
}

// Ring returns the ring member (nil before Start).
func (n *Node) Ring() *dht.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cl == nil {
		return nil
	}
	return n.cl.Node()
}

// SIPAddr returns the advertised SIP address.
func (n *Node) SIPAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sipAddr
}

// ClusterAddr returns the advertised cluster address.
func (n *Node) ClusterAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cl == nil {
		return ""
	}
	return n.cl.Transport().Addr()
}

// AdminAddr returns the bound admin address ("" when disabled).
func (n *Node) AdminAddr() string {
	if n.adminLn == nil {
		return ""
	}
	return n.adminLn.Addr().String()
}

// Shutdown leaves gracefully: the node hands its data to its successor,
// tells its neighbours, leaves the gossip cluster and closes its sockets.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	if n.closed || n.leaving {
		n.mu.Unlock()
		return nil
	}
	n.leaving = true
	cl := n.cl
	n.mu.Unlock()
	// Withdraw from DNS first, while the Reporter still runs, so that no
	// caller is sent here after we are gone.
	err := n.withdrawDNS(ctx)
	if cl != nil {
		if lerr := cl.Leave(ctx); lerr != nil && err == nil {
			err = fmt.Errorf("node: leave: %w", lerr)
		}
	}
	n.Close()
	return err
}

// Close stops everything without leaving the ring.
func (n *Node) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closeLocked()
}

func (n *Node) closeLocked() {
	if n.closed {
		return
	}
	n.closed = true
	if n.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = n.admin.Shutdown(ctx)
		cancel()
	}
	if n.cancel != nil {
		n.cancel()
	}
	if n.sipSrv != nil {
		_ = n.sipSrv.Close()
	}
	if n.sipUDP != nil {
		_ = n.sipUDP.Close()
	}
	if n.sipTCP != nil {
		_ = n.sipTCP.Close()
	}
	if n.ua != nil {
		_ = n.ua.Close()
	}
	if n.cl != nil {
		n.cl.Close()
	}
	n.wg.Wait()
}

// Registry returns the node's Prometheus registry.
func (n *Node) Registry() *prometheus.Registry { return n.metrics.reg }
