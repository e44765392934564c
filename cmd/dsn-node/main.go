// Command dsn-node runs one DSN service node: a SIP registrar and proxy
// with an embedded Chord DHT. See the repository README and
// shared INTERFACE.md for the flags; every flag can also come from a YAML
// file (-config) or the environment (DSN_<FLAG>).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/node"
	"github.com/dsn-ims/dsn/sip/auth"
	"github.com/dsn-ims/dsn/sip/overload"
	"github.com/dsn-ims/dsn/sip/proxy"
	"github.com/dsn-ims/dsn/sip/registrar"
)

func main() {
	// sipgo refuses to send any UDP message over UDPMTUSize-200 bytes,
	// responses too; RFC 3261 18.1.1 moves only requests that large to
	// TCP (the proxy does that itself), and responses must be sent
	// (18.2.2). A package global of sipgo: set here only.
	sip.UDPMTUSize = 65535
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// options are the command-line settings before they become node.Config.
type options struct {
	config, name, domain, sip, sipAdvertise         string
	cluster, clusterAdvertise, join, clusterKeyFile string
	replicas                                        int
	reps                                            int
	routeMode                                       string
	dnsServer, dnsZone, tsigKeyFile, resolver       string
	enumSuffix                                      string
	dnsTTL                                          time.Duration
	dnsInsecure                                     bool
	admin, logLevel, logFormat                      string
	dev                                             bool
	pprof                                           bool
	maxInflight                                     int
	maxTransactions                                 int
	memoryLimit                                     string
	gcPercent                                       int
	txLinger                                        time.Duration
	maxQueueDelay                                   time.Duration
	udpReaders                                      int
	mem                                             memorySettings // resolved from memoryLimit and gcPercent by run
	authFile, trusted                               string
	authOpen                                        bool
	callPolicy, authAlgorithms                      string
}

func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("dsn-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host, _ := os.Hostname()
	fs.StringVar(&o.config, "config", "", "YAML `file` with the same keys as the flags; flags override it")
	fs.StringVar(&o.name, "name", host, "node `name`, unique and stable across restarts; the ring ID is derived from it")
	fs.StringVar(&o.domain, "domain", "", "the DSN SIP `domain`, e.g. dsn.example.com (required unless -dev)")
	fs.StringVar(&o.sip, "sip", ":5060", "SIP listen `address` (host:port), UDP and TCP")
	fs.StringVar(&o.sipAdvertise, "sip-advertise", "", "SIP `address` put in DNS, Via, Record-Route and Contact (default: -sip with a concrete IP)")
	fs.StringVar(&o.cluster, "cluster", ":7946", "inter-node listen `address`: gossip (UDP+TCP) and DHT RPC (TCP)")
	fs.StringVar(&o.clusterAdvertise, "cluster-advertise", "", "cluster `address` (IP:port) other nodes reach this one at")
	fs.StringVar(&o.join, "join", "", "cluster `addresses` (comma list) of nodes already in the ring; none starts a new ring")
	fs.StringVar(&o.clusterKeyFile, "cluster-key-file", "", "`file` with the shared secret (16, 24 or 32 bytes; raw, hex or base64) that encrypts gossip and authenticates DHT RPC")
	fs.IntVar(&o.replicas, "replicas", 3, "copies kept of every registration (owner + successors)")
	fs.StringVar(&o.routeMode, "route-mode", "proxy", "how a node that is not the callee's home hands an INVITE on: `proxy` it there, or `redirect` (302 with the home node's Contact)")
	fs.IntVar(&o.reps, "reps", 2, "number of representative nodes (published in DNS)")
	fs.StringVar(&o.dnsServer, "dns-server", "", "DNS `servers` (comma list, host:port) that accept UPDATE for the zone, tried in order; empty: this node does not report to DNS")
	fs.StringVar(&o.dnsZone, "dns-zone", "", "`zone` to update (default: -domain)")
	fs.DurationVar(&o.dnsTTL, "dns-ttl", 30*time.Second, "TTL of published records")
	fs.StringVar(&o.tsigKeyFile, "tsig-key-file", "", "TSIG key `file` in BIND format (as written by tsig-keygen); required with -dns-server")
	fs.BoolVar(&o.dnsInsecure, "dns-insecure", false, "send unsigned DNS UPDATEs (only for a server that authorises by address; never in production)")
	fs.StringVar(&o.resolver, "resolver", "system", "DNS `server` (host:port) for ENUM and RFC 3263 look-ups; system: /etc/resolv.conf")
	fs.StringVar(&o.enumSuffix, "enum-suffix", "e164.arpa.", "ENUM `zone` suffix")
	fs.StringVar(&o.admin, "admin", "127.0.0.1:8080", "admin HTTP `address`: /metrics /healthz /readyz /v1/...; empty disables")
	fs.StringVar(&o.authFile, "auth-file", "", "SIP digest credentials `file` (user realm HA1 per line; see sip/auth); when set, REGISTER must authenticate")
	fs.StringVar(&o.trusted, "trusted", "", "peers (`CIDR` list, e.g. the IMS CSCF) whose requests need no digest")
	fs.BoolVar(&o.authOpen, "auth-open", false, "accept REGISTER without authentication (explicit; -dev implies it)")
	fs.StringVar(&o.callPolicy, "call-policy", "", "who may call DSN users: `accept` (anyone), challenge (untrusted callers must authenticate with -auth-file credentials: 407), reject (403); -trusted peers and DSN nodes are exempt. Default: challenge with -auth-file, accept with -auth-open or -dev")
	fs.StringVar(&o.authAlgorithms, "auth-algorithms", "SHA-256,MD5", "digest `algorithms` offered in 401/407 challenges, in this order (RFC 8760); clients that read only the first challenge and lack SHA-256 (e.g. SIPp 3.6) need MD5,SHA-256")
	fs.IntVar(&o.maxInflight, "max-inflight", overload.DefaultConfig().MaxInflight, "SIP requests in progress (calls until their final response, REGISTERs) beyond which new out-of-dialog requests get 503 with Retry-After")
	fs.IntVar(&o.maxTransactions, "max-transactions", 0, "SIP requests handed to the stack within -sip-tx-linger (each holds a transaction that long) beyond which requests get 503: new out-of-dialog ones at 3/8 of it per -sip-tx-linger, after an eighth at once; bounds the memory of calls. 0: sized from -memory-limit (half of it, 12 KiB a request)")
	fs.DurationVar(&o.maxQueueDelay, "max-queue-delay", overload.DefaultConfig().MaxQueueDelay, "scheduling delay (runnable goroutines waiting for a CPU, 99th percentile, sustained 1 s) at which new out-of-dialog requests get 503: the node is CPU-bound; 0 disables")
	fs.IntVar(&o.udpReaders, "udp-readers", 0, "goroutines that parse the SIP UDP socket's datagrams in parallel, each with the messages of its share of Call-IDs (in order); 0: one per CPU")
	fs.DurationVar(&o.txLinger, "sip-tx-linger", defaultTxLinger, "how long a SIP transaction is kept after its final response to absorb retransmissions (RFC 3261 Timers J, L, M, D: 32s; Kamailio's wait timer: 5s); 1s to 32s")
	fs.StringVar(&o.memoryLimit, "memory-limit", "auto", "the process's memory `size` (e.g. 4GiB; Go's soft limit): the garbage collector works harder near it, new calls get 503 once the live heap reaches half of it, and -max-transactions is sized from it. auto: GOMEMLIMIT if set, else 90% of the cgroup's limit, else a quarter of the RAM")
	fs.IntVar(&o.gcPercent, "gc-percent", 0, "Go garbage-collection `target` (GOGC): the heap may grow this many percent over the live heap before a collection. 0: GOGC if set, else 400 (the memory limit bounds the growth)")
	fs.BoolVar(&o.pprof, "pprof", false, "serve Go profiling at /debug/pprof/ on the admin address (keep the admin address private)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log `level`: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", "json", "log `format`: json or console")
	fs.BoolVar(&o.dev, "dev", false, "self-contained development mode: loopback addresses, generated keys, embedded DNS server, joins nothing")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: dsn-node [flags]\n\nRuns one DSN service node (SIP registrar + proxy with an embedded Chord DHT).\n"+
			"Every flag can also be set in a YAML file (-config, same keys) or as DSN_<FLAG> in the environment\n"+
			"(e.g. DSN_CLUSTER_KEY_FILE). Precedence: flags > environment > file > defaults.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var o options
	fs := newFlagSet(&o, stderr)
	if err := loadFlags(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "dsn-node: %v\n", err)
		return 2
	}
	if o.dev {
		applyDevDefaults(&o, fs)
	}
	log, err := newLogger(o.logLevel, o.logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "dsn-node: %v\n", err)
		return 2
	}
	defer log.Sync()
	// sipgo logs through its package default logger where the node cannot
	// hand it one (the TCP transport); set once, here.
	sipLog := node.NewSIPLog(log, 10*time.Second, nil)
	sip.SetDefaultLogger(slog.New(sipLog))

	var dev *devEnv
	if o.dev {
		if dev, err = startDev(&o, log); err != nil {
			fmt.Fprintf(stderr, "dsn-node: -dev: %v\n", err)
			return 1
		}
		defer dev.Close()
	}
	if o.mem, err = resolveMemory(o.memoryLimit, o.gcPercent, getenv, os.ReadFile); err != nil {
		fmt.Fprintf(stderr, "dsn-node: %v\n", err)
		return 2
	}
	cfg, deps, err := buildConfig(&o, log)
	if err != nil {
		fmt.Fprintf(stderr, "dsn-node: %v\n", err)
		return 2
	}
	o.mem.apply()
	applyTxLinger(o.txLinger)
	log.Info("dsn-node: memory", zap.Uint64("memory_limit", o.mem.limit), zap.String("memory_limit_from", o.mem.limitFrom),
		zap.Int("gc_percent", o.mem.gcPercent), zap.String("gc_percent_from", o.mem.gcFrom),
		zap.Int("max_transactions", cfg.Overload.MaxTransactions), zap.Uint64("max_heap", cfg.Overload.MaxHeap),
		zap.Duration("sip_tx_linger", o.txLinger))
	deps.SIPLog = sipLog
	n, err := node.New(cfg, deps)
	if err != nil {
		fmt.Fprintf(stderr, "dsn-node: %v\n", err)
		return 2
	}
	if err := n.Start(); err != nil {
		fmt.Fprintf(stderr, "dsn-node: %v\n", err)
		return 1
	}
	if dev != nil {
		dev.PrintInstructions(stdout, n)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	s := <-sig
	for ; s == syscall.SIGHUP; s = <-sig {
		reloadClusterKeys(o.clusterKeyFile, n, log)
	}
	log.Info("dsn-node: leaving gracefully", zap.String("signal", s.String()))
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		log.Error("dsn-node: graceful leave incomplete", zap.Error(err))
		return 1
	}
	log.Info("dsn-node: left the ring")
	return 0
}

// buildConfig turns the options into the node's configuration and
// dependencies, loading secrets from their files.
func buildConfig(o *options, log *zap.Logger) (node.Config, node.Deps, error) {
	cfg := node.DefaultConfig()
	cfg.Name = o.name
	cfg.Domain = o.domain
	cfg.SIPListen = o.sip
	cfg.SIPAdvertise = o.sipAdvertise
	cfg.Cluster.TCP.BindAddr = o.cluster
	cfg.Cluster.TCP.AdvertiseAddr = o.clusterAdvertise
	cfg.Cluster.Join = splitList(o.join)
	cfg.Cluster.DHT.Replicas = o.replicas
	if cfg.Cluster.DHT.SuccessorListLen < o.replicas {
		cfg.Cluster.DHT.SuccessorListLen = o.replicas
	}
	cfg.AdminListen = o.admin
	cfg.Pprof = o.pprof
	cfg.Overload = cfg.Overload.ForMemory(o.mem.limit)
	cfg.Overload.TrackTTL = o.txLinger
	cfg.Overload.MaxQueueDelay = o.maxQueueDelay
	cfg.Overload.UDPReaders = o.udpReaders
	cfg.Overload.MaxInflight = o.maxInflight
	if o.maxTransactions != 0 {
		cfg.Overload.MaxTransactions = o.maxTransactions
	}
	cfg.Reps.K = o.reps
	cfg.Proxy.RouteMode = proxy.RouteMode(o.routeMode)
	cfg.Reps.Zone = o.dnsZone
	cfg.DNS.Client.Servers = splitList(o.dnsServer)
	cfg.DNS.Client.Insecure = o.dnsInsecure
	cfg.DNS.Records.TTL = o.dnsTTL
	cfg.DNS.Resolver.Server = o.resolver
	cfg.DNS.Resolver.ENUMSuffix = o.enumSuffix
	if o.replicas < 1 {
		return cfg, node.Deps{}, fmt.Errorf("-replicas %d: must be at least 1", o.replicas)
	}
	if err := checkTxLinger(o.txLinger); err != nil {
		return cfg, node.Deps{}, err
	}
	if o.udpReaders < 0 || o.udpReaders > 256 {
		return cfg, node.Deps{}, fmt.Errorf("-udp-readers %d: want 0 (one per CPU) to 256", o.udpReaders)
	}
	if o.maxQueueDelay < 0 {
		return cfg, node.Deps{}, fmt.Errorf("-max-queue-delay %v: want >= 0 (0 disables)", o.maxQueueDelay)
	}
	if o.maxTransactions != 0 {
		if err := cfg.Overload.Validate(); err != nil {
			return cfg, node.Deps{}, fmt.Errorf("-max-transactions %d: %w", o.maxTransactions, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, node.Deps{}, err
	}
	deps := node.Deps{Logger: log}
	switch {
	case o.tsigKeyFile != "":
		keys, warn, err := dnsreport.LoadKeyFile(o.tsigKeyFile)
		if err != nil {
			return cfg, deps, fmt.Errorf("-tsig-key-file: %w", err)
		}
		if warn != nil {
			log.Warn("dsn-node: "+warn.String(), zap.String("file", o.tsigKeyFile))
		}
		if len(keys) != 1 {
			return cfg, deps, fmt.Errorf("-tsig-key-file %s: want exactly one key, found %d", o.tsigKeyFile, len(keys))
		}
		deps.TSIGKey = &keys[0]
	case o.dnsServer != "" && !o.dnsInsecure:
		return cfg, deps, errors.New("-tsig-key-file: must be set with -dns-server: every DNS UPDATE is TSIG-signed " +
			"(create one with: tsig-keygen -a hmac-sha256 dsn-update > dsn-update.key, and grant it in named.conf: " +
			"update-policy { grant dsn-update zonesub ANY; };); -dns-insecure sends unsigned updates")
	}
	switch {
	case o.clusterKeyFile != "":
		keys, err := loadClusterKeys(o.clusterKeyFile, log)
		if err != nil {
			return cfg, deps, err
		}
		deps.ClusterKey, deps.ClusterKeys = keys[0], keys
	case o.dev:
		deps.ClusterKey = make([]byte, 32)
		if _, err := rand.Read(deps.ClusterKey); err != nil {
			return cfg, deps, err
		}
	default:
		return cfg, deps, errors.New("-cluster-key-file: must be set: inter-node traffic is always authenticated " +
			"(create one with: head -c 32 /dev/urandom | base64 > cluster.key; chmod 600 cluster.key; the same file on every node)")
	}
	authn, err := buildAuth(o, log)
	if err != nil {
		return cfg, deps, err
	}
	deps.Authenticator = authn
	if err := applyCallPolicy(o, log, &cfg, &deps); err != nil {
		return cfg, deps, err
	}
	return cfg, deps, nil
}

func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, fmt.Errorf("-log-format %q: want json or console", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), lvl)), nil
}

// buildAuth chooses how REGISTER is authenticated: digest with -auth-file,
// open with -auth-open or -dev, and otherwise refuses to start (secure by
// default).
func buildAuth(o *options, log *zap.Logger) (registrar.Authenticator, error) {
	trusted, err := auth.ParseTrusted(o.trusted)
	if err != nil {
		return nil, fmt.Errorf("-trusted: %w", err)
	}
	switch {
	case o.authFile != "" && o.authOpen:
		return nil, errors.New("-auth-file and -auth-open contradict each other: choose one")
	case o.authFile != "":
		store, err := auth.LoadFile(o.authFile)
		if err != nil {
			return nil, fmt.Errorf("-auth-file: %w", err)
		}
		for _, w := range store.Warnings() {
			log.Warn("dsn-node: -auth-file", zap.Error(w))
		}
		acfg := auth.DefaultConfig()
		acfg.Realm = o.domain
		if acfg.Algorithms, err = auth.ParseAlgorithmList(o.authAlgorithms); err != nil {
			return nil, fmt.Errorf("-auth-algorithms: %w", err)
		}
		return auth.New(acfg, store, trusted, time.Now, nil, log.Named("auth"))
	case o.authOpen || o.dev:
		if !o.dev {
			log.Warn("dsn-node: -auth-open: any client may REGISTER any address of the domain")
		}
		return registrar.AllowAll{}, nil
	}
	return nil, errors.New("-auth-file: must be set (SIP digest credentials; see sip/auth for the format), " +
		"or -auth-open to accept REGISTER from anyone")
}
