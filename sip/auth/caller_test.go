package auth

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/dsn-ims/dsn/sip/registrar"
)

// invite builds an INVITE from caller to sip:callee@dsn.test with the
// given Proxy-Authorization values (and Authorization values after
// "Authorization: " prefixes), parsed as off the wire.
func invite(t testing.TB, caller, callee string, hdrs ...string) *sip.Request {
	t.Helper()
	ruri := "sip:" + callee + "@" + testDomain
	lines := []string{
		"INVITE " + ruri + " SIP/2.0",
		"Via: SIP/2.0/UDP 203.0.113.5:40001;rport;branch=z9hG4bK-inv1",
		"Max-Forwards: 70",
		"From: <sip:" + caller + "@" + testDomain + ">;tag=f1",
		"To: <" + ruri + ">",
		"Call-ID: inv-1",
		"CSeq: 2 INVITE",
		"Contact: <sip:" + caller + "@203.0.113.5:40001>",
	}
	for _, h := range hdrs {
		if strings.HasPrefix(h, "Authorization: ") {
			lines = append(lines, h)
			continue
		}
		lines = append(lines, "Proxy-Authorization: "+h)
	}
	lines = append(lines, "Content-Length: 0")
	m, err := sip.ParseMessage([]byte(strings.Join(lines, "\r\n") + "\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sip.Request)
}

// proxyChallenges returns the parsed challenges of a 407.
func proxyChallenges(t testing.TB, rej *registrar.Rejection) []chal {
	t.Helper()
	if rej == nil || rej.Code != 407 || rej.Reason != "Proxy Authentication Required" {
		t.Fatalf("want 407, got %+v", rej)
	}
	var out []chal
	for _, h := range rej.Headers {
		if h.Name() != "Proxy-Authenticate" {
			t.Fatalf("407 carries %s", h.Name())
		}
		out = append(out, parseChal(t, h.Value()))
	}
	return out
}

func TestAuthenticateCaller(t *testing.T) {
	const uri = "sip:bob@" + testDomain
	e := newTestEnv(t, testDigestConfig())

	// No credentials: 407 with the algorithms of the From user (bob has
	// only MD5, whoever he calls).
	_, rej := e.d.AuthenticateCaller(ctx, invite(t, "bob", "alice"), phoneSrc)
	if cs := proxyChallenges(t, rej); len(cs) != 1 || cs[0]["algorithm"] != "MD5" || cs[0]["realm"] != testDomain {
		t.Fatalf("challenges for bob: %v", cs)
	}
	_, rej = e.d.AuthenticateCaller(ctx, invite(t, "alice", "bob"), phoneSrc)
	cs := proxyChallenges(t, rej)
	if len(cs) != 2 || cs[0]["algorithm"] != "SHA-256" || cs[1]["algorithm"] != "MD5" {
		t.Fatalf("challenges for alice: %v", cs)
	}

	// The right answer in Proxy-Authorization: accepted as alice.
	good := answer(cs[0], "alice", password("alice"), "INVITE", uri, 1)
	id, rej := e.d.AuthenticateCaller(ctx, invite(t, "alice", "bob", good.String()), phoneSrc)
	mustAccept(t, id, rej, "digest:alice@"+testDomain)

	// Replayed: stale 407, so a phone retries without asking its user.
	_, rej = e.d.AuthenticateCaller(ctx, invite(t, "alice", "bob", good.String()), phoneSrc)
	if cs := proxyChallenges(t, rej); cs[0]["stale"] != "true" {
		t.Fatalf("replay: %v", cs)
	}
	// nc 2 with the same nonce is fine.
	id, rej = e.d.AuthenticateCaller(ctx, invite(t, "alice", "bob", answer(cs[0], "alice", password("alice"), "INVITE", uri, 2).String()), phoneSrc)
	mustAccept(t, id, rej, "digest:alice@"+testDomain)

	// Wrong password, the REGISTER method hashed, credentials in
	// Authorization instead of Proxy-Authorization: a fresh 407.
	for name, h := range map[string]string{
		"wrong password":       answer(cs[0], "alice", "guess", "INVITE", uri, 3).String(),
		"other method":         answer(cs[0], "alice", password("alice"), "REGISTER", uri, 4).String(),
		"Authorization header": "Authorization: " + answer(cs[0], "alice", password("alice"), "INVITE", uri, 5).String(),
	} {
		_, rej := e.d.AuthenticateCaller(ctx, invite(t, "alice", "bob", h), phoneSrc)
		if cs := proxyChallenges(t, rej); cs[0]["stale"] != "" {
			t.Fatalf("%s: stale challenge %v", name, cs)
		}
	}
	// A digest-uri naming another resource: 400, with the header named.
	_, rej = e.d.AuthenticateCaller(ctx, invite(t, "alice", "bob", answer(cs[0], "alice", password("alice"), "INVITE", "sip:carol@"+testDomain, 6).String()), phoneSrc)
	if rej == nil || rej.Code != 400 || !strings.Contains(rej.Reason, "Proxy-Authorization") {
		t.Fatalf("digest-uri mismatch: %+v", rej)
	}
	// Expired nonce, right password: stale.
	e.clock.Advance(10 * time.Minute)
	_, rej = e.d.AuthenticateCaller(ctx, invite(t, "alice", "bob", answer(cs[0], "alice", password("alice"), "INVITE", uri, 7).String()), phoneSrc)
	if cs := proxyChallenges(t, rej); cs[0]["stale"] != "true" {
		t.Fatalf("expired: %v", cs)
	}
	// A trusted source needs no credentials.
	id, rej = e.d.AuthenticateCaller(ctx, invite(t, "alice", "bob"), registrar.Source{Transport: "UDP", Addr: mustAddrPort("10.9.0.7:5060")})
	mustAccept(t, id, rej, "trusted:10.9.0.7")

	// A REGISTER is still challenged with 401 and WWW-Authenticate.
	_, rej = e.d.Authenticate(ctx, register(t, "alice", ""), phoneSrc)
	challenges(t, rej)
}

// TestAlgorithmOrderFollowsConfig: -auth-algorithms MD5,SHA-256 puts MD5
// first in every challenge (clients such as SIPp 3.6 take the first).
func TestAlgorithmOrderFollowsConfig(t *testing.T) {
	cfg := testDigestConfig()
	cfg.Algorithms = []Algorithm{MD5, SHA256}
	e := newTestEnv(t, cfg)
	_, rej := e.d.AuthenticateCaller(ctx, invite(t, "mallory", "bob"), phoneSrc)
	if cs := proxyChallenges(t, rej); cs[0]["algorithm"] != "MD5" || cs[1]["algorithm"] != "SHA-256" {
		t.Fatalf("order %v", cs)
	}
	_, rej = e.d.Authenticate(ctx, register(t, "alice", ""), phoneSrc)
	if cs := challenges(t, rej); cs[0]["algorithm"] != "MD5" {
		t.Fatalf("REGISTER order %v", cs)
	}
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
