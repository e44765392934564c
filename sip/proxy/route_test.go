package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/sip/registrar"
	"github.com/emiago/sipgo/sip"
)

const (
	selfAddr  = "10.0.0.1:5060"
	otherAddr = "10.0.0.2:5070"
)

// routeEnv is a Proxy with fake dependencies and no sockets: decide and
// forwardCopy are pure apart from them.
type routeEnv struct {
	p    *Proxy
	ring *ring
	b    *fakeBindings
	res  *fakeResolver
}

func newRouteEnv(t *testing.T, mod func(*Config)) *routeEnv {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Domain = testDomain
	cfg.Advertise = selfAddr
	cfg.CallPolicy = PolicyAccept
	if mod != nil {
		mod(&cfg)
	}
	e := &routeEnv{ring: newRing(), b: newFakeBindings(), res: newFakeResolver()}
	e.ring.setDefault(selfAddr)
	// The caller is trusted (a CSCF): these tests are about routing.
	p, err := New(cfg, Deps{Locator: e.ring.locator(selfAddr), Bindings: e.b, Resolver: e.res, Logger: testLogger(t),
		Trusted: trustedSet{callerSrc.Addr.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	return e
}

// parseReq parses a request written as lines (CRLF added).
func parseReq(t testing.TB, lines ...string) *sip.Request {
	t.Helper()
	m, err := sip.ParseMessage([]byte(strings.Join(lines, "\r\n") + "\r\n\r\n"))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return m.(*sip.Request)
}

// reqText is a request with the usual headers; extra lines are added.
func reqText(method, ruri string, extra ...string) []string {
	lines := []string{
		method + " " + ruri + " SIP/2.0",
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-test1;rport",
		"Max-Forwards: 70",
		"From: <sip:alice@example.net>;tag=a1",
		"To: <" + ruri + ">",
		"Call-ID: route-test-1",
		"CSeq: 1 " + method,
		"Contact: <sip:alice@192.0.2.10:5060>",
	}
	lines = append(lines, extra...)
	return append(lines, "Content-Length: 0")
}

var callerSrc = registrar.Source{Transport: "UDP", Addr: netip.MustParseAddrPort("192.0.2.10:5060")}

func (e *routeEnv) decide(t *testing.T, req *sip.Request, src registrar.Source) (decision, routeInput) {
	t.Helper()
	work := e.p.baseCopy(req, src)
	in := e.p.preprocess(work, src)
	return e.p.decide(context.Background(), in), in
}

func hopsString(hs []hop) string {
	var s []string
	for _, h := range hs {
		s = append(s, h.String())
	}
	return strings.Join(s, ",")
}

func TestDecideTable(t *testing.T) {
	bobContact := "sip:bob@192.0.2.20:5062"
	bob2Contact := "sip:bob@192.0.2.21:5064"
	type want struct {
		kind     RouteKind
		code     int    // local answer
		redirect string // 302 Contact
		ruris    []string
		hops     []string // per branch
		rr       bool
		options  bool
	}
	cases := []struct {
		name  string
		setup func(e *routeEnv)
		req   []string
		src   registrar.Source
		want  want
	}{
		{
			name: "home node forks to every binding",
			setup: func(e *routeEnv) {
				e.b.add("sip:bob@"+testDomain, registrar.Binding{Contact: bobContact})
				e.b.add("sip:bob@"+testDomain, registrar.Binding{Contact: bob2Contact})
			},
			req:  reqText("INVITE", "sip:bob@"+testDomain),
			want: want{kind: RouteHome, ruris: []string{bobContact, bob2Contact}, hops: []string{"udp:192.0.2.20:5062", "udp:192.0.2.21:5064"}, rr: true},
		},
		{
			name:  "never registered: 404",
			req:   reqText("INVITE", "sip:nobody@"+testDomain),
			want:  want{kind: RouteLocal, code: 404},
			setup: func(e *routeEnv) {},
		},
		{
			name: "registered, no live binding: 480",
			setup: func(e *routeEnv) {
				e.b.mu.Lock()
				e.b.m["sip:carol@"+testDomain] = nil
				e.b.mu.Unlock()
			},
			req:  reqText("INVITE", "sip:carol@"+testDomain),
			want: want{kind: RouteLocal, code: 480},
		},
		{
			name:  "location store failure: 500",
			setup: func(e *routeEnv) { e.b.setErr("sip:dave@"+testDomain, errors.New("disk on fire")) },
			req:   reqText("INVITE", "sip:dave@"+testDomain),
			want:  want{kind: RouteLocal, code: 500},
		},
		{
			name:  "DHT failure: 503",
			setup: func(e *routeEnv) { e.ring.err = errors.New("ring broken") },
			req:   reqText("INVITE", "sip:bob@"+testDomain),
			want:  want{kind: RouteLocal, code: 503},
		},
		{
			name:  "proxy mode: to the home node, R-URI kept, no Record-Route",
			setup: func(e *routeEnv) { e.ring.setDefault(otherAddr) },
			req:   reqText("INVITE", "sip:bob@"+testDomain),
			want:  want{kind: RouteProxy, ruris: []string{"sip:bob@" + testDomain}, hops: []string{"udp:" + otherAddr}},
		},
		{
			name:  "user at this node's address, home elsewhere: R-URI names the domain",
			setup: func(e *routeEnv) { e.ring.setDefault(otherAddr) },
			req:   reqText("INVITE", "sip:bob@"+selfAddr),
			want:  want{kind: RouteProxy, ruris: []string{"sip:bob@" + testDomain}, hops: []string{"udp:" + otherAddr}},
		},
		{
			name:  "home node addressed by IP in the Request-URI (redirect follow-up)",
			setup: func(e *routeEnv) { e.b.add("sip:bob@"+testDomain, registrar.Binding{Contact: bobContact}) },
			req:   reqText("INVITE", "sip:bob@"+selfAddr),
			want:  want{kind: RouteHome, ruris: []string{bobContact}, hops: []string{"udp:192.0.2.20:5062"}, rr: true},
		},
		{
			name: "Path: through the edge, own entry skipped",
			setup: func(e *routeEnv) {
				e.b.add("sip:bob@"+testDomain, registrar.Binding{Contact: bobContact,
					Path: []string{"<sip:" + selfAddr + ";lr>", "<sip:192.0.2.50:5080;lr>"}})
			},
			req:  reqText("INVITE", "sip:bob@"+testDomain),
			want: want{kind: RouteHome, ruris: []string{bobContact}, hops: []string{"udp:192.0.2.50:5080"}, rr: true},
		},
		{
			name: "NAT: to the address the REGISTER came from",
			setup: func(e *routeEnv) {
				e.b.add("sip:bob@"+testDomain, registrar.Binding{Contact: "sip:bob@192.168.1.20:5060",
					Received: registrar.Source{Transport: "UDP", Addr: netip.MustParseAddrPort("203.0.113.5:40001")}})
			},
			req:  reqText("INVITE", "sip:bob@"+testDomain),
			want: want{kind: RouteHome, ruris: []string{"sip:bob@192.168.1.20:5060"}, hops: []string{"udp:203.0.113.5:40001"}, rr: true},
		},
		{
			name:  "tel: via ENUM to a DSN user",
			setup: func(e *routeEnv) { e.res.enum["+15551234"] = "sip:bob@" + testDomain; e.ring.setDefault(otherAddr) },
			req:   reqText("INVITE", "tel:+1-555-1234"),
			want:  want{kind: RouteProxy, ruris: []string{"sip:bob@" + testDomain}, hops: []string{"udp:" + otherAddr}},
		},
		{
			name: "sip user=phone via ENUM to IMS, RFC 3263 targets in order",
			setup: func(e *routeEnv) {
				e.res.enum["+15551235"] = "sip:+15551235@ims.test;user=phone"
				e.res.targets["sip:ims.test"] = []dnsreport.Target{target("udp", "198.51.100.1:5060"), target("tcp", "198.51.100.2:5060")}
			},
			req:  reqText("INVITE", "sip:+15551235@"+testDomain+";user=phone"),
			want: want{kind: RouteExternal, ruris: []string{"sip:+15551235@ims.test;user=phone"}, hops: []string{"udp:198.51.100.1:5060,tcp:198.51.100.2:5060"}},
		},
		{
			name:  "user=phone unknown to ENUM in the DSN domain: a DSN user",
			setup: func(e *routeEnv) { e.b.add("sip:+15550000@"+testDomain, registrar.Binding{Contact: bobContact}) },
			req:   reqText("INVITE", "sip:+15550000@"+testDomain+";user=phone"),
			want:  want{kind: RouteHome, ruris: []string{bobContact}, hops: []string{"udp:192.0.2.20:5062"}, rr: true},
		},
		{
			name: "tel: unknown to ENUM: 404",
			req:  reqText("INVITE", "tel:+15559999"),
			want: want{kind: RouteLocal, code: 404},
		},
		{
			name:  "ENUM failure: 503",
			setup: func(e *routeEnv) { e.res.enumErr = fmt.Errorf("boom: %w", dnsreport.ErrTimeout) },
			req:   reqText("INVITE", "tel:+15559999"),
			want:  want{kind: RouteLocal, code: 503},
		},
		{
			name: "tel: local number: 404",
			req:  reqText("INVITE", "tel:5551234;phone-context=example.com"),
			want: want{kind: RouteLocal, code: 404},
		},
		{
			name: "tel: not a number: 484",
			req:  reqText("INVITE", "tel:+1555abc"),
			want: want{kind: RouteLocal, code: 484},
		},
		{
			name: "other domain: RFC 3263",
			setup: func(e *routeEnv) {
				e.res.targets["sip:ims.test"] = []dnsreport.Target{target("udp", "198.51.100.1:5060")}
			},
			req:  reqText("MESSAGE", "sip:carol@ims.test"),
			want: want{kind: RouteExternal, ruris: []string{"sip:carol@ims.test"}, hops: []string{"udp:198.51.100.1:5060"}},
		},
		{
			name: "other domain not in DNS: 404",
			req:  reqText("INVITE", "sip:carol@nowhere.test"),
			want: want{kind: RouteLocal, code: 404},
		},
		{
			name: "OPTIONS to this node: 200",
			req:  reqText("OPTIONS", "sip:"+selfAddr),
			want: want{kind: RouteLocal, options: true},
		},
		{
			name: "OPTIONS to the domain: 200",
			req:  reqText("OPTIONS", "sip:"+testDomain),
			want: want{kind: RouteLocal, options: true},
		},
		{
			name: "INVITE to this node without user: 404",
			req:  reqText("INVITE", "sip:"+selfAddr),
			want: want{kind: RouteLocal, code: 404},
		},
		{
			name: "loose route: own entry removed, next Route is the hop",
			req: reqText("BYE", "sip:bob@192.0.2.20:5062",
				"Route: <sip:"+selfAddr+";lr>, <sip:192.0.2.50:5080;lr>"),
			want: want{kind: RouteDialog, ruris: []string{"sip:bob@192.0.2.20:5062"}, hops: []string{"udp:192.0.2.50:5080"}},
		},
		{
			name: "strict router upstream: last Route becomes the Request-URI",
			req: reqText("INVITE", "sip:"+selfAddr,
				"Route: <sip:bob@192.0.2.20:5062>"),
			want: want{kind: RouteExternal, ruris: []string{"sip:bob@192.0.2.20:5062"}, hops: []string{"udp:192.0.2.20:5062"}},
		},
		{
			name: "initial request routed to this node by Route, leaving the DSN: record-routed",
			req: reqText("INVITE", "sip:bob@192.0.2.20:5062",
				"Route: <sip:"+selfAddr+";lr>"),
			want: want{kind: RouteExternal, ruris: []string{"sip:bob@192.0.2.20:5062"}, hops: []string{"udp:192.0.2.20:5062"}, rr: true},
		},
		{
			name: "in-dialog toward a NATed phone: through the flow in the Record-Route",
			req: withToTag(reqText("BYE", "sip:bob@192.168.1.20:5060",
				"Route: <sip:"+selfAddr+";lr;dsn-flow=udp:203.0.113.5:40001>")),
			want: want{kind: RouteDialog, ruris: []string{"sip:bob@192.168.1.20:5060"}, hops: []string{"udp:203.0.113.5:40001"}},
		},
		{
			name: "edge node of a Path: the initial request goes through the NAT flow the home node names",
			req: reqText("INVITE", "sip:bob@192.168.1.20:5060",
				"Route: <sip:"+selfAddr+";lr;dsn-flow=udp:203.0.113.5:40001>"),
			want: want{kind: RouteExternal, ruris: []string{"sip:bob@192.168.1.20:5060"}, hops: []string{"udp:203.0.113.5:40001"}, rr: true},
		},
		{
			// The phone is not trusted: its request passes by the
			// Record-Route token this node put in its route set.
			name:  "in-dialog from the NATed phone: by Request-URI",
			setup: func(e *routeEnv) { e.p.deps.NodeAuth = newTestNodeAuth(t, testClusterKey) },
			req: withToTag(reqText("BYE", "sip:alice@192.0.2.10:5060",
				"Route: <sip:"+selfAddr+";lr;dsnrr="+newTestNodeAuth(t, testClusterKey).rrToken("route-test-1")+";dsn-flow=udp:203.0.113.5:40001>")),
			src:  registrar.Source{Transport: "UDP", Addr: netip.MustParseAddrPort("203.0.113.5:40001")},
			want: want{kind: RouteDialog, ruris: []string{"sip:alice@192.0.2.10:5060"}, hops: []string{"udp:192.0.2.10:5060"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newRouteEnv(t, nil)
			if tc.setup != nil {
				tc.setup(e)
			}
			src := tc.src
			if src.IsZero() {
				src = callerSrc
			}
			d, _ := e.decide(t, parseReq(t, tc.req...), src)
			if d.kind != tc.want.kind {
				t.Errorf("kind %s, want %s", d.kind, tc.want.kind)
			}
			code := 0
			if d.rej != nil {
				code = d.rej.code
			}
			if code != tc.want.code {
				t.Fatalf("local answer %d (%+v), want %d", code, d.rej, tc.want.code)
			}
			if d.options200 != tc.want.options {
				t.Errorf("options200 %v", d.options200)
			}
			if d.recordRoute != tc.want.rr {
				t.Errorf("recordRoute %v, want %v", d.recordRoute, tc.want.rr)
			}
			if len(d.branches) != len(tc.want.ruris) {
				t.Fatalf("%d branches, want %d", len(d.branches), len(tc.want.ruris))
			}
			for i, b := range d.branches {
				if got := b.ruri.String(); got != tc.want.ruris[i] {
					t.Errorf("branch %d R-URI %s, want %s", i, got, tc.want.ruris[i])
				}
				if got := hopsString(b.hops); got != tc.want.hops[i] {
					t.Errorf("branch %d hops %s, want %s", i, got, tc.want.hops[i])
				}
			}
		})
	}
}

func withToTag(lines []string) []string {
	for i, l := range lines {
		if strings.HasPrefix(l, "To:") {
			lines[i] = l + ";tag=b1"
		}
	}
	return lines
}

func TestDecideRedirect(t *testing.T) {
	e := newRouteEnv(t, func(c *Config) { c.RouteMode = ModeRedirect })
	e.ring.setDefault(otherAddr)
	d, _ := e.decide(t, parseReq(t, reqText("INVITE", "sip:bob@"+testDomain)...), callerSrc)
	if d.kind != RouteRedirect || d.redirect == nil || d.redirect.String() != "sip:bob@"+otherAddr {
		t.Fatalf("got %+v, want redirect to sip:bob@%s", d, otherAddr)
	}
	// Only initial INVITEs are redirected.
	d, _ = e.decide(t, parseReq(t, reqText("MESSAGE", "sip:bob@"+testDomain)...), callerSrc)
	if d.kind != RouteProxy {
		t.Fatalf("MESSAGE in redirect mode: %s, want proxied", d.kind)
	}
}

func TestDecideMaxBranches(t *testing.T) {
	e := newRouteEnv(t, func(c *Config) { c.MaxBranches = 2 })
	for i := 0; i < 5; i++ {
		e.b.add("sip:bob@"+testDomain, registrar.Binding{Contact: fmt.Sprintf("sip:bob@192.0.2.%d:5060", 20+i)})
	}
	// A bad contact is skipped, not fatal.
	e.b.add("sip:eve@"+testDomain, registrar.Binding{Contact: "mailto:eve@example.com"})
	e.b.add("sip:eve@"+testDomain, registrar.Binding{Contact: "sip:eve@192.0.2.30"})
	d, _ := e.decide(t, parseReq(t, reqText("INVITE", "sip:bob@"+testDomain)...), callerSrc)
	if len(d.branches) != 2 {
		t.Fatalf("%d branches, want 2", len(d.branches))
	}
	d, _ = e.decide(t, parseReq(t, reqText("INVITE", "sip:eve@"+testDomain)...), callerSrc)
	if len(d.branches) != 1 || hopsString(d.branches[0].hops) != "udp:192.0.2.30:5060" {
		t.Fatalf("eve: %+v", d.branches)
	}
}

func TestDecideWithoutResolver(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Domain, cfg.Advertise = testDomain, selfAddr
	cfg.CallPolicy = PolicyAccept
	r := newRing()
	r.setDefault(selfAddr)
	p, err := New(cfg, Deps{Locator: r.locator(selfAddr), Bindings: newFakeBindings(), Trusted: trustedSet{callerSrc.Addr.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	for ruri, code := range map[string]int{"tel:+15551234": 404, "sip:carol@ims.test": 503} {
		work := p.baseCopy(parseReq(t, reqText("INVITE", ruri)...), callerSrc)
		d := p.decide(context.Background(), p.preprocess(work, callerSrc))
		if d.rej == nil || d.rej.code != code {
			t.Errorf("%s: %+v, want %d", ruri, d.rej, code)
		}
	}
	// An IP literal needs no DNS.
	work := p.baseCopy(parseReq(t, reqText("INVITE", "sip:carol@198.51.100.7:5090")...), callerSrc)
	d := p.decide(context.Background(), p.preprocess(work, callerSrc))
	if len(d.branches) != 1 || hopsString(d.branches[0].hops) != "udp:198.51.100.7:5090" {
		t.Fatalf("IP literal: %+v", d)
	}
}

func TestForwardCopy(t *testing.T) {
	e := newRouteEnv(t, nil)
	req := parseReq(t, reqText("INVITE", "sip:bob@"+testDomain, "Route: <sip:"+selfAddr+";lr>")...)
	work := e.p.baseCopy(req, callerSrc)
	e.p.preprocess(work, callerSrc)
	flow := hop{Transport: "UDP", Addr: netip.MustParseAddrPort("203.0.113.5:40001")}
	plan := branchPlan{
		ruri:   mustURI(t, "sip:bob@192.168.1.20:5060"),
		routes: []sip.Uri{mustURI(t, "sip:192.0.2.50:5080;lr")},
		flow:   &flow,
	}
	h := hop{Transport: "TCP", Addr: netip.MustParseAddrPort("192.0.2.50:5080")}
	out := e.p.forwardCopy(work, &plan, h, e.p.newBranch("x"), true, "UDP")

	if out.Recipient.String() != "sip:bob@192.168.1.20:5060" {
		t.Errorf("R-URI %s", out.Recipient.String())
	}
	if mf := out.MaxForwards(); mf == nil || mf.Val() != 69 {
		t.Errorf("Max-Forwards %v, want 69", mf)
	}
	if req.MaxForwards().Val() != 70 {
		t.Errorf("the received request's Max-Forwards changed to %d", req.MaxForwards().Val())
	}
	vias := out.GetHeaders("Via")
	top := vias[0].(*sip.ViaHeader)
	if len(vias) != 2 || top.Transport != "TCP" || top.Host != "10.0.0.1" || top.Port != 5060 || !strings.HasPrefix(top.Params.GetOr("branch", ""), branchPrefix) {
		t.Errorf("Vias %v", vias)
	}
	if second := vias[1].(*sip.ViaHeader); second.Params.GetOr("rport", "") != "5060" || second.Params.GetOr("received", "") != "192.0.2.10" {
		t.Errorf("sender's Via not completed: %v", second)
	}
	rrs := out.GetHeaders("Record-Route")
	if len(rrs) != 2 {
		t.Fatalf("Record-Route %v, want two (UDP in, TCP out)", rrs)
	}
	if v := rrs[0].Value(); v != "<sip:10.0.0.1:5060;transport=tcp;lr;dsn-flow=udp:203.0.113.5:40001>" {
		t.Errorf("top Record-Route %s", v)
	}
	if v := rrs[1].Value(); v != "<sip:10.0.0.1:5060;lr>" {
		t.Errorf("second Record-Route %s", v)
	}
	if rs := out.GetHeaders("Route"); len(rs) != 1 || rs[0].Value() != "<sip:192.0.2.50:5080;lr>" {
		t.Errorf("Route %v", rs)
	}
	if out.Destination() != "192.0.2.50:5080" || out.Transport() != "TCP" {
		t.Errorf("sent to %s over %s", out.Destination(), out.Transport())
	}

	// A strict router as next hop (RFC 3261 16.6 step 6).
	plan = branchPlan{ruri: mustURI(t, "sip:bob@192.168.1.20:5060"), routes: []sip.Uri{mustURI(t, "sip:192.0.2.60:5090")}}
	out = e.p.forwardCopy(work, &plan, hop{Transport: "UDP", Addr: netip.MustParseAddrPort("192.0.2.60:5090")}, e.p.newBranch("x"), false, "UDP")
	if out.Recipient.String() != "sip:192.0.2.60:5090" {
		t.Errorf("strict: R-URI %s", out.Recipient.String())
	}
	if rs := out.GetHeaders("Route"); len(rs) != 1 || rs[0].Value() != "<sip:bob@192.168.1.20:5060>" {
		t.Errorf("strict: Route %v", rs)
	}
	if out.GetHeaders("Record-Route") != nil {
		t.Error("Record-Route without rr")
	}
}

func mustURI(t testing.TB, s string) sip.Uri {
	t.Helper()
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		req  []string
		code int
	}{
		{"ok", reqText("INVITE", "sip:bob@"+testDomain), 0},
		{"CSeq method mismatch", replaceLine(reqText("INVITE", "sip:bob@"+testDomain), "CSeq:", "CSeq: 1 BYE"), 400},
		{"no From", replaceLine(reqText("INVITE", "sip:bob@"+testDomain), "From:", ""), 400},
		{"no To", replaceLine(reqText("INVITE", "sip:bob@"+testDomain), "To:", ""), 400},
		{"no Call-ID", replaceLine(reqText("INVITE", "sip:bob@"+testDomain), "Call-ID:", ""), 400},
		{"mailto", reqText("INVITE", "mailto:bob@example.com"), 416},
		{"Proxy-Require", reqText("INVITE", "sip:bob@"+testDomain, "Proxy-Require: foo"), 420},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var lines []string
			for _, l := range tc.req {
				if l != "" {
					lines = append(lines, l)
				}
			}
			rej := validate(parseReq(t, lines...))
			code := 0
			if rej != nil {
				code = rej.code
			}
			if code != tc.code {
				t.Fatalf("got %d (%+v), want %d", code, rej, tc.code)
			}
		})
	}
}

func replaceLine(lines []string, prefix, with string) []string {
	out := append([]string(nil), lines...)
	for i, l := range out {
		if strings.HasPrefix(l, prefix) {
			out[i] = with
		}
	}
	return out
}

func TestLoopDetection(t *testing.T) {
	e := newRouteEnv(t, nil)
	req := parseReq(t, reqText("INVITE", "sip:bob@"+testDomain)...)
	loop := e.p.loopHash(req)
	if e.p.checkHops(req, loop) != nil {
		t.Fatal("fresh request rejected")
	}
	// The same request after it went through this node once.
	back := req.Clone()
	back.PrependHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "10.0.0.1", Port: 5060,
		Params: sip.HeaderParams{{K: "branch", V: e.p.newBranch(loop)}}})
	back.PrependHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "10.0.0.2", Port: 5070,
		Params: sip.HeaderParams{{K: "branch", V: "z9hG4bK-other"}}})
	if rej := e.p.checkHops(back, e.p.loopHash(back)); rej == nil || rej.code != 482 {
		t.Fatalf("loop not detected: %+v", rej)
	}
	// Retargeted (a spiral): different Request-URI, same Vias.
	spiral := back.Clone()
	spiral.Recipient = mustURI(t, "sip:bob2@"+testDomain)
	if rej := e.p.checkHops(spiral, e.p.loopHash(spiral)); rej != nil {
		t.Fatalf("spiral rejected: %+v", rej)
	}
	zero := parseReq(t, replaceLine(reqText("INVITE", "sip:bob@"+testDomain), "Max-Forwards:", "Max-Forwards: 0")...)
	if rej := e.p.checkHops(zero, e.p.loopHash(zero)); rej == nil || rej.code != 483 {
		t.Fatalf("Max-Forwards 0: %+v", rej)
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Domain, good.Advertise = testDomain, selfAddr
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*Config){
		"no domain":         func(c *Config) { c.Domain = "" },
		"advertise no port": func(c *Config) { c.Advertise = "10.0.0.1" },
		"bad listen":        func(c *Config) { c.ListenUDP = "localhost:5060" },
		"mode":              func(c *Config) { c.RouteMode = "teleport" },
		"transport":         func(c *Config) { c.NodeTransport = "sctp" },
		"branches":          func(c *Config) { c.MaxBranches = 0 },
		"timer C":           func(c *Config) { c.TimerC = 0 },
		"node failover":     func(c *Config) { c.NodeFailoverTimeout = 0 },
		"ack wait > ttl":    func(c *Config) { c.AckWait = time.Hour },
		"retry-after":       func(c *Config) { c.RetryAfter = 1500 * time.Millisecond },
		"alias":             func(c *Config) { c.Aliases = []string{"a:b:c"} },
		"call policy":       func(c *Config) { c.CallPolicy = "Accept" },
		"node auth window":  func(c *Config) { c.NodeAuthWindow = 0 },
	}
	for name, mod := range bad {
		c := good
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := ParseRouteMode("Redirect"); err != nil {
		t.Error(err)
	}
	if _, err := New(good, Deps{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New without deps: %v", err)
	}
	if _, err := New(good, Deps{Locator: newRing().locator(selfAddr), Bindings: newFakeBindings()}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New with policy challenge and no Callers: %v", err)
	}
	for in, want := range map[string]CallPolicy{"accept": PolicyAccept, " Challenge ": PolicyChallenge, "REJECT": PolicyReject} {
		if got, err := ParseCallPolicy(in); err != nil || got != want {
			t.Errorf("ParseCallPolicy(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseCallPolicy("open"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("ParseCallPolicy(open): %v", err)
	}
}

// planChain describes a branch's chain of plans, one line per plan.
func planChain(bp branchPlan) []string {
	var out []string
	for q := &bp; q != nil; q = q.next {
		s := q.kind.String() + " " + hopsString(q.hops) + " wait=" + q.wait.String()
		var rs []string
		for i := range q.routes {
			rs = append(rs, q.routes[i].String())
		}
		if len(rs) > 0 {
			s += " route=" + strings.Join(rs, ",")
		}
		if q.flow != nil {
			s += " flow=" + q.flow.String()
		}
		out = append(out, s)
	}
	return out
}

const (
	altAddr  = "10.0.0.3:5060"
	edgeAddr = "192.0.2.50:5080"
)

func TestDecideFailoverChains(t *testing.T) {
	bob := "sip:bob@" + testDomain
	altRoute := func(addr string) string { return "sip:" + addr + ";lr;dsn-alt" }
	cases := []struct {
		name  string
		setup func(e *routeEnv)
		req   []string
		kind  RouteKind
		rr    bool
		chain []string
	}{
		{
			name: "proxy: the home node, then its alternates (this node too) with dsn-alt",
			setup: func(e *routeEnv) {
				e.ring.setDefault(otherAddr)
				e.ring.setAlternates(otherAddr, altAddr, selfAddr)
			},
			req:  reqText("INVITE", bob),
			kind: RouteProxy,
			chain: []string{
				"target udp:" + otherAddr + " wait=1s",
				"home udp:" + altAddr + " wait=1s route=" + altRoute(altAddr),
				"home udp:" + selfAddr + " wait=1s route=" + altRoute(selfAddr),
			},
		},
		{
			name: "proxy, non-INVITE: waits FailoverTimeout for a silent node",
			setup: func(e *routeEnv) {
				e.ring.setDefault(otherAddr)
				e.ring.setAlternates(otherAddr, altAddr)
			},
			req:  reqText("MESSAGE", bob),
			kind: RouteProxy,
			chain: []string{
				"target udp:" + otherAddr + " wait=4s",
				"home udp:" + altAddr + " wait=4s route=" + altRoute(altAddr),
			},
		},
		{
			name: "sent here as an alternate, and this node is one: served from the bindings",
			setup: func(e *routeEnv) {
				e.ring.setDefault(otherAddr)
				e.ring.setAlternates(otherAddr, selfAddr, altAddr)
				e.b.add(bob, registrar.Binding{Contact: "sip:bob@192.0.2.20:5062"})
			},
			req:   reqText("INVITE", bob, "Route: <"+altRoute(selfAddr)+">"),
			kind:  RouteAlternate,
			rr:    true,
			chain: []string{"path udp:192.0.2.20:5062 wait=0s"},
		},
		{
			name: "sent here as an alternate, but this node is none: to the home node",
			setup: func(e *routeEnv) {
				e.ring.setDefault(otherAddr)
				e.b.add(bob, registrar.Binding{Contact: "sip:bob@192.0.2.20:5062"})
			},
			req:   reqText("INVITE", bob, "Route: <"+altRoute(selfAddr)+">"),
			kind:  RouteProxy,
			chain: []string{"target udp:" + otherAddr + " wait=1s"},
		},
		{
			name: "home node: a Path edge, then the phone directly",
			setup: func(e *routeEnv) {
				e.b.add(bob, registrar.Binding{Contact: "sip:bob@192.0.2.20:5062", Path: []string{"<sip:" + edgeAddr + ";lr>"},
					Received: registrar.Source{Transport: "UDP", Addr: netip.MustParseAddrPort("192.0.2.20:5062")}})
			},
			req:  reqText("INVITE", bob),
			kind: RouteHome,
			rr:   true,
			chain: []string{
				"path udp:" + edgeAddr + " wait=1s route=sip:" + edgeAddr + ";lr",
				"path udp:192.0.2.20:5062 wait=0s",
			},
		},
		{
			name: "home node: a Path edge, then the phone's NAT flow",
			setup: func(e *routeEnv) {
				e.b.add(bob, registrar.Binding{Contact: "sip:bob@192.168.1.20:5060", Path: []string{"<sip:" + edgeAddr + ";lr>"},
					Received: registrar.Source{Transport: "UDP", Addr: netip.MustParseAddrPort("203.0.113.5:40001")}})
			},
			req:  reqText("INVITE", bob),
			kind: RouteHome,
			rr:   true,
			chain: []string{
				"path udp:" + edgeAddr + " wait=1s route=sip:" + edgeAddr + ";lr;dsn-flow=udp:203.0.113.5:40001",
				"path udp:203.0.113.5:40001 wait=0s flow=udp:203.0.113.5:40001",
			},
		},
		{
			name: "home node: two Path entries are skipped one by one",
			setup: func(e *routeEnv) {
				e.b.add(bob, registrar.Binding{Contact: "sip:bob@192.0.2.20:5062",
					Path: []string{"<sip:" + edgeAddr + ";lr>", "<sip:192.0.2.51:5080;lr>"}})
			},
			req:  reqText("INVITE", bob),
			kind: RouteHome,
			rr:   true,
			chain: []string{
				"path udp:" + edgeAddr + " wait=1s route=sip:" + edgeAddr + ";lr,sip:192.0.2.51:5080;lr",
				"path udp:192.0.2.51:5080 wait=1s route=sip:192.0.2.51:5080;lr",
				"path udp:192.0.2.20:5062 wait=0s",
			},
		},
		{
			name: "home node: a Path edge DNS cannot locate is left out",
			setup: func(e *routeEnv) {
				e.b.add(bob, registrar.Binding{Contact: "sip:bob@192.0.2.20:5062", Path: []string{"<sip:edge.nowhere.test;lr>"}})
			},
			req:   reqText("INVITE", bob),
			kind:  RouteHome,
			rr:    true,
			chain: []string{"path udp:192.0.2.20:5062 wait=0s"},
		},
		{
			name: "home node: a contact DNS cannot locate is reached only through its Path",
			setup: func(e *routeEnv) {
				e.b.add(bob, registrar.Binding{Contact: "sip:bob@phone.nowhere.test", Path: []string{"<sip:" + edgeAddr + ";lr>"}})
			},
			req:   reqText("INVITE", bob),
			kind:  RouteHome,
			rr:    true,
			chain: []string{"path udp:" + edgeAddr + " wait=1s route=sip:" + edgeAddr + ";lr"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newRouteEnv(t, nil)
			tc.setup(e)
			d, _ := e.decide(t, parseReq(t, tc.req...), callerSrc)
			if d.rej != nil {
				t.Fatalf("rejected %d %s", d.rej.code, d.rej.reason)
			}
			if d.kind != tc.kind || d.recordRoute != tc.rr {
				t.Errorf("kind %s rr %v, want %s %v", d.kind, d.recordRoute, tc.kind, tc.rr)
			}
			if len(d.branches) != 1 {
				t.Fatalf("%d branches", len(d.branches))
			}
			if got := planChain(d.branches[0]); strings.Join(got, "\n") != strings.Join(tc.chain, "\n") {
				t.Errorf("chain\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.chain, "\n"))
			}
		})
	}
}

func TestPlanChainIndexing(t *testing.T) {
	h := func(port uint16) hop {
		return hop{Transport: "UDP", Addr: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), port)}
	}
	bp := chain([]branchPlan{{hops: []hop{h(1), h(2)}}, {hops: []hop{h(3)}, kind: failHome}, {hops: []hop{h(4)}, kind: failPath}})
	if n := bp.hopCount(); n != 4 {
		t.Fatalf("hopCount %d", n)
	}
	for i, want := range []uint16{1, 2, 3, 4} {
		q, j := bp.at(i)
		if got := q.hops[j].Addr.Port(); got != want {
			t.Errorf("at(%d) = port %d, want %d", i, got, want)
		}
	}
	var f Failovers
	for _, k := range []failoverKind{failTarget, failHome, failHome, failPath} {
		f.add(k)
	}
	if f != (Failovers{Target: 1, Home: 2, Path: 1}) || f.Total() != 4 {
		t.Fatalf("failovers %+v", f)
	}
}

// TestSetRoutesTopIsRoute: after setRoutes, Route() is the top entry
// (sipgo caches the header Route() returns; prepending several at once
// cached the bottom one).
func TestSetRoutesTopIsRoute(t *testing.T) {
	req := parseReq(t, reqText("ACK", "sip:bob@192.0.2.20:5062",
		"Route: <sip:192.0.2.1:5060;lr>, <sip:192.0.2.2:5060;lr>, <sip:192.0.2.3:5060;lr>")...)
	routes := routeURIs(req)
	setRoutes(req, routes)
	if r := req.Route(); r == nil || r.Address.Host != "192.0.2.1" {
		t.Fatalf("Route() = %v, want the top entry 192.0.2.1", r)
	}
	setRoutes(req, routes[1:])
	if r := req.Route(); r == nil || r.Address.Host != "192.0.2.2" {
		t.Fatalf("Route() = %v, want 192.0.2.2", r)
	}
	if got := len(req.GetHeaders("Route")); got != 2 {
		t.Fatalf("%d Route values", got)
	}
	setRoutes(req, nil)
	if req.Route() != nil {
		t.Fatal("Route() after removing all")
	}
}

// TestDecideLooseRouteTwoLeft: a request whose top Route names another
// node goes there even when more Route values follow (the ACK an edge node
// got for a dialog whose top Route is the home node).
func TestDecideLooseRouteTwoLeft(t *testing.T) {
	e := newRouteEnv(t, nil)
	req := parseReq(t, withToTag(reqText("ACK", "sip:bob@192.0.2.20:5062",
		"Route: <sip:"+otherAddr+";lr>, <sip:"+selfAddr+";lr>"))...)
	d, _ := e.decide(t, req, callerSrc)
	if d.kind != RouteDialog || len(d.branches) != 1 || hopsString(d.branches[0].hops) != "udp:"+otherAddr {
		t.Fatalf("got %s %+v, want to %s", d.kind, d.branches, otherAddr)
	}
}

// TestLoopHashAlternate: the copy a node sends itself as an alternate of
// the home node spirals (its dsn-alt Route changes the loop hash).
func TestLoopHashAlternate(t *testing.T) {
	e := newRouteEnv(t, nil)
	first := parseReq(t, reqText("INVITE", "sip:bob@"+testDomain)...)
	again := parseReq(t, reqText("INVITE", "sip:bob@"+testDomain, "Route: <sip:"+selfAddr+";lr;dsn-alt>")...)
	plain := parseReq(t, reqText("INVITE", "sip:bob@"+testDomain, "Route: <sip:"+selfAddr+";lr>")...)
	if e.p.loopHash(first) == e.p.loopHash(again) {
		t.Fatal("dsn-alt does not change the loop hash")
	}
	if e.p.loopHash(first) != e.p.loopHash(plain) {
		t.Fatal("this node's own plain Route entry changes the loop hash")
	}
}
