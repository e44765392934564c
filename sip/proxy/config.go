package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// RouteMode is how a node that is not the callee's home node hands an
// initial INVITE on (the -route-mode flag).
type RouteMode string

const (
	// ModeProxy forwards the INVITE statefully to the home node.
	ModeProxy RouteMode = "proxy"
	// ModeRedirect answers 302 Moved Temporarily with the callee's URI at
	// the home node (sip:user@homeHost:port) as Contact.
	ModeRedirect RouteMode = "redirect"
)

// ParseRouteMode parses the -route-mode flag value.
func ParseRouteMode(s string) (RouteMode, error) {
	switch m := RouteMode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeProxy, ModeRedirect:
		return m, nil
	}
	return "", fmt.Errorf("%w: route mode %q, want proxy or redirect", ErrInvalidConfig, s)
}

// Config holds the proxy's tunables and its identity on the network.
// Dependencies (location, bindings, DNS, logger, clock, metrics) are Deps.
type Config struct {
	// Domain is the DSN SIP domain (-domain). A Request-URI with this host
	// names a DSN subscriber whose home node the Locator finds.
	Domain string
	// Advertise is this node's SIP address, host:port (-sip-advertise). It
	// is the sent-by of the proxy's Via, the host of its Record-Route, and
	// a Request-URI or Route naming it addresses this node.
	Advertise string
	// Aliases are further host or host:port values that mean this node
	// (e.g. a second IP, a DNS name). A host without port matches any port.
	Aliases []string
	// ListenUDP is the local address of the node's UDP SIP listener as its
	// net.PacketConn reports it (LocalAddr().String(), e.g. "10.0.0.7:5060"
	// or "[::]:5060"). Requests over UDP then leave from that socket, so a
	// phone's NAT pinhole and peers that answer to the source address see
	// the node's SIP port. Empty: sipgo picks the socket (an ephemeral
	// port per new destination).
	ListenUDP string
	// RouteMode is proxy or redirect; see RouteMode. Only initial INVITEs
	// are redirected: other out-of-dialog requests (MESSAGE, SUBSCRIBE,
	// OPTIONS to a user) are always proxied to the home node.
	RouteMode RouteMode
	// NodeTransport is the transport ("udp" or "tcp") used to forward to
	// another DSN node's Advertise address.
	NodeTransport string
	// MaxBranches caps the contacts an INVITE is forked to; further
	// bindings (lowest q, oldest) are left out.
	MaxBranches int
	// MaxForwards is put into a forwarded request that arrived without a
	// Max-Forwards header (RFC 3261 section 16.6 step 3).
	MaxForwards int
	// TimerC bounds how long an INVITE branch may ring after its last
	// provisional response before the proxy cancels it (RFC 3261 16.8;
	// must be above 3 minutes in production).
	TimerC time.Duration
	// FailoverTimeout is how long the proxy waits for any response from
	// one RFC 3263 target before it tries the next one. It applies only
	// while another target is left; the last target gets the full
	// transaction timeout (sipgo Timer B/F).
	FailoverTimeout time.Duration
	// NodeFailoverTimeout is how long the proxy waits for any response
	// to an INVITE from another DSN node - the callee's home node or one
	// of its alternates, or the Path edge a phone registered through -
	// before it gives that node up: it then tries the home node's next
	// alternate, or the phone directly without the Path. A live node
	// answers 100 Trying at once, so this can be short. A non-INVITE
	// gets no 100 from a live node before its final response, so it
	// waits max(NodeFailoverTimeout, FailoverTimeout) instead.
	NodeFailoverTimeout time.Duration
	// CancelTimeout bounds the wait for a branch's final response after the
	// proxy sent CANCEL on it; the branch then counts as 408.
	CancelTimeout time.Duration
	// AckWait bounds how long an in-dialog request (BYE, re-INVITE, UPDATE,
	// INFO...) waits for the ACK of the dialog's INVITE 2xx to be
	// forwarded first, so it cannot overtake the ACK downstream.
	AckWait time.Duration
	// AckGateTTL is how long the proxy remembers a forwarded INVITE 2xx
	// whose ACK it has not seen. Keep it >= 64*T1 (32 s).
	AckGateTTL time.Duration
	// LookupTimeout bounds each DHT, binding and DNS look-up made to route
	// one request, and connection set-up for one forwarded request.
	LookupTimeout time.Duration
	// RetryAfter is sent with the proxy's own 503 (home node or DNS not
	// reachable), so a CSCF fails over to another representative.
	RetryAfter time.Duration
	// CallPolicy decides who may send out-of-dialog requests to DSN
	// subscribers (-call-policy): accept, challenge (needs Deps.Callers)
	// or reject; trusted peers and DSN nodes are exempt. Requests that
	// would leave the DSN need a trusted source, a DSN node or Digest
	// whatever the policy (no open relay).
	CallPolicy CallPolicy
	// NodeAuthWindow is how far the time in a DSN-Node-Auth marker may be
	// from this node's clock, either way. It covers the network delay,
	// the retransmissions of an unanswered request over UDP (the last one
	// about 32 s after the first) and the clock difference between nodes
	// (keep them synchronised with NTP).
	NodeAuthWindow time.Duration
}

// DefaultConfig returns production defaults. Domain and Advertise are
// empty and must be set before Validate passes.
func DefaultConfig() Config {
	return Config{
		RouteMode:           ModeProxy,
		NodeTransport:       "udp",
		MaxBranches:         10,
		MaxForwards:         70,
		TimerC:              181 * time.Second,
		FailoverTimeout:     4 * time.Second,
		NodeFailoverTimeout: time.Second,
		CancelTimeout:       32 * time.Second,
		AckWait:             time.Second,
		AckGateTTL:          32 * time.Second,
		LookupTimeout:       3 * time.Second,
		RetryAfter:          5 * time.Second,
		CallPolicy:          PolicyChallenge,
		NodeAuthWindow:      time.Minute,
	}
}

// Validate checks every field and the fields against each other.
func (c Config) Validate() error {
	if c.Domain == "" || strings.ContainsAny(c.Domain, " \t;:@<>") {
		return fmt.Errorf("%w: Domain %q, want a host name", ErrInvalidConfig, c.Domain)
	}
	if _, _, err := splitHostPort(c.Advertise); err != nil || !strings.Contains(c.Advertise, ":") {
		return fmt.Errorf("%w: Advertise %q, want host:port", ErrInvalidConfig, c.Advertise)
	}
	for _, a := range c.Aliases {
		if _, _, err := splitHostPort(a); err != nil {
			return fmt.Errorf("%w: alias %q: %v", ErrInvalidConfig, a, err)
		}
	}
	if c.ListenUDP != "" {
		if _, err := netip.ParseAddrPort(c.ListenUDP); err != nil {
			return fmt.Errorf("%w: ListenUDP %q, want ip:port: %v", ErrInvalidConfig, c.ListenUDP, err)
		}
	}
	switch c.CallPolicy {
	case PolicyAccept, PolicyChallenge, PolicyReject:
	default:
		return fmt.Errorf("%w: CallPolicy %q, want accept, challenge or reject", ErrInvalidConfig, c.CallPolicy)
	}
	if c.RouteMode != ModeProxy && c.RouteMode != ModeRedirect {
		return fmt.Errorf("%w: RouteMode %q, want proxy or redirect", ErrInvalidConfig, c.RouteMode)
	}
	switch strings.ToLower(c.NodeTransport) {
	case "udp", "tcp":
	default:
		return fmt.Errorf("%w: NodeTransport %q, want udp or tcp", ErrInvalidConfig, c.NodeTransport)
	}
	if c.MaxBranches < 1 || c.MaxBranches > 64 {
		return fmt.Errorf("%w: MaxBranches = %d, want 1..64", ErrInvalidConfig, c.MaxBranches)
	}
	if c.MaxForwards < 1 || c.MaxForwards > 255 {
		return fmt.Errorf("%w: MaxForwards = %d, want 1..255", ErrInvalidConfig, c.MaxForwards)
	}
	durations := []struct {
		name string
		v    time.Duration
	}{
		{"TimerC", c.TimerC},
		{"FailoverTimeout", c.FailoverTimeout},
		{"NodeFailoverTimeout", c.NodeFailoverTimeout},
		{"CancelTimeout", c.CancelTimeout},
		{"AckWait", c.AckWait},
		{"AckGateTTL", c.AckGateTTL},
		{"LookupTimeout", c.LookupTimeout},
		{"RetryAfter", c.RetryAfter},
		{"NodeAuthWindow", c.NodeAuthWindow},
	}
	for _, d := range durations {
		if d.v <= 0 {
			return fmt.Errorf("%w: %s = %v, want > 0", ErrInvalidConfig, d.name, d.v)
		}
	}
	if c.AckWait > c.AckGateTTL {
		return fmt.Errorf("%w: AckWait %v > AckGateTTL %v", ErrInvalidConfig, c.AckWait, c.AckGateTTL)
	}
	if c.RetryAfter%time.Second != 0 {
		return fmt.Errorf("%w: RetryAfter = %v, want whole seconds", ErrInvalidConfig, c.RetryAfter)
	}
	return nil
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port"; port 0
// means absent.
func splitHostPort(s string) (host string, port int, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", 0, fmt.Errorf("empty address")
	}
	if h, p, e := net.SplitHostPort(s); e == nil {
		n, perr := strconv.Atoi(p)
		if perr != nil || n <= 0 || n > 65535 {
			return "", 0, fmt.Errorf("bad port in %q", s)
		}
		if h == "" {
			return "", 0, fmt.Errorf("no host in %q", s)
		}
		return normHost(h), n, nil
	}
	if strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") {
		return "", 0, fmt.Errorf("bad address %q", s)
	}
	if strings.Contains(s, ":") && !strings.HasSuffix(s, "]") {
		return "", 0, fmt.Errorf("bad address %q", s)
	}
	return normHost(s), 0, nil
}
