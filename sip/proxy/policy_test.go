package proxy

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/sip/auth"
	"github.com/dsn-ims/dsn/sip/registrar"
)

// Phone users of the policy tests, with their passwords.
var policyUsers = map[string]string{"alice": "alice-secret", "bob": "bob-secret"}

// newDigest is a real sip/auth Digest for testDomain holding
// policyUsers (MD5 and SHA-256), MD5 offered first.
func newDigest(t testing.TB, now func() time.Time) *auth.Digest {
	t.Helper()
	var lines []string
	for u, pw := range policyUsers {
		for _, a := range auth.Algorithms() {
			l, err := auth.HA1Line(u, testDomain, pw, a)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, l)
		}
	}
	entries, err := auth.ParseFile(strings.NewReader(strings.Join(lines, "\n")), "test")
	if err != nil {
		t.Fatal(err)
	}
	store, err := auth.NewStore(entries)
	if err != nil {
		t.Fatal(err)
	}
	cfg := auth.DefaultConfig()
	cfg.Realm = testDomain
	cfg.Algorithms = []auth.Algorithm{auth.MD5, auth.SHA256}
	d, err := auth.New(cfg, store, nil, now, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// policyEnv is a routeEnv whose caller (callerSrc) is not trusted.
func policyEnv(t *testing.T, policy CallPolicy, withCallers bool, now func() time.Time) (*routeEnv, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	cfg := DefaultConfig()
	cfg.Domain, cfg.Advertise, cfg.CallPolicy = testDomain, selfAddr, policy
	e := &routeEnv{ring: newRing(), b: newFakeBindings(), res: newFakeResolver()}
	e.ring.setDefault(selfAddr)
	deps := Deps{Locator: e.ring.locator(selfAddr), Bindings: e.b, Resolver: e.res, Logger: testLogger(t), Clock: clock,
		Trusted: trustedSet{netip.MustParseAddr("198.51.100.99")}, NodeAuth: newTestNodeAuth(t, testClusterKey)}
	if withCallers {
		deps.Callers = newDigest(t, now)
	}
	p, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	e.b.add("sip:bob@"+testDomain, registrar.Binding{Contact: "sip:bob@192.0.2.20:5062"})
	e.res.enum["+15551234"] = "sip:bob@" + testDomain
	e.res.enum["+4930123"] = "sip:+4930123@ims.test;user=phone"
	e.res.targets["sip:ims.test"] = []dnsreport.Target{target("udp", "198.51.100.1:5060")}
	return e, clock
}

// outcome is "route:<kind>" or "<code>".
func outcome(d decision) string {
	if d.rej != nil {
		return strconv.Itoa(d.rej.code)
	}
	return "route:" + string(d.kind)
}

// proxyAuthz answers the first challenge of a 407 decision for user.
func proxyAuthz(t *testing.T, d decision, user, method, uri string) string {
	t.Helper()
	if d.rej == nil || d.rej.code != 407 {
		t.Fatalf("want 407, got %+v", d.rej)
	}
	var chal string
	for _, h := range d.rej.headers {
		if h.Name() == "Proxy-Authenticate" {
			chal = h.Value()
			break
		}
	}
	if chal == "" {
		t.Fatal("407 without Proxy-Authenticate")
	}
	params := map[string]string{}
	for _, f := range strings.Split(strings.TrimPrefix(chal, "Digest "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		params[k] = strings.Trim(v, `"`)
	}
	alg := params["algorithm"]
	ha1 := hexHash(alg, user, params["realm"], policyUsers[user])
	ha2 := hexHash(alg, method, uri)
	resp := hexHash(alg, ha1, params["nonce"], "00000001", "c0ffee", "auth", ha2)
	c := auth.Credentials{Username: user, Realm: params["realm"], Nonce: params["nonce"], URI: uri, Response: resp,
		Algorithm: string(alg), Cnonce: "c0ffee", Opaque: params["opaque"], QOP: "auth", NC: "00000001"}
	return c.String()
}

// hexHash is the hand computation of H(parts joined by ':'), RFC 7616.
func hexHash(alg string, parts ...string) string {
	s := []byte(strings.Join(parts, ":"))
	if alg == "SHA-256" {
		h := sha256.Sum256(s)
		return hex.EncodeToString(h[:])
	}
	h := md5.Sum(s)
	return hex.EncodeToString(h[:])
}

// Issue 6: calls from unauthenticated sources follow -call-policy; a
// request that would leave the DSN is relayed only for trusted peers,
// DSN nodes and authenticated users; refused requests cost no DNS.
func TestCallPolicyDecisions(t *testing.T) {
	type tc struct {
		name   string
		policy CallPolicy
		creds  bool // the node has credentials (Deps.Callers)
		req    []string
		src    registrar.Source
		want   string
	}
	trusted := registrar.Source{Transport: "UDP", Addr: netip.MustParseAddrPort("198.51.100.99:5060")}
	dsnCall := reqText("INVITE", "sip:bob@"+testDomain)
	relay := reqText("INVITE", "sip:carol@ims.test")
	enumIMS := reqText("INVITE", "tel:+4930123")
	enumDSN := reqText("INVITE", "tel:+15551234")
	preloaded := reqText("INVITE", "sip:bob@"+testDomain, "Route: <sip:198.51.100.1:5060;lr>")
	inDialogOut := withToTag(reqText("BYE", "sip:carol@198.51.100.1:5060"))
	inDialogOurs := withToTag(reqText("BYE", "sip:carol@198.51.100.1:5060", "Route: <sip:"+selfAddr+";lr>"))
	tok := newTestNodeAuth(t, testClusterKey).rrToken("route-test-1")
	otherTok := newTestNodeAuth(t, testClusterKey).rrToken("another-call")
	inDialogTok := withToTag(reqText("BYE", "sip:carol@198.51.100.1:5060", "Route: <sip:"+selfAddr+";lr;dsnrr="+tok+">"))
	inDialogOtherTok := withToTag(reqText("BYE", "sip:carol@198.51.100.1:5060", "Route: <sip:"+selfAddr+";lr;dsnrr="+otherTok+">"))
	inDialogBadTok := withToTag(reqText("BYE", "sip:carol@198.51.100.1:5060", "Route: <sip:"+selfAddr+";lr;dsnrr=A"+tok[1:]+">"))
	inDialogFlowTok := withToTag(reqText("BYE", "sip:carol@192.168.1.20:5060", "Route: <sip:"+selfAddr+";lr;dsnrr="+tok+";dsn-flow=udp:203.0.113.5:40001>"))
	inDialogFlow := withToTag(reqText("BYE", "sip:carol@192.168.1.20:5060", "Route: <sip:"+selfAddr+";lr;dsn-flow=udp:203.0.113.5:40001>"))
	cases := []tc{
		{"accept: anyone calls a DSN user", PolicyAccept, false, dsnCall, callerSrc, "route:home"},
		{"accept: ENUM to a DSN user", PolicyAccept, false, enumDSN, callerSrc, "route:home"},
		{"accept: no relay without credentials", PolicyAccept, false, relay, callerSrc, "403"},
		{"accept: relay challenged when the node has credentials", PolicyAccept, true, relay, callerSrc, "407"},
		{"accept: ENUM to IMS is a relay", PolicyAccept, false, enumIMS, callerSrc, "403"},
		{"accept: preloaded Route out of the DSN is a relay", PolicyAccept, false, preloaded, callerSrc, "403"},
		{"accept: in-dialog request this node is not on the route of", PolicyAccept, false, inDialogOut, callerSrc, "403"},
		{"accept: in-dialog request through this node's Route, no Record-Route token", PolicyAccept, false, inDialogOurs, callerSrc, "403"},
		{"accept: in-dialog request through this node's Route, token of another Call-ID", PolicyAccept, false, inDialogOtherTok, callerSrc, "403"},
		{"accept: in-dialog request through this node's Route, garbled token", PolicyAccept, false, inDialogBadTok, callerSrc, "403"},
		{"challenge: in-dialog request without token is refused, not challenged", PolicyChallenge, true, inDialogOurs, callerSrc, "403"},
		{"accept: in-dialog request through this node's Record-Route (valid token)", PolicyAccept, false, inDialogTok, callerSrc, "route:dialog"},
		{"accept: in-dialog request toward a NATed phone, valid token", PolicyAccept, false, inDialogFlowTok, callerSrc, "route:dialog"},
		{"accept: in-dialog request toward a NATed phone, no token", PolicyAccept, false, inDialogFlow, callerSrc, "403"},
		{"reject: trusted CSCF in-dialog without token", PolicyReject, false, inDialogOurs, trusted, "route:dialog"},
		{"challenge: DSN user", PolicyChallenge, true, dsnCall, callerSrc, "407"},
		{"challenge: ENUM, before the look-up", PolicyChallenge, true, enumIMS, callerSrc, "407"},
		{"challenge: relay", PolicyChallenge, true, relay, callerSrc, "407"},
		{"reject: DSN user", PolicyReject, true, dsnCall, callerSrc, "403"},
		{"reject: relay, no challenge", PolicyReject, true, relay, callerSrc, "403"},
		{"reject: ENUM", PolicyReject, false, enumDSN, callerSrc, "403"},
		{"reject: trusted CSCF calls a DSN user", PolicyReject, false, dsnCall, trusted, "route:home"},
		{"reject: trusted CSCF relays to IMS", PolicyReject, false, relay, trusted, "route:external"},
		{"challenge: trusted CSCF, no challenge", PolicyChallenge, true, enumIMS, trusted, "route:external"},
		{"OPTIONS to the node itself: no policy", PolicyReject, false, reqText("OPTIONS", "sip:"+selfAddr), callerSrc, "route:local"},
		{"unknown method to the node itself: 501", PolicyReject, false, reqText("FOO", "sip:"+selfAddr), callerSrc, "501"},
		{"INVITE to the node itself: 404", PolicyReject, false, reqText("INVITE", "sip:"+selfAddr), callerSrc, "404"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, _ := policyEnv(t, c.policy, c.creds, time.Now)
			d, _ := e.decide(t, parseReq(t, c.req...), c.src)
			if got := outcome(d); got != c.want {
				t.Fatalf("got %s (%+v), want %s", got, d.rej, c.want)
			}
			if d.rej != nil && (d.rej.code == 403 || d.rej.code == 407) {
				if d.kind != RoutePolicy {
					t.Errorf("kind %s, want %s", d.kind, RoutePolicy)
				}
				e.res.mu.Lock()
				asked := e.res.asked
				e.res.mu.Unlock()
				for _, q := range asked {
					if strings.HasPrefix(q, "locate") || (c.policy != PolicyAccept && strings.HasPrefix(q, "enum")) {
						t.Errorf("refused request cost a DNS look-up: %v", asked)
					}
				}
			}
			if d.rej != nil && d.rej.code == 501 {
				if len(d.rej.headers) != 1 || d.rej.headers[0].Name() != "Allow" {
					t.Errorf("501 without Allow: %v", d.rej.headers)
				}
			}
		})
	}
}

// TestChallengeThenAuthenticated: under challenge the caller gets 407,
// answers it, and is routed - to a DSN user and out of the DSN - and the
// copies sent on carry no credentials of this realm. A wrong password or
// a replayed answer gets a new 407.
func TestChallengeThenAuthenticated(t *testing.T) {
	e, _ := policyEnv(t, PolicyChallenge, true, time.Now)
	for _, ruri := range []string{"sip:bob@" + testDomain, "sip:carol@ims.test"} {
		e.res.targets["sip:ims.test"] = []dnsreport.Target{target("udp", "198.51.100.1:5060")}
		d, _ := e.decide(t, parseReq(t, reqText("INVITE", ruri)...), callerSrc)
		authz := proxyAuthz(t, d, "alice", "INVITE", ruri)
		other := `Digest username="x", realm="ims.test", nonce="n", uri="` + ruri + `", response="00"`
		req := parseReq(t, reqText("INVITE", ruri, "Proxy-Authorization: "+authz, "Proxy-Authorization: "+other)...)
		d, in := e.decide(t, req, callerSrc)
		if d.rej != nil || len(d.branches) != 1 {
			t.Fatalf("%s: authenticated INVITE: %+v", ruri, d.rej)
		}
		if in.who.user != "digest:alice@"+testDomain {
			t.Fatalf("identity %q", in.who.user)
		}
		out := e.p.forwardCopy(in.req, &d.branches[0], d.branches[0].hops[0], e.p.newBranch("x"), false, "UDP")
		hs := out.GetHeaders("Proxy-Authorization")
		if len(hs) != 1 || !strings.Contains(hs[0].Value(), "ims.test") {
			t.Fatalf("%s: forwarded Proxy-Authorization %v, want only the other realm's", ruri, hs)
		}
		// The same answer again: a replay, stale.
		d, _ = e.decide(t, parseReq(t, reqText("INVITE", ruri, "Proxy-Authorization: "+authz)...), callerSrc)
		if d.rej == nil || d.rej.code != 407 || !strings.Contains(d.rej.headers[0].Value(), "stale=true") {
			t.Fatalf("%s: replay: %+v", ruri, d.rej)
		}
	}
	d, _ := e.decide(t, parseReq(t, reqText("INVITE", "sip:bob@"+testDomain)...), callerSrc)
	authz := proxyAuthz(t, d, "alice", "INVITE", "sip:bob@"+testDomain)
	wrong := strings.Replace(authz, `username="alice"`, `username="bob"`, 1)
	d, _ = e.decide(t, parseReq(t, reqText("INVITE", "sip:bob@"+testDomain, "Proxy-Authorization: "+wrong)...), callerSrc)
	if d.rej == nil || d.rej.code != 407 || strings.Contains(d.rej.headers[0].Value(), "stale") {
		t.Fatalf("wrong credentials: %+v", d.rej)
	}
}

// signedBy returns req as node a would send it: marker made at now.
func signedBy(t *testing.T, a *NodeAuth, lines []string, now time.Time) *sip.Request {
	t.Helper()
	req := parseReq(t, lines...)
	a.sign(req, now)
	// Through the wire: what the receiver parses.
	m, err := sip.ParseMessage([]byte(req.String()))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sip.Request)
}

// TestNodeMarker: a request another node signed with the cluster key is
// admitted under reject; one with a forged, expired, replayed-onto-
// another-target or foreign-key marker is treated as untrusted. The
// marker never leaves in a forwarded copy, except freshly made toward
// another DSN node.
func TestNodeMarker(t *testing.T) {
	e, clock := policyEnv(t, PolicyReject, false, time.Now)
	now := clock.Now()
	peer := newTestNodeAuth(t, testClusterKey)
	relay := reqText("INVITE", "sip:bob@192.0.2.20:5062", "Route: <sip:"+selfAddr+";lr;dsn-flow=udp:203.0.113.5:40001>")
	dsn := reqText("INVITE", "sip:bob@"+testDomain)
	tamper := func(lines []string, old, new string) func(*sip.Request) *sip.Request {
		return func(r *sip.Request) *sip.Request {
			s := strings.Replace(r.String(), old, new, 1)
			m, err := sip.ParseMessage([]byte(s))
			if err != nil {
				t.Fatal(err)
			}
			return m.(*sip.Request)
		}
	}
	// A rotation in progress: this node still signs with the old key
	// and accepts the new one; a peer already signs with the new one.
	newKey := []byte("a new primary key for the clustr")
	if err := e.p.deps.NodeAuth.SetKeys([][]byte{testClusterKey, newKey}); err != nil {
		t.Fatal(err)
	}
	rotated := newTestNodeAuth(t, newKey)
	for _, c := range []struct {
		name  string
		by    *NodeAuth
		lines []string
		at    time.Time
		mod   func(*sip.Request) *sip.Request
		want  string
	}{
		{"edge delivery from the home node", peer, relay, now, nil, "route:external"},
		{"call for a DSN user from another node", peer, dsn, now, nil, "route:home"},
		{"signed with the new primary during a rotation", rotated, dsn, now, nil, "route:home"},
		{"made 50 s ago", peer, dsn, now.Add(-50 * time.Second), nil, "route:home"},
		{"made 2 min ago", peer, dsn, now.Add(-2 * time.Minute), nil, "403"},
		{"from 2 min in the future", peer, dsn, now.Add(2 * time.Minute), nil, "403"},
		{"another cluster's key", newTestNodeAuth(t, []byte("not the cluster key, some other!")), dsn, now, nil, "403"},
		{"flow moved elsewhere", peer, relay, now, tamper(relay, "dsn-flow=udp:203.0.113.5:40001", "dsn-flow=udp:198.51.100.66:5060"), "403"},
		{"Request-URI changed", peer, relay, now, tamper(relay, "sip:bob@192.0.2.20:5062 SIP/2.0", "sip:premium@192.0.2.66:5060 SIP/2.0"), "403"},
		{"Call-ID changed", peer, dsn, now, tamper(dsn, "Call-ID: route-test-1", "Call-ID: other"), "403"},
		{"mac garbled", peer, dsn, now, tamper(dsn, "mac=", "mac=A"), "403"},
		{"two markers", peer, dsn, now, func(r *sip.Request) *sip.Request {
			r.AppendHeader(sip.NewHeader(NodeAuthHeader, r.GetHeader(NodeAuthHeader).Value()))
			return r
		}, "403"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := signedBy(t, c.by, c.lines, c.at)
			if c.mod != nil {
				req = c.mod(req)
			}
			d, in := e.decide(t, req, callerSrc)
			if got := outcome(d); got != c.want {
				t.Fatalf("got %s (%+v), want %s", got, d.rej, c.want)
			}
			if in.req.GetHeader(NodeAuthHeader) != nil {
				t.Fatal("marker left in the working copy")
			}
			for i := range d.branches {
				out := e.p.forwardCopy(in.req, &d.branches[i], d.branches[i].hops[0], e.p.newBranch("x"), false, "UDP")
				if out.GetHeader(NodeAuthHeader) != nil {
					t.Fatalf("marker sent on to %s, outside the DSN", d.branches[i].hops[0])
				}
			}
		})
	}
	// A request another node sent here as the home node is served here
	// even when this node's view of the ring names another home node.
	e.ring.setDefault(otherAddr)
	if d, _ := e.decide(t, signedBy(t, peer, dsn, now), callerSrc); outcome(d) != "route:home" {
		t.Fatalf("node-signed request, ring names another home: %s (%+v)", outcome(d), d.rej)
	}
	// Toward the home node the copy carries a fresh marker, which the
	// home node accepts.
	cscf := registrar.Source{Transport: "UDP", Addr: netip.MustParseAddrPort("198.51.100.99:5060")}
	d, in := e.decide(t, parseReq(t, dsn...), cscf)
	if d.kind != RouteProxy {
		t.Fatalf("to the home node: %+v", d)
	}
	out := e.p.forwardCopy(in.req, &d.branches[0], d.branches[0].hops[0], e.p.newBranch("x"), false, "UDP")
	m, err := sip.ParseMessage([]byte(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := peer.verify(m.(*sip.Request), now, time.Minute); err != nil {
		t.Fatalf("the home node refuses this node's marker: %v\n%s", err, out)
	}
}

// TestMarkerSurvivesTheWire: the marker is made over sipgo's rendering
// of the fields, so unusual URIs and several Route values verify after a
// parse of the bytes sent.
func TestMarkerSurvivesTheWire(t *testing.T) {
	a := newTestNodeAuth(t, testClusterKey)
	now := time.Unix(1_750_000_000, 0)
	for _, ruri := range []string{
		"sip:bob@192.0.2.20:5062;transport=tcp;ob",
		"sip:%2Bbob%20x@[2001:db8::7]:5070;user=phone?Subject=x",
		"sip:+15551234;npdi@dsn.test;user=phone",
		"tel:+1-555-1234;phone-context=example.com",
	} {
		req := parseReq(t, reqText("MESSAGE", ruri,
			"Route: <sip:10.0.0.2:5070;lr;dsn-flow=tcp:[2001:db8::9]:40001>",
			"Route: <sip:edge.dsn.test;lr;dsn-alt>,<sip:[2001:db8::1];lr>")...)
		a.sign(req, now)
		m, err := sip.ParseMessage([]byte(req.String()))
		if err != nil {
			t.Fatalf("%s: %v", ruri, err)
		}
		if err := a.verify(m.(*sip.Request), now.Add(time.Second), time.Minute); err != nil {
			t.Errorf("%s: %v\n%s", ruri, err, req)
		}
	}
}

// TestPolicyThroughNodes: the call policy on live nodes on loopback,
// where every peer shares 127.0.0.1 and nothing is trusted: a call
// entering at node B for a user homed on node H is admitted at H by B's
// marker under reject; the same INVITE sent straight to H with a forged
// marker gets 403; under challenge the caller is asked for credentials
// once, at B, and then the call completes through H.
func TestPolicyThroughNodes(t *testing.T) {
	for _, policy := range []CallPolicy{PolicyReject, PolicyChallenge} {
		t.Run(string(policy), func(t *testing.T) {
			r := newRing()
			bindings := newFakeBindings()
			var callers Callers
			if policy == PolicyChallenge {
				callers = newDigest(t, time.Now)
			}
			opts := nodeOpts{untrusted: true, callers: callers, bindings: bindings,
				cfg: func(c *Config) { c.CallPolicy = policy }}
			b := startNode(t, r, opts)
			h := startNode(t, r, opts)
			ua := startUAS(t, "bob", nil)
			bindings.add("sip:bob@"+testDomain, ua.binding())
			r.setDefault(h.addr)
			uac := startUAC(t)

			call := uac.invite(t, "sip:bob@"+testDomain, b.addr)
			res := call.wait(t)
			if policy == PolicyReject {
				if res.StatusCode != 403 {
					t.Fatalf("untrusted caller under reject: %s", res.StartLine())
				}
			} else {
				if res.StatusCode != 407 {
					t.Fatalf("untrusted caller under challenge: %s", res.StartLine())
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				req := call.invite.Clone()
				res2, err := uac.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "alice", Password: policyUsers["alice"]})
				if err != nil {
					t.Fatal(err)
				}
				if res2.StatusCode != 200 {
					t.Fatalf("authenticated INVITE: %s", res2.StartLine())
				}
				done := &outCall{u: uac, invite: req, callID: call.callID, final: res2}
				done.ack(t)
				if bye := done.bye(t); bye.StatusCode != 200 {
					t.Fatalf("BYE: %s", bye.StartLine())
				}
				if got := firstRequest(t, ua.log, call.callID, sip.INVITE); got.GetHeader("Proxy-Authorization") != nil || got.GetHeader(NodeAuthHeader) != nil {
					t.Fatalf("the phone got credentials or a marker:\n%s", got)
				}
			}

			// Straight to H with a forged marker: the policy answer.
			forged := uac.invite(t, "sip:bob@"+testDomain, h.addr, func(r *sip.Request) {
				r.AppendHeader(sip.NewHeader(NodeAuthHeader, "t="+strconv.FormatInt(time.Now().Unix(), 10)+";mac=AAAAAAAAAAAAAAAAAAAAAA"))
			})
			want := 403
			if policy == PolicyChallenge {
				want = 407
			}
			if res := forged.wait(t); res.StatusCode != want {
				t.Fatalf("forged marker: %s, want %d", res.StartLine(), want)
			}
		})
	}
	t.Run("reject: trusted entry node B hands the call to H by marker", func(t *testing.T) {
		r := newRing()
		bindings := newFakeBindings()
		// B trusts the caller's address; H trusts nobody, so H admits
		// the call only by B's marker.
		b := startNode(t, r, nodeOpts{bindings: bindings, cfg: func(c *Config) { c.CallPolicy = PolicyReject }})
		h := startNode(t, r, nodeOpts{untrusted: true, bindings: bindings, cfg: func(c *Config) { c.CallPolicy = PolicyReject }})
		ua := startUAS(t, "bob", nil)
		bindings.add("sip:bob@"+testDomain, ua.binding())
		r.setDefault(h.addr)
		uac := startUAC(t)
		call := uac.invite(t, "sip:bob@"+testDomain, b.addr)
		if res := call.wait(t); res.StatusCode != 200 {
			t.Fatalf("call through B to H: %s", res.StartLine())
		}
		call.final = call.wait(t)
		call.ack(t)
		if bye := call.bye(t); bye.StatusCode != 200 {
			t.Fatalf("BYE: %s", bye.StartLine())
		}
		// H with another cluster key refuses B's marker.
		r2 := newRing()
		b2 := startNode(t, r2, nodeOpts{bindings: bindings, cfg: func(c *Config) { c.CallPolicy = PolicyReject }})
		h2 := startNode(t, r2, nodeOpts{untrusted: true, bindings: bindings, nodeAuth: newTestNodeAuth(t, []byte("another cluster, another key 123")),
			cfg: func(c *Config) { c.CallPolicy = PolicyReject }})
		r2.setDefault(h2.addr)
		if res := uac.invite(t, "sip:bob@"+testDomain, b2.addr).wait(t); res.StatusCode != 403 {
			t.Fatalf("marker of another cluster: %s, want 403", res.StartLine())
		}
	})
}

// Issue 6: an in-dialog request passes the relay rule only with the
// Record-Route token this node (or another DSN node) put in its
// Record-Route for the dialog's Call-ID. The token is made with the
// primary key and checked against every key, so it survives a cluster
// key rotation; the node's Route entry, token included, is removed
// before the request goes on; a Digest-authenticated caller needs none.
func TestRecordRouteToken(t *testing.T) {
	e, _ := policyEnv(t, PolicyAccept, true, time.Now)
	// The node record-routes an initial request: its Record-Route carries
	// a token after lr.
	d, in := e.decide(t, parseReq(t, reqText("INVITE", "sip:bob@"+testDomain)...), callerSrc)
	if d.kind != RouteHome || !d.recordRoute {
		t.Fatalf("initial INVITE: %s rr=%v (%+v)", d.kind, d.recordRoute, d.rej)
	}
	out := e.p.forwardCopy(in.req, &d.branches[0], d.branches[0].hops[0], e.p.newBranch("x"), true, "UDP")
	rr := out.RecordRoute()
	if rr == nil {
		t.Fatal("no Record-Route")
	}
	v := rr.Value()
	if !strings.HasPrefix(v, "<sip:"+selfAddr+";lr;dsnrr=") {
		t.Fatalf("Record-Route %s, want the token right after lr", v)
	}
	tok, _ := rr.Address.UriParams.Get(rrTokenParam)
	if len(tok) != 16 {
		t.Fatalf("token %q, want 16 base64url characters (12 bytes)", tok)
	}
	bye := func(route string, extra ...string) *sip.Request {
		lines := withToTag(reqText("BYE", "sip:carol@198.51.100.1:5060", append([]string{"Route: " + route}, extra...)...))
		return parseReq(t, lines...)
	}
	// The callee's route set is the Record-Route as sent.
	d, in = e.decide(t, bye(v), callerSrc)
	if outcome(d) != "route:dialog" {
		t.Fatalf("BYE with the token: %s (%+v)", outcome(d), d.rej)
	}
	if rs := in.req.GetHeaders("Route"); len(rs) != 0 {
		t.Fatalf("own Route entry left: %v", rs)
	}
	fwd := e.p.forwardCopy(in.req, &d.branches[0], d.branches[0].hops[0], e.p.newBranch("y"), false, "UDP")
	if strings.Contains(fwd.String(), rrTokenParam) {
		t.Fatalf("token forwarded:\n%s", fwd.String())
	}
	// Forged: no token, or a token from another dialog.
	if d, _ := e.decide(t, bye("<sip:"+selfAddr+";lr>"), callerSrc); outcome(d) != "403" || d.kind != RoutePolicy {
		t.Fatalf("forged BYE without token: %s %s", outcome(d), d.kind)
	}
	other := e.p.deps.NodeAuth.rrToken("some other call")
	if d, _ := e.decide(t, bye("<sip:"+selfAddr+";lr;dsnrr="+other+">"), callerSrc); outcome(d) != "403" {
		t.Fatalf("BYE with another dialog's token: %s", outcome(d))
	}
	// A strict router upstream puts the Record-Route URI in the
	// Request-URI: its token counts too.
	strict := withToTag(reqText("BYE", "sip:"+selfAddr+";lr;dsnrr="+tok, "Route: <sip:carol@198.51.100.1:5060>"))
	if d, _ := e.decide(t, parseReq(t, strict...), callerSrc); outcome(d) != "route:dialog" {
		t.Fatalf("strict-routed BYE with the token: %s (%+v)", outcome(d), d.rej)
	}
	// A Digest-authenticated caller needs no token (its credentials are
	// checked, not challenged for).
	ch, _ := e.decide(t, parseReq(t, reqText("INVITE", "sip:carol@ims.test")...), callerSrc)
	authz := proxyAuthz(t, ch, "alice", "BYE", "sip:carol@198.51.100.1:5060")
	if d, _ := e.decide(t, bye("<sip:"+selfAddr+";lr>", "Proxy-Authorization: "+authz), callerSrc); outcome(d) != "route:dialog" {
		t.Fatalf("authenticated BYE without token: %s (%+v)", outcome(d), d.rej)
	}

	// Key rotation: the token was made with the old primary; a node whose
	// keyring now has a new primary (old key still accepted) verifies it,
	// and so does another DSN node with the same keyring.
	newKey := []byte("a new primary key for the clustr")
	if err := e.p.deps.NodeAuth.SetKeys([][]byte{newKey, testClusterKey}); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.decide(t, bye(v), callerSrc); outcome(d) != "route:dialog" {
		t.Fatalf("token of the old primary after rotation: %s (%+v)", outcome(d), d.rej)
	}
	if got := e.p.deps.NodeAuth.rrToken("route-test-1"); got == tok {
		t.Fatal("new primary makes the same token")
	}
	peer := newTestNodeAuth(t, newKey)
	if err := peer.SetKeys([][]byte{newKey, testClusterKey}); err != nil {
		t.Fatal(err)
	}
	if !peer.verifyRRToken(tok, "route-test-1") || !peer.verifyRRToken(e.p.deps.NodeAuth.rrToken("route-test-1"), "route-test-1") {
		t.Fatal("another node with the rotated keyring refuses the tokens")
	}
	// Once the old key is retired, its tokens are refused.
	if err := e.p.deps.NodeAuth.SetKeys([][]byte{newKey}); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.decide(t, bye(v), callerSrc); outcome(d) != "403" {
		t.Fatalf("token of a retired key: %s", outcome(d))
	}
	// The marker key and the token key differ (separate HKDF labels).
	k := e.p.deps.NodeAuth.keys.Load()
	if hmac.Equal(k.marker[0], k.rr[0]) {
		t.Fatal("marker and Record-Route token share a key")
	}
}
