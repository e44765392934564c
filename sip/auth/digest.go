package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/sip/registrar"
)

// Digest is the registrar.Authenticator for -auth-file: SIP Digest
// authentication (RFC 3261 section 22) with MD5 and SHA-256 (RFC 8760),
// stateless nonces and replay protection, plus the trusted-peer exemption
// and the "a phone registers only its own AOR" policy. Safe for concurrent
// use; no method blocks beyond short mutexes (no I/O).
type Digest struct {
	cfg     Config
	store   *Store
	trusted *Trusted
	clock   func() time.Time
	log     *zap.Logger
	nonces  *nonceSigner
	replay  *replayTracker

	rndMu sync.Mutex
	rnd   io.Reader

	stats struct {
		challenged, stale, replayed, accepted, trusted, failed, malformed atomic.Uint64
	}
}

var _ registrar.Authenticator = (*Digest)(nil)

// New returns a Digest authenticator. store is required; trusted may be
// nil (no trusted peers). A nil clock means time.Now, a nil rnd
// crypto/rand.Reader (rnd yields the nonce secret, 32 bytes read here,
// and 8 bytes per challenge; it must be unpredictable in production), a
// nil logger logs nothing.
func New(cfg Config, store *Store, trusted *Trusted, clock func() time.Time, rnd io.Reader, logger *zap.Logger) (*Digest, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, fmt.Errorf("%w: nil Store", ErrInvalidConfig)
	}
	if clock == nil {
		clock = time.Now
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	var secret [secretLen]byte
	if _, err := io.ReadFull(rnd, secret[:]); err != nil {
		return nil, fmt.Errorf("auth: reading the nonce secret: %w", err)
	}
	cfg.Algorithms = slices.Clone(cfg.Algorithms)
	d := &Digest{
		cfg:     cfg,
		store:   store,
		trusted: trusted,
		clock:   clock,
		log:     logger.Named("auth"),
		nonces:  newNonceSigner(secret),
		replay:  newReplayTracker(cfg.MaxNonces),
		rnd:     rnd,
	}
	if cfg.Realm != "" && !store.HasRealm(cfg.Realm) {
		d.log.Warn("no credentials for the configured realm; nobody can register", zap.String("realm", cfg.Realm))
	}
	return d, nil
}

// Authenticate implements registrar.Authenticator (RFC 3261 section 10.3
// step 3). A request from a trusted source is accepted as
// "trusted:<addr>" without Digest. Otherwise the Authorization header for
// the realm must carry a response that is correct for a known user, an
// offered algorithm and qop, a digest-uri naming the Request-URI, a nonce
// this node issued within NonceLifetime, and a nonce count not seen
// before; the identity is then "digest:<user>@<realm>". Otherwise it
// returns the rejection to send: 401 with a fresh challenge (stale=true
// when the response was right but the nonce expired, unknown or replayed),
// or 400 for malformed credentials or a digest-uri for another resource.
// It never blocks on I/O and ignores ctx.
func (d *Digest) Authenticate(_ context.Context, req *sip.Request, src registrar.Source) (string, *registrar.Rejection) {
	return d.authenticate(req, src, userAuth)
}

// AuthenticateCaller authenticates the sender of a request a proxy
// forwards (RFC 3261 section 22.3, proxy-to-user authentication): exactly
// as Authenticate, but the credentials come from Proxy-Authorization and
// a failure is answered 407 (Proxy Authentication Required) with
// Proxy-Authenticate challenges. The algorithms offered are those the
// From user (the caller) has credentials for. A trusted source is
// accepted as "trusted:<addr>". Any authenticated user is accepted: what
// a caller may reach is the proxy's call policy, not this method's.
func (d *Digest) AuthenticateCaller(_ context.Context, req *sip.Request, src registrar.Source) (string, *registrar.Rejection) {
	return d.authenticate(req, src, proxyAuth)
}

// scheme is the header pair and status of one Digest exchange: user
// agent (401) or proxy (407) authentication.
type scheme struct {
	credentials string // header carrying the response
	challenge   string // header carrying the challenges
	code        int
	reason      string
	// user is whose credentials the challenge offers algorithms for.
	user func(*sip.Request) string
}

var (
	userAuth  = scheme{"Authorization", "WWW-Authenticate", sip.StatusUnauthorized, "Unauthorized", toUser}
	proxyAuth = scheme{"Proxy-Authorization", "Proxy-Authenticate", sip.StatusProxyAuthRequired, "Proxy Authentication Required", fromUser}
)

func (d *Digest) authenticate(req *sip.Request, src registrar.Source, s scheme) (string, *registrar.Rejection) {
	if a := src.Addr.Addr(); d.trusted.Contains(a) {
		d.stats.trusted.Add(1)
		return Identity{Peer: a.Unmap().WithZone("")}.String(), nil
	}
	realm := d.realmFor(req)
	now := d.clock()
	creds, err := findCredentials(req, realm, s.credentials)
	if err != nil {
		d.stats.malformed.Add(1)
		d.log.Info("malformed "+s.credentials, zap.Stringer("src", src), zap.Error(err))
		return "", &registrar.Rejection{Code: sip.StatusBadRequest, Reason: "Malformed " + s.credentials}
	}
	if creds == nil {
		d.stats.challenged.Add(1)
		return "", d.challenge(req, realm, now, false, s)
	}
	if !uriMatches(creds.URI, &req.Recipient) {
		d.stats.malformed.Add(1)
		d.log.Info(s.credentials+" uri is not the Request-URI", zap.Stringer("src", src),
			zap.String("uri", creds.URI), zap.String("request_uri", req.Recipient.String()))
		return "", &registrar.Rejection{Code: sip.StatusBadRequest, Reason: s.credentials + " URI Does Not Match Request-URI"}
	}
	stale, why := d.verify(req.Method.String(), creds, realm, now)
	switch {
	case why == "":
		d.stats.accepted.Add(1)
		return Identity{User: creds.Username, Realm: realm}.String(), nil
	case stale:
		d.stats.stale.Add(1)
		d.log.Debug("stale nonce", zap.String("user", creds.Username), zap.Stringer("src", src), zap.String("reason", why))
		return "", d.challenge(req, realm, now, true, s)
	default:
		d.stats.challenged.Add(1)
		d.stats.failed.Add(1)
		d.log.Info("digest authentication failed", zap.String("user", creds.Username), zap.String("realm", realm),
			zap.Stringer("src", src), zap.String("method", string(req.Method)), zap.String("reason", why))
		return "", d.challenge(req, realm, now, false, s)
	}
}

// dummyHA1 stands in for an unknown user's HA1 so that unknown users and
// wrong passwords take the same work.
const dummyHA1 = "0000000000000000000000000000000000000000000000000000000000000000"

// verify checks creds for method at now. It returns "" when they are good;
// otherwise why not, and whether the failure is only the nonce's (the
// response was right: answer stale=true).
func (d *Digest) verify(method string, creds *Credentials, realm string, now time.Time) (stale bool, why string) {
	alg := MD5
	if creds.Algorithm != "" {
		a, err := ParseAlgorithm(creds.Algorithm)
		if err != nil {
			return false, "algorithm " + creds.Algorithm + " not supported"
		}
		alg = a
	}
	if !slices.Contains(d.cfg.Algorithms, alg) {
		return false, "algorithm " + string(alg) + " not offered"
	}
	switch {
	case creds.Userhash:
		return false, "userhash not offered"
	case creds.QOP == "" && !d.cfg.AllowNoQOP:
		return false, "response without qop refused"
	case creds.QOP != "" && !strings.EqualFold(creds.QOP, "auth"):
		return false, "qop " + creds.QOP + " not offered"
	}
	ha1, known := d.store.lookup(creds.Username, realm, alg)
	if !known {
		ha1 = dummyHA1[:alg.hexLen()]
	}
	want := digestResponse(alg, ha1, creds.Nonce, creds.NC, creds.Cnonce, creds.QOP, method, creds.URI)
	got := strings.ToLower(creds.Response)
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 || !known {
		if !known {
			return false, "unknown user or no " + string(alg) + " credentials"
		}
		return false, "wrong response (password)"
	}
	// The client knows the password; from here a failure is the nonce's.
	key, ok := d.nonces.check(creds.Nonce, realm)
	if !ok || (creds.Opaque != "" && creds.Opaque != d.nonces.opaque) {
		return true, "nonce not issued by this node"
	}
	issued := key.issued()
	expires := issued.Add(d.cfg.NonceLifetime)
	if issued.After(now) || !now.Before(expires) {
		return true, "nonce expired"
	}
	var nc uint32
	if creds.QOP != "" {
		nc, _ = parseNC(creds.NC) // checked by ParseAuthorization
	}
	if !d.replay.use(key, nc, expires, now) {
		d.stats.replayed.Add(1)
		return true, "nonce count " + creds.NC + " not higher than one already used (replay)"
	}
	return false, ""
}

// findCredentials returns the Digest credentials for realm among the
// request's header values of that name (Authorization or
// Proxy-Authorization; other schemes and realms are ignored), nil if
// there are none, or an error if one is malformed.
func findCredentials(req *sip.Request, realm, header string) (*Credentials, error) {
	var found *Credentials
	for _, h := range req.GetHeaders(header) {
		c, err := ParseAuthorization(h.Value())
		if errors.Is(err, errNotDigest) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if found == nil && c.Realm == realm {
			found = c
		}
	}
	return found, nil
}

// realmFor is the realm a request is challenged with.
func (d *Digest) realmFor(req *sip.Request) string {
	if d.cfg.Realm != "" {
		return d.cfg.Realm
	}
	return normalizeHost(req.Recipient.Host)
}

// Authorize implements registrar.Authenticator (RFC 3261 section 10.3 step
// 4): a trusted peer may register any AOR of the registrar's domains, as
// long as it still sends from a trusted address; a Digest user only the
// AOR whose user part (unescaped) is exactly its user name, in a domain
// equal to its realm or when its realm is Config.Realm. Everything else,
// including the empty identity, is refused (403).
func (d *Digest) Authorize(_ context.Context, identity, aor string, src registrar.Source) bool {
	id, err := ParseIdentity(identity)
	if err != nil {
		return false
	}
	if id.Trusted() {
		return d.trusted.Contains(src.Addr.Addr())
	}
	var u sip.Uri
	if err := sip.ParseUri(aor, &u); err != nil {
		return false
	}
	user, err := url.PathUnescape(u.User)
	if err != nil || user != id.User {
		return false
	}
	return (d.cfg.Realm != "" && id.Realm == d.cfg.Realm) || id.Realm == normalizeHost(u.Host)
}
