// Package proxy is the request router and stateful proxy of a DSN service
// node (RFC 3261 section 16), built on github.com/emiago/sipgo.
//
// # Routing
//
// After validation (16.3: 400 for a missing or inconsistent From, To,
// Call-ID, CSeq; 416 for a scheme other than sip, sips, tel; 420 for any
// Proxy-Require; 483 at Max-Forwards 0; 482 when the request comes back
// with this node's Via and an unchanged loop hash) and Route
// pre-processing (16.4: strict-router fix-up, this node's own Route
// entries removed), a request goes:
//
//   - along its remaining Route set, or to the Request-URI of an in-dialog
//     request (To tag) - through the callee's NAT flow when this node's
//     Record-Route carries one;
//   - to this node itself when the Request-URI is this node or the bare
//     domain without user: OPTIONS gets 200 with Allow, Accept and
//     Supported (even at Max-Forwards 0: a keepalive / health probe), a
//     method the node does not implement 501 with Allow (RFC 3261 8.2.1),
//     other methods 404;
//   - for tel: URIs and sip:+E.164;user=phone: through ENUM
//     (dnsreport.Resolver.ENUM); the URI it yields is routed as below. A
//     number ENUM does not know is a DSN user when the URI is of the DSN
//     domain, else 404;
//   - for a user of the DSN domain (Config.Domain, or this node's address
//     with a user part): the home node comes from the Locator. On the home
//     node the request is forked in parallel to every live binding (at most
//     Config.MaxBranches): through its Path (as Route), else through its
//     NAT flow (Binding.NATTarget), else to its Contact; 404 when the user
//     never registered, 480 when no binding is live. Elsewhere, by
//     Config.RouteMode: proxied statefully to the home node (Request-URI
//     kept; then to its alternates if it does not answer, see Node
//     fail-over) or, for an initial INVITE only, answered 302 with Contact
//     sip:user@<home host:port>. A request another DSN node (a valid
//     DSN-Node-Auth marker) sent here as the home node (by its
//     Request-URI) or as an alternate (dsn-alt) is served here as on the
//     home node, whatever this node's Locator says (see Ring views);
//   - to any other domain (the IMS side): RFC 3263 server location
//     (dnsreport.Resolver.Locate), trying the next target when one answers
//     503, fails at the transport, or is silent for Config.FailoverTimeout.
//
// # Who may do what
//
// Every request is first given a standing: its source address is in
// Deps.Trusted (-trusted: the IMS CSCF, an SBC), or it carries a valid
// DSN-Node-Auth marker (another DSN node sent it), or neither. Then:
//
//   - Calls: an out-of-dialog request for a DSN subscriber (INVITE,
//     MESSAGE, SUBSCRIBE, OPTIONS to a user...) from an untrusted source
//     that is no DSN node follows Config.CallPolicy: accept (anyone may
//     call, as a terminating IMS network), challenge (407 with one
//     Proxy-Authenticate per algorithm; the caller answers with
//     Proxy-Authorization, checked by Deps.Callers - the same Digest,
//     nonces, stale and nonce-count rules as for REGISTER, RFC 3261
//     22.3), or reject (403). Any authenticated user may call.
//   - No open relay: a request that this node would send out of the DSN
//     (a Request-URI or an ENUM answer in another domain, sent by RFC 3263
//     to the IMS side; a preloaded Route; the NAT flow of a Path edge; an
//     in-dialog request of a dialog this node is not on the route of)
//     is forwarded only for trusted sources, DSN nodes and users that
//     Digest authenticated (407 when the node has Deps.Callers and the
//     policy is not reject, else 403), whatever the call policy. The
//     check comes before any DNS look-up, so a stranger cannot make the
//     node query DNS either. Under a policy other than accept a tel:
//     number is checked before ENUM too.
//   - In-dialog requests that reach this node through its own Record-Route
//     (or a strict router's Request-URI naming it) are forwarded when
//     that entry carries a valid Record-Route token (below): the dialog
//     was admitted when it was created. Without the token, or with a
//     wrong one, a request with a To tag and a Route naming this node is
//     no proof of a dialog, and it is subject to the relay rule above
//     (trusted source, DSN node, or Proxy-Authorization that verifies;
//     never challenged: 403). The OPTIONS health probe and other
//     requests addressed to the node itself are answered whoever sends
//     them.
//
// The Record-Route token: the Record-Route URI of a node reads
// sip:<advertise>;lr;dsnrr=<token>[;dsn-flow=...], the token being
// base64url(HMAC-SHA-256(key, "rr" | Call-ID)[:12]) with a key derived
// from the cluster key like the node marker's but under its own HKDF
// label (NodeAuth; signed with the primary, any key of the keyring
// accepted, so any DSN node verifies it across a key rotation). It is
// checked in constant time, and removed with the node's Route entry
// before the request goes on (RFC 3261 16.4). A node without
// Deps.NodeAuth puts no token and accepts none.
//
// The node marker (NodeAuth): a node forwarding to another DSN node (the
// home node, an alternate, a Path edge) adds DSN-Node-Auth: t=<unix
// time>;mac=<HMAC-SHA-256, 128 bits>, keyed by HKDF-SHA-256 from the
// cluster key (signed with the primary key, any key of the keyring
// accepted, so it follows a cluster key rotation), over the method,
// Request-URI, Call-ID, CSeq, From tag, the top Via branch (the sender's
// own), every Route value and the time. The receiving node verifies it
// (Config.NodeAuthWindow either way) and always removes it; a node never
// sends it out of the DSN, and Proxy-Authorization values of the DSN's
// realm are removed too. A request with a forged, expired or altered
// marker is treated as coming from an untrusted source. Without the
// cluster key nobody can make one; a captured one is good only for the
// same request toward the same next hop, for the window.
//
// What a peer cannot make sipgo do: resolve a name or connect anywhere it
// likes. sipgo answers a TCP request whose connection has closed by
// connecting to the top Via's host (a name looked up in DNS) and port.
// DialGuard, installed on the user agent (UserAgentOptions), gives sipgo
// a resolver that resolves nothing and a TCP dialer that connects only to
// the next hops the proxy is sending to; such a response is dropped
// instead (RFC 3261 18.2.2 would allow the received IP address only).
// NewParser is the parser the node reads with: sipgo's, tolerant of the
// white space RFC 3261 allows around ';', '=' and ',' in From, To,
// Contact and Via (RFC 4475 wsinv).
//
// # Node fail-over
//
// A node that has just crashed stays in the other nodes' view of the ring
// until failure detection removes it (about a second), so the Locator may
// still name it. Two fail-overs keep calls working meanwhile; both give a
// node up when it sends nothing within Config.NodeFailoverTimeout (1 s by
// default; a live node answers an INVITE with 100 Trying at once; a
// non-INVITE waits max(NodeFailoverTimeout, FailoverTimeout), as a live
// node sends nothing before its final response), answers 503, or fails at
// the transport (e.g. a refused TCP connection):
//
//   - Home node -> alternates. Home.Alternates are the home node's first
//     Replicas-1 successors, which hold replicas of its records. A node
//     proxying to the home node tries them next, in ring order, each with
//     a Route entry <sip:alternate;lr;dsn-alt>. A node that receives such
//     a request serves the callee from its bindings (route kind
//     "alternate"; the registrar's look-up reads the DHT, which routes
//     around the unreachable owner to the replica) if its own Locator
//     makes it the home node or one of the alternates, or when the
//     request carries another node's marker (see Ring views); otherwise
//     it hands the request to the home node it knows. A node can be
//     its own alternate: it then sends the request to itself, and the
//     dsn-alt mark enters the loop hash, so that is a spiral, not a loop.
//   - Path edge -> phone. On the home node (or an alternate), a binding
//     that registered through an edge node (Path) is tried through the
//     edge first, then past it: through the next Path entry if there is
//     one, else directly to the phone's NAT flow (Binding.NATTarget, kept
//     in this node's Record-Route) or its Contact.
//
// Event.Failovers counts the moves by kind (target, home, path). When
// nothing is left to try, the last hop gets the full transaction timeout
// (Timer B/F) and the caller 408.
//
// # Ring views
//
// While the ring churns (a node joins, comes back or leaves) the nodes'
// views of it differ for about a second, and their Locators may name
// different home nodes for one AOR: X sends a call to Y, which names X
// (or Z, which names X). Handed on by each node's own view, the request
// came back unchanged to X, which answered 482 Loop Detected (RFC 3261
// 16.3 item 4) - a correct answer, but a lost call. So inter-node routing
// is bounded: a request another DSN node sent to this node as the home
// node or as an alternate (DSN-Node-Auth verified; not one that reached
// it through a plain Route entry, as a Path edge) is served here and
// never sent to another DSN node as a home node again. Whichever node
// serves, the binding look-up reads the DHT, whose Get reaches the node
// that really owns the AOR, so any node can deliver; and the node that
// delivers is the one that record-routes, so the dialog runs between the
// caller and it. A call thus crosses at most entry -> home (-> its
// alternates, if silent) -> the Path edge -> the phone, and cannot
// return to a node it has passed; loop detection and Max-Forwards stay
// as the safety net for requests without the marker (another cluster,
// a trusted peer, a node without Deps.NodeAuth). The event kind is
// "home", or "alternate" for a dsn-alt request.
//
// For a phone behind NAT that registered through an edge, the home node
// puts the flow the REGISTER arrived on (Binding.Received) into the edge's
// Route entry (dsn-flow); the edge delivers the initial request through it
// and record-routes with it.
//
// # Record-Route
//
// The home node record-routes dialog-creating requests (INVITE,
// SUBSCRIBE, REFER) with sip:<advertise>;lr;dsnrr=<token>, so the rest of a dialog runs
// between the caller and the home node; a node that proxies to the home
// node does not. A node also record-routes an initial request that reached
// it through a Route naming it and leaves the DSN from there (a Path edge,
// or a phone's outbound proxy). When a request changes transport (UDP in,
// TCP out) the node record-routes twice (RFC 5658). A request too big for
// UDP (over 1300 bytes, RFC 3261 18.1.1) goes over TCP.
//
// # Responses
//
// Responses of all branches are collected per RFC 3261 16.7: 1xx other
// than 100 are relayed at once, a 2xx at once (every 2xx of an INVITE,
// also late ones and retransmissions), after which the other branches are
// cancelled; a 6xx cancels the others; when all branches are final the
// best is sent (6xx, else the lowest class, preferring 401/407/415/420/484;
// 503 becomes 500; 401/407 challenges are merged). A branch with no answer
// counts as 408, one with a transport error as 503. The caller's CANCEL
// is propagated at once through sipgo's OnCancel: ringing branches get
// CANCEL immediately, silent ones as soon as their first provisional
// arrives (RFC 3261 9.1). Timer C (16.8) cancels a branch that rings too
// long. The proxy sends 100 Trying for every INVITE at once; sipgo sends
// it to the address in the top Via with received/rport (RFC 3581).
//
// # Ordering
//
// sipgo hands every received message to its own goroutine. Two mechanisms
// keep that from reordering or losing anything:
//
//   - Responses are taken from a tap on the transport layer
//     (TransportLayer.OnMessage), which runs on the read goroutine in
//     arrival order (one per connection, or per Call-ID lane of a UDP
//     socket), and relayed by the request's handler goroutine from a
//     queue in that order: a 180 is never lost or relayed after the 200 of
//     its branch. (sipgo's client transaction drops a 1xx it processes
//     after the 2xx.) The client transactions still retransmit, time out
//     and ACK non-2xx responses.
//   - An in-dialog request other than ACK waits, at most Config.AckWait,
//     until the ACK of its dialog's INVITE 2xx has been forwarded when
//     this node relayed that 2xx and stays on the dialog's route (the ACK
//     gate), so a BYE sent right after an ACK cannot overtake it.
//
// # Concurrency and lifetime
//
// A Proxy is safe for concurrent use. Each request is handled on the
// goroutine sipgo gives it; the handler blocks on the Locator, Bindings and
// Resolver (each bounded by Config.LookupTimeout) and, for a forwarded
// request, until its final response has been sent upstream and every
// branch is final or cancelled. It then returns: no goroutine of the
// proxy outlives a request except one short-lived drain per client
// transaction (until its final response or timeout). sipgo's transactions
// stay in memory for their RFC timers (Timer M, D, K: up to 32 s; dsn-node
// -sip-tx-linger shortens M and D, as Kamailio's 5 s wait timer), and the
// tap keeps a finished request's branches until then to forward a late
// 2xx. Metrics.Observe is called once per request on its handler
// goroutine.
//
// # Wiring
//
// New takes Config and Deps; Register installs the handlers and the
// response tap on a sipgo server and sends through its user agent. Call
// Register before the server serves. sipgo's package-level timers
// (sip.SetTimers) are never touched here: set them in cmd/ (tests set them
// in TestMain). Unmatched responses that the tap has already handled are
// also given to sipgo's UnhandledResponseHandler, which logs them by
// default; install a quiet one on the user agent.
//
// # Limits
//
// The maddr URI parameter is ignored; sips:/TLS is passed to sipgo as is;
// sipgo sends no UDP message over sip.UDPMTUSize-200 bytes, responses
// included (cmd/dsn-node raises that global, so that responses are sent;
// requests over 1300 bytes go over TCP anyway). sipgo upper-cases the
// method of the start line; the proxy forwards it as the CSeq spells it
// when the two differ only in case. An originating
// node does not record-route, so in-dialog requests toward a caller behind
// NAT reach it only if its Contact is reachable.
//
// Fail-over limits: a phone behind a NAT that lets in only packets from
// the address it registered with (a port-restricted or symmetric NAT) can
// be reached only through the edge it registered through; while that
// edge is dead it is unreachable from the home node, until it registers
// again (RFC 5626 outbound with flows to several edges is the real fix).
// A node that is alive but slower than NodeFailoverTimeout to send its
// 100 is given up: the callee may then get the INVITE twice (the second
// normally draws 482 Merged Request from it). Redirect mode names only
// the home node in its 302: a caller redirected to a dead home node gets
// no alternate.
package proxy
