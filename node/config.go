package node

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/dsn-ims/dsn/dht/cluster"
	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/node/reps"
	"github.com/dsn-ims/dsn/sip/overload"
	"github.com/dsn-ims/dsn/sip/proxy"
	"github.com/dsn-ims/dsn/sip/registrar"
)

// Config is everything tunable about a node. Secrets (the cluster key, the
// TSIG key, digest credentials) are not configuration: they are passed to
// New in Deps, loaded by cmd/ from files.
type Config struct {
	// Name is the node's unique, stable name; its ring ID derives from it.
	Name string
	// Domain is the DSN SIP domain (e.g. dsn.example.com).
	Domain string
	// SIPListen is the SIP listen address, UDP and TCP ("host:port").
	SIPListen string
	// SIPAdvertise is the address put in DNS, Via, Record-Route and
	// Contact; empty means SIPListen with a concrete IP.
	SIPAdvertise string
	// Cluster configures the ring member (listen address, join list,
	// replicas, timers).
	Cluster cluster.Config
	// Registrar configures REGISTER handling (Domains is filled from
	// Domain and the advertise address when empty).
	Registrar registrar.Config
	// DNS configures the UPDATE client (Client.Servers set = this node
	// takes part in DNS reporting), the retry engine, the resolver used for
	// ENUM and RFC 3263, and the records published.
	DNS dnsreport.Config
	// Reps configures representative election and the neighbour watch
	// (Zone defaults to Domain; Domain and Records are filled in).
	Reps reps.Config
	// Proxy configures call routing (Domain, Advertise and ListenUDP are
	// filled in at start; RouteMode is -route-mode, CallPolicy
	// -call-policy: empty means challenge when Deps.Callers is set, else
	// accept).
	Proxy proxy.Config
	// AdminListen is the admin HTTP address; empty disables it.
	AdminListen string
	// Pprof serves /debug/pprof/ on the admin listener.
	Pprof bool
	// ShutdownTimeout bounds the graceful leave.
	ShutdownTimeout time.Duration
	// Overload is the SIP admission control and input limits
	// (sip/overload; MaxInflight is -max-inflight), checked at Start.
	Overload overload.Config
}

// DefaultConfig returns the defaults of the operator contract.
func DefaultConfig() Config {
	return Config{
		SIPListen:       ":5060",
		Cluster:         cluster.DefaultConfig(),
		Registrar:       registrar.DefaultConfig(),
		DNS:             dnsreport.DefaultConfig(),
		Reps:            reps.DefaultConfig(),
		Proxy:           defaultProxyConfig(),
		AdminListen:     "127.0.0.1:8080",
		ShutdownTimeout: 10 * time.Second,
		Overload:        overload.DefaultConfig(),
	}
}

// Validate checks the configuration; errors name the operator-facing
// setting to fix.
func (c Config) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf("node: "+f, a...)) }
	if c.Name == "" {
		bad("-name: must be set (unique and stable across restarts)")
	}
	if c.Domain == "" {
		bad("-domain: must be set (the DSN SIP domain, e.g. dsn.example.com)")
	} else if strings.ContainsAny(c.Domain, " /:@") {
		bad("-domain %q: must be a bare domain name", c.Domain)
	}
	if err := checkHostPort(c.SIPListen); err != nil {
		bad("-sip %q: %v", c.SIPListen, err)
	}
	if c.SIPAdvertise != "" {
		if err := checkHostPort(c.SIPAdvertise); err != nil {
			bad("-sip-advertise %q: %v", c.SIPAdvertise, err)
		} else if h, p, _ := net.SplitHostPort(c.SIPAdvertise); net.ParseIP(h) == nil || p == "0" {
			bad("-sip-advertise %q: must be a concrete IP address and port", c.SIPAdvertise)
		}
	}
	if c.AdminListen != "" {
		if err := checkHostPort(c.AdminListen); err != nil {
			bad("-admin %q: %v", c.AdminListen, err)
		}
	}
	if c.ShutdownTimeout <= 0 {
		bad("ShutdownTimeout must be positive")
	}
	if _, err := proxy.ParseRouteMode(string(c.Proxy.RouteMode)); err != nil {
		bad("-route-mode %q: want proxy or redirect", c.Proxy.RouteMode)
	}
	if p := c.Proxy.CallPolicy; p != "" && p != proxy.PolicyAccept && p != proxy.PolicyChallenge && p != proxy.PolicyReject {
		bad("-call-policy %q: want accept, challenge or reject", p)
	}
	if err := c.DNS.Resolver.Validate(); err != nil {
		bad("-resolver/-enum-suffix: %v", err)
	}
	if len(c.DNS.Client.Servers) > 0 {
		if err := c.DNS.Validate(); err != nil {
			bad("-dns-server/-dns-ttl: %v", err)
		}
		rc := c.Reps
		if rc.Zone == "" {
			rc.Zone = c.Domain
		}
		rc.Domain = c.Domain
		rc.Records = c.DNS.Records
		if err := rc.Validate(); err != nil {
			bad("-reps/-dns-zone: %v", err)
		}
	}
	cc := c.Cluster
	cc.Name = c.Name
	if err := cc.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func checkHostPort(s string) error {
	_, p, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	if p == "" {
		return errors.New("missing port")
	}
	return nil
}

// defaultProxyConfig is the proxy's defaults with the call policy left to
// the node (see Config.Proxy).
func defaultProxyConfig() proxy.Config {
	c := proxy.DefaultConfig()
	c.CallPolicy = ""
	return c
}
