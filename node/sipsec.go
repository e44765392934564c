package node

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsn-ims/dsn/sip/proxy"
)

// sipSecurity is what the node adds to sipgo and the proxy against
// careless or hostile peers (issue 6).
type sipSecurity struct {
	// uaOptions: the dial guard (no DNS, connections only to the proxy's
	// next hops), the white-space tolerant parser, and the SIP log.
	uaOptions []sipgo.UserAgentOption
	slog      *slog.Logger
	nodeAuth  *proxy.NodeAuth
	dials     *proxy.DialGuard
}

// sipLogInterval is how often sipgo's warnings of one kind (and the
// summary of unparsable input dropped) reach the log.
const sipLogInterval = 10 * time.Second

func (n *Node) sipSecurity() (sipSecurity, error) {
	var s sipSecurity
	na, err := proxy.NewNodeAuth(n.deps.clusterKeys())
	if err != nil {
		return s, fmt.Errorf("node: %w", err)
	}
	s.nodeAuth = na
	h := n.deps.SIPLog
	if h == nil {
		h = NewSIPLog(n.log, sipLogInterval, n.now)
	}
	if err := n.metrics.reg.Register(h.Collector()); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return s, fmt.Errorf("node: %w", err)
		}
	}
	s.slog = slog.New(h)
	lookup := n.cfg.Proxy.LookupTimeout
	if lookup <= 0 {
		lookup = proxy.DefaultConfig().LookupTimeout
	}
	s.dials = proxy.NewDialGuard(nil, lookup, lookup)
	g := s.dials
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "dsn_sip_dials_refused_total",
			Help: "Connections sipgo tried to open to an address that is not a next hop of the proxy (a response's top Via), refused.",
		}, func() float64 { return float64(g.Stats().Refused) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "dsn_sip_dns_lookups_refused_total",
			Help: "Name look-ups sipgo attempted (a response's top Via host), refused: the proxy resolves next hops itself.",
		}, func() float64 { return float64(g.Stats().Lookups) }),
	} {
		if err := n.metrics.reg.Register(c); err != nil {
			return s, fmt.Errorf("node: %w", err)
		}
	}
	s.uaOptions = append(s.dials.UserAgentOptions(),
		sipgo.WithUserAgentParser(proxy.NewParser()),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(s.slog)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(s.slog)))
	return s, nil
}

// callPolicy is Config.Proxy.CallPolicy, or when it is empty challenge
// if the node has credentials to check (Deps.Callers) and accept if not.
func (n *Node) callPolicy() proxy.CallPolicy {
	if p := n.cfg.Proxy.CallPolicy; p != "" {
		return p
	}
	if n.deps.Callers != nil {
		return proxy.PolicyChallenge
	}
	return proxy.PolicyAccept
}
