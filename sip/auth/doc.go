// Package auth authenticates SIP REGISTER requests for the registrar: SIP
// Digest (RFC 3261 section 22, RFC 7616 computation, RFC 8760 SHA-256 and
// MD5), a trusted-peer exemption by source address, and the policy that a
// phone may register only its own address-of-record. Digest implements
// registrar.Authenticator; install it with registrar.WithAuthenticator.
//
// # Choosing the authenticator (the node, in cmd)
//
//   - -auth-file FILE set: LoadFile(FILE) and New(...) -> *Digest. Every
//     REGISTER must authenticate, except from -trusted sources.
//     -auth-open together with -auth-file contradicts it: refuse to start.
//   - else -auth-open, or -dev: registrar.AllowAll{}: everyone may register
//     every AOR of the domain (log a warning outside -dev).
//   - else: refuse to start; an open registrar must be asked for.
//
// -trusted is parsed with ParseTrusted in every mode; the proxy uses the
// same *Trusted for its call policy (Contains).
//
// # Credentials file
//
// One entry per line, "user realm hash"; '#' starts a comment; blank lines
// are ignored (ParseFile has the details). hash is the HA1, hex
// H(user:realm:password): 32 digits for MD5, "sha256:" and 64 digits for
// SHA-256; HA1Line writes such lines from a password, which the node never
// needs. The realm must be exactly the one challenged (Config.Realm, or
// the domain). Several realms may be listed. A user needs one line per
// algorithm its phones may pick; give both. The file should be mode 0600:
// an HA1 is a password equivalent for its realm, and Store.Warnings says so
// otherwise. Store.Reload re-reads it atomically (e.g. on SIGHUP); a
// broken file leaves the old credentials in force.
//
// # Protocol
//
// A REGISTER without credentials for the realm gets 401 with one
// WWW-Authenticate per offered algorithm, SHA-256 first then MD5 (RFC
// 8760 section 2.4), all with one nonce, an opaque value and qop="auth".
// Only the algorithms the To user has credentials for are offered, or all
// for an unknown user (so the answer does not reveal which users exist;
// giving every user both lines hides it completely).
//
// Nonces are stateless: issue time, 8 random bytes and an HMAC-SHA-256 tag
// over them and the realm, keyed by a secret read from rnd at New. No
// state is kept per challenge. A nonce is good for Config.NonceLifetime.
//
// A response is checked in this order: malformed credentials -> 400; a
// digest-uri that does not name the Request-URI (scheme, user, host,
// port) -> 400; algorithm or qop not offered, unknown user or wrong
// response -> 401 with a fresh challenge. Responses are compared in
// constant time, and an unknown user costs the same hashing as a wrong
// password. Once the response is right, a nonce that this node did not
// issue (another node, a restart), that has expired, or whose nonce count
// is not higher than one already accepted (a replay) gets 401 with
// stale=true: RFC 7616 section 3.3 says to set stale only when the
// response is valid, and then phones retry with the new nonce without
// asking the user. A phone that moves to another node thus re-registers
// transparently.
//
// Replay protection remembers, per nonce used successfully, the highest
// nonce count (nc) accepted; an nc must be strictly higher than the last
// (two requests sent concurrently with one nonce may arrive out of order:
// the later-numbered one wins, the other is answered stale). RFC 2069
// responses without qop (Config.AllowNoQOP) count as nc 0: their nonce is
// good once. Memory is bounded by Config.MaxNonces; entries leave when
// their nonce expires; when full, the earliest-issued entry is dropped and
// every nonce issued up to it is treated as used (stale), so eviction never
// admits a replay. Only requests with a correct response take space.
//
// # Callers (proxy authentication)
//
// AuthenticateCaller is the same Digest for a request the proxy forwards
// (RFC 3261 section 22.3): credentials in Proxy-Authorization, failures
// answered 407 with Proxy-Authenticate challenges (stale=true as above),
// algorithms offered by what the From user (the caller) has credentials
// for. Nonces, their lifetime and the nonce-count replay tracker are
// shared with REGISTER. The proxy's call policy and relay rule decide
// when to ask (sip/proxy); any authenticated user is accepted.
// Config.Algorithms is the order of the challenges (-auth-algorithms):
// clients that take the first one, such as SIPp 3.6, need MD5 first.
//
// # Authorisation
//
// Authenticate returns the identity "digest:<user>@<realm>" or
// "trusted:<addr>" (Identity, ParseIdentity). Authorize, called by the
// registrar with the canonical AOR:
//
//   - digest: allowed iff the AOR's user part (unescaped) equals the user
//     name exactly and the realm is Config.Realm or equals the AOR's
//     domain. alice cannot register bob (403).
//   - trusted: allowed for every AOR of the registrar's domains (the
//     registrar has already refused other domains with 404), as long as the
//     request comes from a trusted address. A trusted peer is an IMS CSCF,
//     an SBC or a provisioning system that registers on behalf of phones
//     (third-party registration, RFC 3261 section 10.2) and has
//     authenticated them itself; limiting it to one AOR would make the
//     exemption useless. The same trust exempts its calls from Digest in
//     the proxy. Trust rests on the source address only: list only
//     networks where addresses cannot be spoofed (TCP/TLS, or UDP behind
//     ingress filtering).
//
// # Concurrency
//
// Digest, Store and Trusted are safe for concurrent use. Authenticate and
// Authorize do no I/O and block only on short mutexes (the replay tracker,
// the randomness source); they ignore ctx. Store.Reload and LoadFile block
// on reading the file. The clock and rnd given to New are called
// concurrently (rnd under a mutex).
package auth
