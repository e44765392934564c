package auth

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap/zaptest"

	"github.com/dsn-ims/dsn/sip/registrar"
)

const testDomain = "dsn.test"

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// seededRand is a deterministic randomness source for tests.
func seededRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	return rand.NewChaCha8(s)
}

// Test users: alice and carol have both algorithms, bob only MD5.
var testUsers = []struct{ user, password string }{
	{"alice", "alice-secret"},
	{"bob", "bob-secret"},
	{"carol", "carol secret with spaces"},
}

func testEntries(t testing.TB, realm string) []Entry {
	t.Helper()
	var lines []string
	for _, u := range testUsers {
		for _, a := range Algorithms() {
			if u.user == "bob" && a == SHA256 {
				continue
			}
			l, err := HA1Line(u.user, realm, u.password, a)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, l)
		}
	}
	es, err := ParseFile(strings.NewReader(strings.Join(lines, "\n")), "test")
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func password(user string) string {
	for _, u := range testUsers {
		if u.user == user {
			return u.password
		}
	}
	return "no-such-user"
}

// env is a Digest on a fake clock with the test users.
type env struct {
	d       *Digest
	clock   *fakeClock
	store   *Store
	trusted *Trusted
}

func testDigestConfig() Config {
	return DefaultConfig()
}

func newTestEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	clock := newFakeClock()
	return newTestEnvClock(t, cfg, clock, clock.Now)
}

// newTestEnvClock is newTestEnv with the Digest on clock now (e.g.
// time.Now for tests with real clients); e.clock is fc, possibly unused.
func newTestEnvClock(t testing.TB, cfg Config, fc *fakeClock, now func() time.Time) *env {
	t.Helper()
	realm := cfg.Realm
	if realm == "" {
		realm = testDomain
	}
	store, err := NewStore(testEntries(t, realm))
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := ParseTrusted("10.9.0.0/16, 2001:db8:9::1")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, store, trusted, now, seededRand(1), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return &env{d: d, clock: fc, store: store, trusted: trusted}
}

var phoneSrc = registrar.Source{Transport: "UDP", Addr: netip.MustParseAddrPort("203.0.113.5:40001")}

// register builds a REGISTER for user at ruri (default sip:dsn.test) with
// the given Authorization header values, parsed as off the wire.
func register(t testing.TB, user, ruri string, authz ...string) *sip.Request {
	t.Helper()
	if ruri == "" {
		ruri = "sip:" + testDomain
	}
	lines := []string{
		"REGISTER " + ruri + " SIP/2.0",
		"Via: SIP/2.0/UDP 203.0.113.5:40001;rport;branch=z9hG4bK-1",
		"Max-Forwards: 70",
		"From: <sip:" + user + "@" + testDomain + ">;tag=f1",
		"To: <sip:" + user + "@" + testDomain + ">",
		"Call-ID: call-1",
		"CSeq: 1 REGISTER",
		"Contact: <sip:" + user + "@203.0.113.5:40001>",
	}
	for _, a := range authz {
		lines = append(lines, "Authorization: "+a)
	}
	lines = append(lines, "Content-Length: 0")
	text := strings.Join(lines, "\r\n") + "\r\n\r\n"
	m, err := sip.ParseMessage([]byte(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	return m.(*sip.Request)
}

// chal is a parsed WWW-Authenticate value.
type chal map[string]string

func parseChal(t testing.TB, v string) chal {
	t.Helper()
	ps, err := parseChallengeLike(v)
	if err != nil {
		t.Fatalf("challenge %q: %v", v, err)
	}
	c := chal{}
	for _, p := range ps {
		c[p.name] = p.value
	}
	return c
}

// challenges returns the parsed challenges of a rejection, failing unless
// it is a 401.
func challenges(t testing.TB, rej *registrar.Rejection) []chal {
	t.Helper()
	if rej == nil || rej.Code != 401 {
		t.Fatalf("want 401, got %+v", rej)
	}
	var out []chal
	for _, h := range rej.Headers {
		if h.Name() != "WWW-Authenticate" {
			t.Fatalf("unexpected header %s", h.Name())
		}
		out = append(out, parseChal(t, h.Value()))
	}
	return out
}

// hexHash is the hand computation: lower-case hex H(parts joined by ':'),
// written out with crypto/md5 and crypto/sha256 independently of the code
// under test.
func hexHash(alg string, parts ...string) string {
	s := strings.Join(parts, ":")
	if alg == "SHA-256" {
		h := sha256.Sum256([]byte(s))
		return hex.EncodeToString(h[:])
	}
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// answer is what a phone sends for challenge c: credentials of user with
// password for method and uri, nonce count nc (0: no qop).
func answer(c chal, user, pass, method, uri string, nc uint32) *Credentials {
	alg := c["algorithm"]
	if alg == "" {
		alg = "MD5"
	}
	cr := &Credentials{Username: user, Realm: c["realm"], Nonce: c["nonce"], URI: uri, Algorithm: alg, Opaque: c["opaque"]}
	ha1 := hexHash(alg, user, c["realm"], pass)
	ha2 := hexHash(alg, method, uri)
	if nc == 0 {
		cr.Response = hexHash(alg, ha1, cr.Nonce, ha2)
		return cr
	}
	cr.QOP, cr.NC, cr.Cnonce = "auth", fmt.Sprintf("%08x", nc), "0a4f113b"
	cr.Response = hexHash(alg, ha1, cr.Nonce, cr.NC, cr.Cnonce, cr.QOP, ha2)
	return cr
}
