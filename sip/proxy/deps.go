package proxy

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/sip/registrar"
	"github.com/emiago/sipgo"
	"go.uber.org/zap"
)

// Home is the node that holds a subscriber's data (its home SN).
type Home struct {
	// Self is true when this node is the home node.
	Self bool
	// Name is the node's name (for logs).
	Name string
	// Addr is the home node's SIP address, host:port (its Advertise).
	Addr string
	// Alternates are the nodes that hold replicas of the home node's
	// records (its first Replicas-1 successors on the ring), in ring
	// order: the node that takes the subscriber over when the home node
	// fails comes first. A node that proxies to the home node tries them
	// in order when the home node does not answer. May be empty.
	Alternates []Alternate
}

// Alternate is a node that holds a replica of a home node's records.
type Alternate struct {
	// Self is true when this node is the alternate.
	Self bool
	// Name is the node's name (for logs).
	Name string
	// Addr is the node's SIP address, host:port (its Advertise).
	Addr string
}

// Locator finds the home node of an address-of-record. The node implements
// it with the DHT: home = successor(hash(AOR)), alternates = the home
// node's successors that hold its replicas. It must be safe for
// concurrent use; it is called with a context bounded by
// Config.LookupTimeout.
type Locator interface {
	Home(ctx context.Context, aor string) (Home, error)
}

// Bindings returns the live contacts of an AOR, best first, or
// registrar.ErrNotFound (never registered: 404) / registrar.ErrNoBindings
// (registered, none live: 480). *registrar.Registrar implements it.
type Bindings interface {
	Lookup(ctx context.Context, aor string) ([]registrar.Binding, error)
}

var _ Bindings = (*registrar.Registrar)(nil)

// Clock is the proxy's source of time. AfterFunc runs f once after d on its
// own goroutine and returns a function that stops it (reporting whether it
// stopped it before it ran).
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock is the Clock of the time package.
type SystemClock struct{}

var _ Clock = SystemClock{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc implements Clock.
func (SystemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Deps are the proxy's collaborators.
type Deps struct {
	// Locator finds home nodes (required).
	Locator Locator
	// Bindings looks up registered contacts on the home node (required).
	Bindings Bindings
	// Resolver does ENUM and RFC 3263 server location. Optional: without
	// it tel: and E.164 URIs get 404 and other domains named by host name
	// get 503; IP literals still work.
	Resolver dnsreport.Resolver
	// RegisterHandler, if set, is installed for REGISTER (e.g. the
	// registrar's ServeSIP). Without it REGISTER is answered 405.
	RegisterHandler sipgo.RequestHandler
	// Logger; nil logs nothing.
	Logger *zap.Logger
	// Clock; nil means SystemClock.
	Clock Clock
	// Metrics receives one Event per request the proxy finished; nil
	// means none.
	Metrics Metrics
	// Rand generates Via branch and Record-Route tokens; nil means a
	// generator seeded from crypto/rand.
	Rand *rand.Rand
	// Trusted are the peers (e.g. the IMS CSCF) exempt from the call
	// policy and the relay rule; nil means none.
	Trusted TrustedPeers
	// Callers authenticates callers by Digest (407 challenges). Required
	// for Config.CallPolicy challenge; without it no request is
	// challenged and relaying needs a trusted source or a DSN node.
	Callers Callers
	// NodeAuth signs requests this node forwards to other DSN nodes and
	// verifies theirs (DSN-Node-Auth). nil: nothing is signed, and no
	// request is recognised as coming from a DSN node, so a multi-node
	// DSN needs it unless every node trusts the others' addresses. It
	// also makes and checks the Record-Route token (dsnrr); without it
	// in-dialog requests of untrusted callers leaving the DSN get 403.
	NodeAuth *NodeAuth
	// Dials, when its UserAgentOptions are installed on the sipgo user
	// agent, is told each next hop before the proxy sends, so that sipgo
	// opens connections to those only. nil: sipgo dials as it likes.
	Dials *DialGuard
}
