// Command dsn-node runs one DSN service node: a SIP registrar and proxy
// with an embedded Chord DHT. See the repository README and
// shared INTERFACE.md for the flags; every flag can also come from a YAML
// file (-config) or the environment (DSN_<FLAG>).
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dsn-ims/dsn/node"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// options are the command-line settings before they become node.Config.
type options struct {
	config, name, domain, sip, sipAdvertise         string
	cluster, clusterAdvertise, join, clusterKeyFile string
	replicas                                        int
	admin, logLevel, logFormat                      string
	dev                                             bool
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
	fs.StringVar(&o.admin, "admin", "127.0.0.1:8080", "admin HTTP `address`: /metrics /healthz /readyz /v1/...; empty disables")
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

	cfg, deps, err := buildConfig(&o, log)
	if err != nil {
		fmt.Fprintf(stderr, "dsn-node: %v\n", err)
		return 2
	}
	var dev *devEnv
	if o.dev {
		if dev, err = startDev(&o, &cfg, log); err != nil {
			fmt.Fprintf(stderr, "dsn-node: -dev: %v\n", err)
			return 1
		}
		defer dev.Close()
	}
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
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
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
	if o.replicas < 1 {
		return cfg, node.Deps{}, fmt.Errorf("-replicas %d: must be at least 1", o.replicas)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, node.Deps{}, err
	}
	deps := node.Deps{Logger: log}
	switch {
	case o.clusterKeyFile != "":
		key, err := loadClusterKey(o.clusterKeyFile, log)
		if err != nil {
			return cfg, deps, err
		}
		deps.ClusterKey = key
	case o.dev:
		deps.ClusterKey = make([]byte, 32)
		if _, err := rand.Read(deps.ClusterKey); err != nil {
			return cfg, deps, err
		}
	default:
		return cfg, deps, errors.New("-cluster-key-file: must be set: inter-node traffic is always authenticated " +
			"(create one with: head -c 32 /dev/urandom | base64 > cluster.key; chmod 600 cluster.key; the same file on every node)")
	}
	return cfg, deps, nil
}

// loadClusterKey reads a 16/24/32-byte secret given raw, hex or base64.
func loadClusterKey(path string, log *zap.Logger) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("-cluster-key-file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		log.Warn("dsn-node: cluster key file is readable by group or others; chmod 600 it", zap.String("file", path))
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-cluster-key-file: %w", err)
	}
	text := strings.TrimSpace(string(raw))
	for _, dec := range []func(string) ([]byte, error){base64.StdEncoding.DecodeString, hex.DecodeString} {
		if b, err := dec(text); err == nil && validKeyLen(len(b)) {
			return b, nil
		}
	}
	if validKeyLen(len(raw)) {
		return raw, nil
	}
	return nil, fmt.Errorf("-cluster-key-file %s: want 16, 24 or 32 bytes (raw, hex or base64), got %d bytes of text "+
		"(create one with: head -c 32 /dev/urandom | base64 > %s)", path, len(text), path)
}

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }

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
