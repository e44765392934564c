// Package node composes a dsn service node: the Chord ring member
// (dht/cluster), the SIP registrar and proxy (sip/...) with bindings stored
// in the ring, representative election with DNS reporting and neighbour
// watch (node/reps, dnsreport), and the admin HTTP API (/healthz, /readyz,
// /metrics, /v1/...).
//
// New validates the configuration and builds nothing that listens; Start
// binds every socket, joins or creates the ring and returns when the node
// serves; Shutdown is the graceful leave of the operator contract (SIGTERM):
// withdraw the node's own DNS records and wait for the answer, hand data to
// the successor, leave the gossip cluster, close listeners. Close stops
// without leaving. All methods are safe for concurrent use.
package node
