package proxy

import "time"

// RouteKind says how the proxy routed a request; it labels metrics.
type RouteKind string

const (
	// RouteLocal: answered by this node without forwarding (OPTIONS to the
	// node, errors found before routing, 404/480 on the home node...).
	RouteLocal RouteKind = "local"
	// RouteHome: this node is the home node (in its own view of the
	// ring, or in that of the DSN node that sent the request here) and
	// forked to the bindings.
	RouteHome RouteKind = "home"
	// RouteAlternate: another node sent the request here as an alternate
	// of the callee's home node (the home node did not answer it), and
	// this node, which holds a replica of the home node's records, forked
	// to the bindings.
	RouteAlternate RouteKind = "alternate"
	// RouteProxy: forwarded to the home node (route mode proxy).
	RouteProxy RouteKind = "proxy"
	// RouteRedirect: answered 302 with the home node (route mode redirect).
	RouteRedirect RouteKind = "redirect"
	// RouteExternal: sent outside the DSN (IMS) after RFC 3263 server
	// location, possibly after ENUM.
	RouteExternal RouteKind = "external"
	// RouteDialog: followed Route headers or the Request-URI of an
	// in-dialog request, or a preloaded route.
	RouteDialog RouteKind = "dialog"
	// RoutePolicy: refused (403) or challenged (407) by the call policy
	// or the relay rule.
	RoutePolicy RouteKind = "policy"
)

// Outcome classifies how a request ended.
type Outcome string

const (
	OutcomeAnswered   Outcome = "answered"   // 2xx
	OutcomeRedirected Outcome = "redirected" // 3xx
	OutcomeFailed     Outcome = "failed"     // 4xx-6xx (other than 487 after CANCEL)
	OutcomeCancelled  Outcome = "cancelled"  // the caller sent CANCEL
	OutcomeNoAnswer   Outcome = "none"       // no response could be sent (ACK, lost upstream)
)

// Event describes one request the proxy has finished with: the final
// response it sent upstream (Status 0 for ACK, which gets none).
type Event struct {
	Method    string
	Route     RouteKind
	Mode      RouteMode // the configured route mode
	Status    int
	Cancel    bool // the caller cancelled it
	Duration  time.Duration
	Failovers Failovers
}

// Failovers counts, by kind, how often a request gave a next hop up (it
// was silent for the fail-over timeout, answered 503, or failed at the
// transport) and went on to the next one.
type Failovers struct {
	// Target: to the next RFC 3263 target of the same URI (an IMS
	// domain, a Path hop named by a host name).
	Target int
	// Home: from the callee's home node to its next alternate (or from
	// one alternate to the next).
	Home int
	// Path: from the Path edge a phone registered through to the phone
	// directly (its NAT flow or Contact).
	Path int
}

// Total is the number of fail-overs of every kind.
func (f Failovers) Total() int { return f.Target + f.Home + f.Path }

// Outcome classifies e.
func (e Event) Outcome() Outcome {
	switch {
	case e.Cancel:
		return OutcomeCancelled
	case e.Status >= 200 && e.Status < 300:
		return OutcomeAnswered
	case e.Status >= 300 && e.Status < 400:
		return OutcomeRedirected
	case e.Status >= 400:
		return OutcomeFailed
	}
	return OutcomeNoAnswer
}

// Metrics receives Events. Observe is called on the goroutine that handled
// the request, once per request, after its final response went out; it
// must not block. The node maps it to Prometheus counters/histograms with
// labels method, route, mode and outcome.
type Metrics interface {
	Observe(Event)
}

// MetricsFunc adapts a function to Metrics.
type MetricsFunc func(Event)

// Observe implements Metrics.
func (f MetricsFunc) Observe(e Event) { f(e) }

type nopMetrics struct{}

func (nopMetrics) Observe(Event) {}
