// Package dnsserver is a small, self-contained authoritative DNS server: the
// DNS of a node's -dev mode and of tests that should not need BIND. It serves
// zones from RFC 1035 master-file text, accepts RFC 2136 dynamic UPDATE
// signed with TSIG (RFC 8945), answers ENUM NAPTR look-ups including
// wildcards that cover a number prefix, and offers signed AXFR.
//
// # Layers
//
//   - Zone: the records of one zone, loaded with ParseZone (SOA and an apex
//     NS are required).
//   - Store: the zones served, one RWMutex around them; exact look-ups,
//     serials and full copies for inspection.
//   - Handler: the synchronous core. Handle(Request) turns one decoded
//     request plus its TSIG verification status into reply messages. It
//     never touches a socket, so table tests drive it directly.
//   - Server: Start listens on one address over UDP and TCP with
//     github.com/miekg/dns and feeds Handle; Addr, Stats, Close.
//
// # Behaviour
//
// Queries get authoritative answers (AA) from the most specific zone holding
// the name; names outside every zone get REFUSED. Names compare
// case-insensitively. A missing name gets NXDOMAIN and a missing type at an
// existing name NOERROR with an empty answer, both with the zone SOA in the
// authority section at TTL min(SOA TTL, SOA minimum) (RFC 2308). Wildcards
// follow RFC 4592: a name that exists, even as an empty non-terminal, is
// never synthesised, and the wildcard used is the one directly below the
// closest encloser. So "*.4.3.2.1.e164.arpa. NAPTR" answers every number
// starting 1234 unless a more specific name exists on the way; note that a
// provisioned number such as 9.8.7.6.5.4.3.2.1.e164.arpa. makes
// 5.4.3.2.1.e164.arpa. an existing (empty) name, which blocks the wildcard
// for the other numbers under 12345 (provision "*.5.4.3.2.1" too). CNAMEs
// are followed within the served zones; NS below an apex is a delegation and
// gets a referral without AA. ANY returns every RRset of the name. IXFR is
// not implemented (NOTIMP).
//
// UPDATE must be signed with one of Config.Keys: an unsigned UPDATE, an
// unknown key or algorithm (TSIG error BADKEY), a bad MAC (BADSIG) or a
// time outside the fudge (BADTIME) get NOTAUTH and are counted. A request of
// any opcode with a failing TSIG gets NOTAUTH; replies to signed requests are
// signed (BADKEY and BADSIG replies carry the TSIG unsigned, as RFC 8945
// requires). The zone section must name one served zone apex of class IN:
// other zones get REFUSED, a non-apex name inside a served zone NOTAUTH.
// Prerequisites (RFC 2136 section 3.2) yield YXDOMAIN, YXRRSET, NXDOMAIN or
// NXRRSET; records outside the zone NOTZONE; malformed sections FORMERR.
// Updates follow section 3.4: duplicates are ignored, a CNAME never shares a
// name with other data, the apex SOA and NS RRsets cannot be deleted, the
// last apex NS survives, and an added record sets the TTL of its RRset. An
// UPDATE is atomic (checked completely before anything is applied) and every
// change increments the SOA serial unless the update raised it itself.
//
// AXFR is served only when Config.AllowAXFR is set, only over TCP and only to
// a request with a valid TSIG; otherwise REFUSED. Every envelope is signed.
//
// # Concurrency
//
// Handler, Store and Server are safe for concurrent use. Queries and
// transfers take the store's read lock, an UPDATE the write lock for its
// check-and-apply step; no lock is held while sending. Handle does not
// block on I/O. Start returns once both listeners are serving; Close stops
// them and waits for in-flight requests.
package dnsserver
