package auth

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/sip/registrar"
)

var ctx = context.Background()

// challengeFor sends an unauthenticated REGISTER for user and returns the
// challenge offering alg.
func (e *env) challengeFor(t *testing.T, user string, alg Algorithm) chal {
	t.Helper()
	id, rej := e.d.Authenticate(ctx, register(t, user, ""), phoneSrc)
	if id != "" {
		t.Fatalf("unauthenticated request accepted as %q", id)
	}
	return firstChallenge(t, rej, alg)
}

// send authenticates a REGISTER for user carrying creds.
func (e *env) send(t *testing.T, user string, creds ...*Credentials) (string, *registrar.Rejection) {
	t.Helper()
	var hs []string
	for _, c := range creds {
		hs = append(hs, c.String())
	}
	return e.d.Authenticate(ctx, register(t, user, "", hs...), phoneSrc)
}

func mustAccept(t *testing.T, id string, rej *registrar.Rejection, want string) {
	t.Helper()
	if rej != nil {
		t.Fatalf("rejected %d %s %v, want accepted as %s", rej.Code, rej.Reason, rej.Headers, want)
	}
	if id != want {
		t.Fatalf("identity %q, want %q", id, want)
	}
}

// mustChallenge fails unless rej is a 401 whose challenges all have the
// given stale flag; it returns them.
func mustChallenge(t *testing.T, id string, rej *registrar.Rejection, stale bool) []chal {
	t.Helper()
	if id != "" {
		t.Fatalf("accepted as %q, want 401", id)
	}
	cs := challenges(t, rej)
	for _, c := range cs {
		if (c["stale"] == "true") != stale {
			t.Fatalf("stale = %q, want %v", c["stale"], stale)
		}
	}
	return cs
}

func TestChallengeShape(t *testing.T) {
	e := newTestEnv(t, testDigestConfig())
	for _, tc := range []struct {
		user string
		algs []string
	}{
		{"alice", []string{"SHA-256", "MD5"}},
		{"bob", []string{"MD5"}},                // only MD5 credentials
		{"mallory", []string{"SHA-256", "MD5"}}, // unknown: do not tell
	} {
		t.Run(tc.user, func(t *testing.T) {
			_, rej := e.d.Authenticate(ctx, register(t, tc.user, ""), phoneSrc)
			if rej.Reason != "Unauthorized" {
				t.Fatalf("reason %q", rej.Reason)
			}
			cs := challenges(t, rej)
			if len(cs) != len(tc.algs) {
				t.Fatalf("%d challenges, want %v", len(cs), tc.algs)
			}
			for i, c := range cs {
				if c["algorithm"] != tc.algs[i] || c["realm"] != testDomain || c["qop"] != "auth" ||
					c["nonce"] != cs[0]["nonce"] || c["opaque"] == "" || c["opaque"] != cs[0]["opaque"] || c["stale"] != "" {
					t.Fatalf("challenge %d: %v", i, c)
				}
			}
			if strings.ContainsAny(cs[0]["nonce"], `"\ ,=`) || len(cs[0]["nonce"]) != 43 || len(cs[0]["opaque"]) >= 64 {
				t.Fatalf("nonce %q / opaque %q not friendly to simple clients", cs[0]["nonce"], cs[0]["opaque"])
			}
		})
	}
	// Every challenge has a new nonce.
	a := e.challengeFor(t, "alice", MD5)["nonce"]
	if b := e.challengeFor(t, "alice", MD5)["nonce"]; a == b {
		t.Fatal("nonce reused")
	}
	// The realm is the request's domain, lower-cased, unless configured.
	_, rej := e.d.Authenticate(ctx, register(t, "alice", "sip:DSN.Test."), phoneSrc)
	if r := challenges(t, rej)[0]["realm"]; r != testDomain {
		t.Fatalf("realm %q", r)
	}
	cfg := testDigestConfig()
	cfg.Realm = "dsn.example.com"
	e2 := newTestEnv(t, cfg)
	_, rej = e2.d.Authenticate(ctx, register(t, "alice", ""), phoneSrc)
	if r := challenges(t, rej)[0]["realm"]; r != "dsn.example.com" {
		t.Fatalf("configured realm: %q", r)
	}
}

func TestAuthenticate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     func(*Config)
		user    string             // To user and username; default alice
		alg     Algorithm          // the challenge answered
		pass    string             // default the user's password
		method  string             // hashed; default REGISTER
		uri     string             // digest-uri; default sip:dsn.test
		nc      uint32             // default 1
		noQOP   bool               // answer RFC 2069 style
		chalMod func(chal)         // the phone misreads the challenge
		credMod func(*Credentials) // the phone's credentials, changed
		prep    func(e *env)       // between challenge and answer
		want    string             // "ok", "401", "stale" or "400"
	}{
		{name: "SHA-256 qop=auth", alg: SHA256, want: "ok"},
		{name: "MD5 qop=auth", alg: MD5, want: "ok"},
		{name: "MD5 only user", user: "bob", alg: MD5, want: "ok"},
		{name: "password with spaces", user: "carol", alg: SHA256, want: "ok"},
		{name: "legacy no qop", alg: MD5, noQOP: true, want: "ok"},
		{name: "upper-case response hex", alg: SHA256, credMod: func(c *Credentials) { c.Response = strings.ToUpper(c.Response) }, want: "ok"},
		{name: "lower-case algorithm token", alg: MD5, credMod: func(c *Credentials) { c.Algorithm = "md5" }, want: "ok"},
		{name: "algorithm absent means MD5", alg: MD5, credMod: func(c *Credentials) { c.Algorithm = "" }, want: "ok"},
		{name: "opaque omitted", alg: MD5, credMod: func(c *Credentials) { c.Opaque = "" }, want: "ok"},
		{name: "digest-uri with parameters and different case", alg: SHA256, uri: "sip:DSN.test;transport=udp", want: "ok"},
		{name: "nc starts high", alg: SHA256, nc: 7, want: "ok"},
		{name: "just before expiry", alg: SHA256, prep: func(e *env) { e.clock.Advance(5*time.Minute - time.Nanosecond) }, want: "ok"},

		{name: "wrong password", alg: SHA256, pass: "guess", want: "401"},
		{name: "wrong password MD5", alg: MD5, pass: "guess", want: "401"},
		{name: "unknown user", user: "mallory", alg: SHA256, want: "401"},
		{name: "no SHA-256 credentials for bob", user: "bob", alg: MD5, chalMod: func(c chal) { c["algorithm"] = "SHA-256" }, want: "401"},
		{name: "other method hashed", alg: SHA256, method: "INVITE", want: "401"},
		{name: "algorithm not offered", alg: SHA256, cfg: func(c *Config) { c.Algorithms = []Algorithm{SHA256} },
			chalMod: func(c chal) { c["algorithm"] = "MD5" }, want: "401"},
		{name: "unsupported algorithm", alg: MD5, credMod: func(c *Credentials) { c.Algorithm = "MD5-sess" }, want: "401"},
		{name: "legacy refused by config", alg: MD5, noQOP: true, cfg: func(c *Config) { c.AllowNoQOP = false }, want: "401"},
		{name: "qop auth-int not offered", alg: MD5, credMod: func(c *Credentials) { c.QOP = "auth-int" }, want: "401"},
		{name: "userhash not offered", alg: MD5, credMod: func(c *Credentials) { c.Userhash = true }, want: "401"},
		{name: "credentials for another realm only", alg: MD5, chalMod: func(c chal) { c["realm"] = "other.test" }, want: "401"},
		{name: "expired nonce, wrong password", alg: SHA256, pass: "guess", prep: func(e *env) { e.clock.Advance(time.Hour) }, want: "401"},

		{name: "expired nonce, right password", alg: SHA256, prep: func(e *env) { e.clock.Advance(5 * time.Minute) }, want: "stale"},
		{name: "nonce from the future", alg: SHA256, prep: func(e *env) { e.clock.Advance(-time.Second) }, want: "stale"},
		{name: "foreign nonce, right password", alg: SHA256,
			chalMod: func(c chal) { c["nonce"] = "AAAAAGfC3yAAAAAAAAAAAX3rGe8lJpPfd7h5Y8uV6iA" }, want: "stale"},
		{name: "tampered nonce", alg: SHA256, chalMod: func(c chal) {
			n := []byte(c["nonce"])
			n[3] ^= 1
			c["nonce"] = string(n)
		}, want: "stale"},
		{name: "foreign opaque", alg: SHA256, chalMod: func(c chal) { c["opaque"] = "feedface" }, want: "stale"},

		{name: "digest-uri of another resource", alg: SHA256, uri: "sip:other.test", want: "400"},
		{name: "digest-uri with another port", alg: SHA256, uri: "sip:dsn.test:5080", want: "400"},
		{name: "digest-uri sips", alg: SHA256, uri: "sips:dsn.test", want: "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testDigestConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			def := func(v, d string) string {
				if v == "" {
					return d
				}
				return v
			}
			user := def(tc.user, "alice")
			e := newTestEnv(t, cfg)
			c := e.challengeFor(t, user, tc.alg)
			offered := c["nonce"]
			if tc.prep != nil {
				tc.prep(e)
			}
			if tc.chalMod != nil {
				tc.chalMod(c)
			}
			nc := tc.nc
			switch {
			case tc.noQOP:
				nc = 0
			case nc == 0:
				nc = 1
			}
			cr := answer(c, user, def(tc.pass, password(user)), def(tc.method, "REGISTER"), def(tc.uri, "sip:"+testDomain), nc)
			if tc.credMod != nil {
				tc.credMod(cr)
			}
			id, rej := e.send(t, user, cr)
			switch tc.want {
			case "ok":
				mustAccept(t, id, rej, "digest:"+user+"@"+testDomain)
				if s := e.d.Stats(); s.Accepted != 1 || s.Nonces != 1 {
					t.Fatalf("stats %+v", s)
				}
			case "401", "stale":
				cs := mustChallenge(t, id, rej, tc.want == "stale")
				if cs[0]["nonce"] == offered {
					t.Fatal("refusal repeats the old nonce")
				}
				s := e.d.Stats()
				if (tc.want == "stale") != (s.Stale == 1) || s.Accepted != 0 {
					t.Fatalf("stats %+v", s)
				}
			default:
				if id != "" || rej == nil || rej.Code != 400 || len(rej.Headers) != 0 {
					t.Fatalf("got %q %+v, want %s", id, rej, tc.want)
				}
			}
		})
	}
}

func TestReplayRefused(t *testing.T) {
	e := newTestEnv(t, testDigestConfig())
	const uri = "sip:" + testDomain
	c := e.challengeFor(t, "alice", SHA256)
	first := answer(c, "alice", password("alice"), "REGISTER", uri, 1)
	id, rej := e.send(t, "alice", first)
	mustAccept(t, id, rej, "digest:alice@dsn.test")

	// The captured request again: refused (stale, so a real phone simply
	// retries with a fresh nonce; an attacker has no password to do so).
	id, rej = e.send(t, "alice", first)
	mustChallenge(t, id, rej, true)
	// The phone's next request with the same nonce and nc 2 is fine; then
	// nc 2 and nc 1 are used up.
	id, rej = e.send(t, "alice", answer(c, "alice", password("alice"), "REGISTER", uri, 2))
	mustAccept(t, id, rej, "digest:alice@dsn.test")
	for _, nc := range []uint32{2, 1} {
		id, rej = e.send(t, "alice", answer(c, "alice", password("alice"), "REGISTER", uri, nc))
		mustChallenge(t, id, rej, true)
	}
	// Legacy (no qop) responses are single-use.
	c = e.challengeFor(t, "alice", MD5)
	legacy := answer(c, "alice", password("alice"), "REGISTER", uri, 0)
	id, rej = e.send(t, "alice", legacy)
	mustAccept(t, id, rej, "digest:alice@dsn.test")
	id, rej = e.send(t, "alice", legacy)
	mustChallenge(t, id, rej, true)

	if s := e.d.Stats(); s.Replayed != 4 || s.Stale != 4 || s.Accepted != 3 {
		t.Fatalf("stats %+v", s)
	}
}

// TestReplayBoundedMemory: with MaxNonces 2, a nonce evicted from the
// tracker cannot be replayed, and memory stays at the bound.
func TestReplayBoundedMemory(t *testing.T) {
	cfg := testDigestConfig()
	cfg.MaxNonces = 2
	e := newTestEnv(t, cfg)
	const uri = "sip:" + testDomain
	var firsts []*Credentials
	for range 5 {
		c := e.challengeFor(t, "alice", SHA256)
		cr := answer(c, "alice", password("alice"), "REGISTER", uri, 1)
		id, rej := e.send(t, "alice", cr)
		mustAccept(t, id, rej, "digest:alice@dsn.test")
		firsts = append(firsts, cr)
		e.clock.Advance(time.Second)
	}
	if n := e.d.Stats().Nonces; n != 2 {
		t.Fatalf("tracked %d nonces, want the bound 2", n)
	}
	for i, cr := range firsts {
		id, rej := e.send(t, "alice", cr)
		mustChallenge(t, id, rej, true)
		_ = i
	}
}

func TestMalformedAuthorization(t *testing.T) {
	e := newTestEnv(t, testDigestConfig())
	for _, h := range []string{
		`Digest username="alice"`,
		`Digest username="alice", realm="dsn.test", nonce="n", uri="sip:dsn.test", response="zz"`,
		`Digest username="alice", realm="dsn.test", nonce="n", uri="sip:dsn.test", response="00", qop=auth`,
	} {
		id, rej := e.d.Authenticate(ctx, register(t, "alice", "", h), phoneSrc)
		if id != "" || rej == nil || rej.Code != 400 || rej.Reason != "Malformed Authorization" {
			t.Fatalf("%s: got %q %+v, want 400", h, id, rej)
		}
	}
	// Other schemes are ignored: a challenge, not 400.
	id, rej := e.d.Authenticate(ctx, register(t, "alice", "", "Basic YWxpY2U6eA=="), phoneSrc)
	mustChallenge(t, id, rej, false)
	if s := e.d.Stats(); s.Malformed != 3 || s.Challenged != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestSeveralAuthorizationHeaders(t *testing.T) {
	e := newTestEnv(t, testDigestConfig())
	c := e.challengeFor(t, "alice", SHA256)
	other := answer(chal{"realm": "ims.test", "nonce": "x", "algorithm": "MD5"}, "alice", "p", "REGISTER", "sip:dsn.test", 1)
	ours := answer(c, "alice", password("alice"), "REGISTER", "sip:dsn.test", 1)
	id, rej := e.send(t, "alice", other, ours)
	mustAccept(t, id, rej, "digest:alice@dsn.test")
}

func TestTrustedSource(t *testing.T) {
	e := newTestEnv(t, testDigestConfig())
	for _, src := range []string{"10.9.1.2:5060", "[::ffff:10.9.1.2]:5060", "[2001:db8:9::1]:5061"} {
		s := registrar.Source{Transport: "TCP", Addr: netip.MustParseAddrPort(src)}
		id, rej := e.d.Authenticate(ctx, register(t, "alice", ""), s)
		if rej != nil {
			t.Fatalf("%s: challenged: %+v", src, rej)
		}
		want := "trusted:" + s.Addr.Addr().Unmap().String()
		if id != want {
			t.Fatalf("identity %q, want %q", id, want)
		}
		for _, aor := range []string{"sip:alice@dsn.test", "sip:bob@dsn.test", "sip:+4930123@dsn.test"} {
			if !e.d.Authorize(ctx, id, aor, s) {
				t.Fatalf("trusted %s refused %s", src, aor)
			}
		}
		if e.d.Authorize(ctx, id, "sip:alice@dsn.test", phoneSrc) {
			t.Fatal("trusted identity authorised from an untrusted address")
		}
	}
	// Just outside the trusted network: a challenge.
	out := registrar.Source{Transport: "UDP", Addr: netip.MustParseAddrPort("10.10.0.1:5060")}
	id, rej := e.d.Authenticate(ctx, register(t, "alice", ""), out)
	mustChallenge(t, id, rej, false)
	// Unknown source: a challenge.
	id, rej = e.d.Authenticate(ctx, register(t, "alice", ""), registrar.Source{})
	mustChallenge(t, id, rej, false)
	if s := e.d.Stats(); s.Trusted != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestAuthorize(t *testing.T) {
	e := newTestEnv(t, testDigestConfig())
	cfg := testDigestConfig()
	cfg.Realm = "dsn.example.com"
	withRealm := newTestEnv(t, cfg)
	for _, tc := range []struct {
		d        *Digest
		identity string
		aor      string
		want     bool
	}{
		{e.d, "digest:alice@dsn.test", "sip:alice@dsn.test", true},
		{e.d, "digest:alice@dsn.test", "sip:al%69ce@dsn.test", true}, // escaped user part
		{e.d, "digest:alice@dsn.test", "sip:bob@dsn.test", false},    // another user's AOR
		{e.d, "digest:alice@dsn.test", "sip:Alice@dsn.test", false},  // user parts are case-sensitive
		{e.d, "digest:alice@dsn.test", "sip:alice@other.test", false},
		{e.d, "digest:alice@other.test", "sip:alice@dsn.test", false}, // realm is not the domain
		{e.d, "digest:alice@dsn.test", "sip:alice@DSN.TEST", true},
		{e.d, "digest:a@b@dsn.test", "sip:a%40b@dsn.test", true}, // '@' in a user name
		{e.d, "", "sip:alice@dsn.test", false},
		{e.d, "alice", "sip:alice@dsn.test", false},
		{e.d, "digest:alice@", "sip:alice@dsn.test", false},
		{e.d, "trusted:not-an-ip", "sip:alice@dsn.test", false},
		{e.d, "digest:alice@dsn.test", "not a uri", false},
		{withRealm.d, "digest:alice@dsn.example.com", "sip:alice@dsn.test", true}, // configured realm, any served domain
		{withRealm.d, "digest:alice@dsn.test", "sip:alice@dsn.test", true},        // realm = domain still fine
		{withRealm.d, "digest:alice@dsn.example.com", "sip:bob@dsn.test", false},
	} {
		if got := tc.d.Authorize(ctx, tc.identity, tc.aor, phoneSrc); got != tc.want {
			t.Errorf("Authorize(%q, %q) = %v, want %v", tc.identity, tc.aor, got, tc.want)
		}
	}
}

func TestIdentityRoundTrip(t *testing.T) {
	for _, id := range []Identity{
		{User: "alice", Realm: "dsn.test"},
		{User: "a@b", Realm: "dsn.test"},
		{Peer: netip.MustParseAddr("10.0.0.1")},
		{Peer: netip.MustParseAddr("2001:db8::1")},
	} {
		got, err := ParseIdentity(id.String())
		if err != nil || got != id {
			t.Errorf("ParseIdentity(%q) = %+v, %v", id.String(), got, err)
		}
	}
}

type failingReader struct{ after int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("entropy exhausted")
	}
	n := min(len(p), f.after)
	f.after -= n
	return n, nil
}

func TestRandomnessFailure(t *testing.T) {
	store, err := NewStore(testEntries(t, testDomain))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(testDigestConfig(), store, nil, nil, &failingReader{}, nil); err == nil || !strings.Contains(err.Error(), "auth: reading the nonce secret") {
		t.Fatalf("New with no randomness: %v", err)
	}
	d, err := New(testDigestConfig(), store, nil, nil, &failingReader{after: secretLen}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, rej := d.Authenticate(ctx, register(t, "alice", ""), phoneSrc)
	if rej == nil || rej.Code != 500 {
		t.Fatalf("challenge without randomness: %+v", rej)
	}
}

// TestNoncesAcrossInstances: a node restarted (new secret) or another node
// does not accept the old nonce, but says stale=true to a phone whose
// password is right.
func TestNoncesAcrossInstances(t *testing.T) {
	a := newTestEnv(t, testDigestConfig())
	store, _ := NewStore(testEntries(t, testDomain))
	b, err := New(testDigestConfig(), store, nil, a.clock.Now, seededRand(2), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := a.challengeFor(t, "alice", SHA256)
	cr := answer(c, "alice", password("alice"), "REGISTER", "sip:"+testDomain, 1)
	id, rej := b.Authenticate(ctx, register(t, "alice", "", cr.String()), phoneSrc)
	mustChallenge(t, id, rej, true)
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"realm with quote":     func(c *Config) { c.Realm = `a"b` },
		"realm with @":         func(c *Config) { c.Realm = "a@b" },
		"realm with space":     func(c *Config) { c.Realm = "a b" },
		"zero lifetime":        func(c *Config) { c.NonceLifetime = 0 },
		"huge lifetime":        func(c *Config) { c.NonceLifetime = 48 * time.Hour },
		"zero MaxNonces":       func(c *Config) { c.MaxNonces = 0 },
		"huge MaxNonces":       func(c *Config) { c.MaxNonces = 1 << 30 },
		"no algorithms":        func(c *Config) { c.Algorithms = nil },
		"unknown algorithm":    func(c *Config) { c.Algorithms = []Algorithm{"SHA-1"} },
		"duplicate algorithms": func(c *Config) { c.Algorithms = []Algorithm{MD5, MD5} },
	} {
		c := DefaultConfig()
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	store, _ := NewStore(nil)
	if _, err := New(DefaultConfig(), nil, nil, nil, nil, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("nil store: %v", err)
	}
	bad := DefaultConfig()
	bad.MaxNonces = -1
	if _, err := New(bad, store, nil, nil, nil, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("bad config: %v", err)
	}
	if _, err := New(DefaultConfig(), store, nil, nil, io.Reader(nil), nil); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
