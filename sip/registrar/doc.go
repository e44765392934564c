// Package registrar is the SIP registrar of a DSN service node: it processes
// REGISTER requests by the rules of RFC 3261 section 10.3, with Path (RFC
// 3327) and the received source address (RFC 3581), and answers the
// proxy's location look-ups.
//
// # Shape
//
// Registrar.Handle takes a parsed *sip.Request (github.com/emiago/sipgo)
// and the Source it came from and returns the final response; it is
// synchronous and touches no socket. Registrar.ServeSIP adapts it to a
// sipgo server (srv.OnRegister(reg.ServeSIP)). Registrar.Lookup returns an
// AOR's live bindings, best first, and tells "never registered"
// (ErrNotFound: 404) from "registered but offline" (ErrNoBindings: 480).
//
// Bindings live in a BindingStore: one record per canonical AOR (see
// CanonicalAOR) holding the BindingSet encoded by MarshalBindings, a version
// for conditional writes, and an expiry (BindingSet.RetainUntil) after which
// the storage drops it everywhere. In a node the store is the Chord DHT;
// MemStore serves tests and single-node use.
//
// # Contract
//
//   - Every REGISTER is atomic: read the set, compute the new one, write it
//     only if the version is unchanged; on ErrConflict (another node wrote
//     the AOR meanwhile) start over, at most Config.MaxConflictRetries
//     times, then answer 500 with Retry-After. No binding is lost to
//     concurrent REGISTERs for one AOR on different nodes.
//   - Expired bindings are left out of every answer and removed by the next
//     write. After the last binding ends the record stays, empty, for
//     Config.RecordLinger (so Lookup can answer ErrNoBindings), then the
//     store drops it.
//   - Requests that are refused are refused before the store is touched,
//     except the out-of-order (same Call-ID, CSeq lower) and
//     too-many-contacts cases, which need the stored set. Bad input gets a
//     4xx with a reason phrase naming the problem; nothing panics on
//     protocol input, and UnmarshalBindings never panics on any bytes.
//   - Response codes: 404 for a Request-URI domain not in Config.Domains or
//     an AOR not valid in it; 420 + Unsupported for unknown Require tags
//     (only "path" is supported); the Authenticator's answer for step 3;
//     403 when it does not authorise the AOR or the AOR would exceed
//     Config.MaxContactsPerAOR; 400 for a bad Contact, q, Expires, Path or
//     a "*" that is not alone with Expires: 0; 421 + Require: path when
//     Path is present without "Supported: path"; 423 + Min-Expires; 500
//     for an out-of-order REGISTER or a store failure; 200 with every live
//     contact, its expires and q, and Date.
//   - Handle needs no transaction layer in front of it: a REGISTER with
//     the Call-ID and CSeq of the REGISTER that last set a binding is
//     its retransmission and leaves that binding as it is (Kamailio's
//     registrar does the same), so answering REGISTER statelessly, as
//     the node does over UDP, gives a retransmission the bindings held.
//
// # Concurrency
//
// A Registrar holds no mutable state; all its methods are safe for
// concurrent use. Handle, ServeSIP and Lookup block on the BindingStore
// (and Handle on the Authenticator), bounded by their context. MemStore is
// safe for concurrent use and never blocks beyond its mutex.
package registrar
