// Package dnsreport is how a DSN node talks to DNS: representatives
// register themselves with RFC 2136 UPDATE signed by TSIG, neighbours
// delete a dead representative's records, and every node resolves ENUM
// numbers (RFC 6116) and SIP URIs (RFC 3263).
//
// Pieces, one file each:
//
//   - tsigkey.go, keyfile.go: Key, BIND key files as written by
//     tsig-keygen (ParseKeys, LoadKeyFile), GenerateKey and BINDFormat for
//     dev mode.
//   - change.go, update.go: Change (the update section of one UPDATE), the
//     Updater interface and Client, its miekg/dns implementation. Client
//     signs every UPDATE with TSIG (unsigned only with ClientConfig.Insecure
//     and no key), tries the servers in order, and accepts an answer only if
//     it is NOERROR with a TSIG that verifies. Failures are *UpdateError
//     values matching ErrNotAuth, ErrRefused, ErrServFail, ErrTimeout,
//     ErrUnsignedReply, ErrBadReplySignature with errors.Is.
//   - exchange.go: the Exchanger interface under Client, queries and the
//     resolver (UDP, TCP on truncation).
//   - records.go: Representative, the record set one representative
//     publishes (L.Z. A/AAAA, _sip._udp.D./_sip._tcp.D. SRV, D. A/AAAA),
//     with PublishChange and DeleteChange. Deletes remove single records
//     (class NONE), never a shared RRset, and are idempotent.
//   - reporter.go, clock.go: Reporter, the retry engine. It holds the
//     desired change per key, applies it through an Updater, retries every
//     failure with exponential backoff and jitter, never drops a pending
//     change while the process lives, logs each failure with server, rcode
//     and a hint, and reports each attempt to a result hook. Step is the
//     synchronous core; Run drives it with an injected Clock; Flush waits
//     for a change (graceful leave).
//   - query.go: reading back what is published (ReadSRV, ReadAddrs,
//     ReadPublished, ReadNode) and AXFR with TSIG (Transfer).
//   - enum.go, resolve.go: ENUM names and NAPTR rewriting (RFC 3402), the
//     Resolver interface and DNSResolver (ENUM, RFC 3263 Locate, RFC 2782
//     SRV ordering with an injected *rand.Rand).
//   - config.go: Config with one section per piece, DefaultConfig,
//     FastConfig (tests) and Validate.
//
// The embedded authoritative server for dev mode and tests lives in the
// subpackage dnsserver.
//
// Concurrency: Client, NetExchanger, DNSResolver and Reporter are safe for
// concurrent use. Client.Update, the query functions and the resolver block
// on the network for at most their timeouts (or until ctx ends).
// Reporter.Step blocks until the due updates (one goroutine per key, at most
// one attempt per key in flight) return, without holding its lock; Run blocks
// until ctx ends or Close; Flush blocks until the change is applied, ctx
// ends, or the intent is cancelled. Nothing in the package keeps global
// state.
package dnsreport
