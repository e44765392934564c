package proxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/sip/registrar"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// flowParam is the Record-Route URI parameter in which the home node keeps
// the NAT flow of the callee's binding, so later in-dialog requests reach
// the phone through the flow it registered on.
const flowParam = "dsn-flow"

// branchPlan is one target of a request (RFC 3261 16.5): its new
// Request-URI, the Route values to push on top, and the hops to try in
// order (RFC 3263 fail-over).
type branchPlan struct {
	ruri   sip.Uri
	routes []sip.Uri
	hops   []hop
	// flow is the NAT flow of a binding reached without Path; it goes into
	// this branch's Record-Route.
	flow *hop
}

// decision is what to do with a validated request.
type decision struct {
	kind RouteKind
	// rej: answer with this response.
	rej *rejection
	// options200: an OPTIONS addressed to this node; answer 200 + Allow.
	options200 bool
	// redirect: answer 302 with this Contact.
	redirect *sip.Uri
	// branches: forward, in parallel (forking).
	branches    []branchPlan
	recordRoute bool
}

// routeInput is a request after Route pre-processing (RFC 3261 16.4).
type routeInput struct {
	req *sip.Request // working copy: own Route entries removed
	// viaRoute: the request reached this node through a Route entry
	// naming it (a Path or a preloaded route), not by its Request-URI.
	viaRoute bool
	// flow: the dsn-flow parameter of the removed Route entry, if any.
	flow *hop
	// inDialog: the request has a To tag.
	inDialog bool
	src      registrar.Source
}

// preprocess applies RFC 3261 section 16.4 to req (a copy the caller
// owns): a Request-URI naming this node with Route headers present came
// from a strict router, so the last Route value becomes the Request-URI;
// then every Route entry at the top that names this node is removed.
func (p *Proxy) preprocess(req *sip.Request, src registrar.Source) routeInput {
	in := routeInput{req: req, src: src}
	if to := req.To(); to != nil {
		in.inDialog = to.Params.Has("tag")
	}
	routes := routeURIs(req)
	if len(routes) > 0 && p.id.isSelfURI(&req.Recipient) {
		req.Recipient = routes[len(routes)-1]
		routes = routes[:len(routes)-1]
	}
	for len(routes) > 0 && p.id.isSelfURI(&routes[0]) {
		in.viaRoute = true
		if v, ok := routes[0].UriParams.Get(flowParam); ok {
			if f, ok := parseFlow(v); ok {
				in.flow = &f
			}
		}
		routes = routes[1:]
	}
	setRoutes(req, routes)
	return in
}

// decide routes a request (RFC 3261 16.5 and the DSN rules of the package
// doc). It blocks on the Locator, Bindings and Resolver, each bounded by
// ctx.
func (p *Proxy) decide(ctx context.Context, in routeInput) decision {
	req := in.req
	if r := req.Route(); r != nil {
		// A Route set remains: it says where the request goes next.
		hops, err := p.hopsForURI(ctx, &r.Address)
		if err != nil {
			return p.locateFailure(err, "Route")
		}
		return decision{kind: RouteDialog, branches: []branchPlan{{ruri: req.Recipient, hops: hops}}}
	}
	ruri := req.Recipient
	if p.id.isSelfURI(&ruri) {
		// Addressed to this node (or the bare domain) itself.
		if req.Method == sip.OPTIONS {
			return decision{kind: RouteLocal, options200: true}
		}
		return decision{kind: RouteLocal, rej: reject(404, "Not Found (no user part)")}
	}
	if in.inDialog {
		if in.flow != nil && !sameAddr(in.src, in.flow) {
			// Toward the phone that is behind NAT: through its flow.
			return decision{kind: RouteDialog, branches: []branchPlan{{ruri: ruri, hops: []hop{*in.flow}}}}
		}
		if !p.id.ownsUser(&ruri) {
			hops, err := p.hopsForURI(ctx, &ruri)
			if err != nil {
				return p.locateFailure(err, "Request-URI")
			}
			return decision{kind: RouteDialog, branches: []branchPlan{{ruri: ruri, hops: hops}}}
		}
	}
	var d decision
	switch number, phone := e164Target(&ruri); {
	case phone:
		d = p.routeNumber(ctx, in, ruri, number)
	case p.id.ownsUser(&ruri):
		d = p.routeUser(ctx, in, ruri)
	default:
		d = p.routeExternal(ctx, ruri)
		// An initial request that reached this node through a Route
		// entry naming it (a Path, or a phone's outbound proxy) is
		// record-routed: later requests of the dialog then come through
		// the node that holds the phone's connection.
		d.recordRoute = in.viaRoute
	}
	if in.inDialog || !dialogCreating(req.Method) {
		d.recordRoute = false
	}
	return d
}

// dialogCreating reports whether a request of this method creates a dialog
// (so a Record-Route in it matters).
func dialogCreating(m sip.RequestMethod) bool {
	switch m {
	case sip.INVITE, sip.SUBSCRIBE, sip.REFER:
		return true
	}
	return false
}

// e164Target reports whether u names a telephone number: a tel: URI, or a
// sip: URI with user=phone. number is the number without parameters.
func e164Target(u *sip.Uri) (number string, ok bool) {
	switch {
	case u.Scheme == "tel":
		number, _, _ = strings.Cut(u.Raw(), ";")
		return strings.TrimSpace(number), true
	case isSIP(u) && u.UriParams.GetOr("user", "") == "phone" && u.User != "":
		number, _, _ = strings.Cut(u.User, ";")
		return number, true
	}
	return "", false
}

// routeNumber maps a telephone number through ENUM (RFC 6116) and routes
// the URI it gets. A sip: URI of the DSN domain whose number ENUM does not
// know is routed as a DSN user (phones may register as +number@domain).
func (p *Proxy) routeNumber(ctx context.Context, in routeInput, ruri sip.Uri, number string) decision {
	fallback := func(why string) decision {
		if p.id.ownsUser(&ruri) {
			return p.routeUser(ctx, in, ruri)
		}
		return decision{kind: RouteLocal, rej: reject(404, why)}
	}
	if !strings.HasPrefix(number, "+") {
		return fallback("Not Found (not a global number)")
	}
	if _, err := dnsreport.NormalizeE164(number); err != nil {
		return decision{kind: RouteLocal, rej: reject(484, "Address Incomplete")}
	}
	if p.deps.Resolver == nil {
		return fallback("Not Found (no ENUM)")
	}
	target, err := p.deps.Resolver.ENUM(ctx, number)
	switch {
	case errors.Is(err, dnsreport.ErrNotFound):
		return fallback("Not Found (ENUM)")
	case err != nil:
		p.log.Warn("ENUM look-up failed", zap.String("number", number), zap.Error(err))
		return p.unavailable("ENUM look-up failed")
	}
	var u sip.Uri
	if err := sip.ParseUri(target, &u); err != nil || !isSIP(&u) || u.Host == "" {
		p.log.Warn("ENUM gave an unusable URI", zap.String("number", number), zap.String("uri", target))
		return decision{kind: RouteLocal, rej: reject(404, "Not Found (bad ENUM result)")}
	}
	if p.id.ownsUser(&u) {
		return p.routeUser(ctx, in, u)
	}
	d := p.routeExternal(ctx, u)
	d.recordRoute = in.viaRoute
	return d
}

// routeExternal sends a request outside the DSN: the Request-URI's host is
// located by RFC 3263 and the targets are tried in order.
func (p *Proxy) routeExternal(ctx context.Context, ruri sip.Uri) decision {
	hops, err := p.hopsForURI(ctx, &ruri)
	if err != nil {
		return p.locateFailure(err, ruri.Host)
	}
	return decision{kind: RouteExternal, branches: []branchPlan{{ruri: ruri, hops: hops}}}
}

// routeUser routes to a DSN subscriber: find the home node; there, fork to
// the bindings; elsewhere proxy or redirect to the home node.
func (p *Proxy) routeUser(ctx context.Context, in routeInput, ruri sip.Uri) decision {
	aor, err := registrar.CanonicalAOR("sip:" + ruri.User + "@" + uriHost(p.id.domain))
	if err != nil {
		return decision{kind: RouteLocal, rej: reject(404, "Not Found (invalid user)")}
	}
	home, err := p.deps.Locator.Home(ctx, aor)
	if err != nil {
		p.log.Warn("home node look-up failed", zap.String("aor", aor), zap.Error(err))
		return p.unavailable("Home node not reachable")
	}
	if !home.Self {
		if h, port, err := splitHostPort(home.Addr); err == nil && p.id.isSelf(h, port, p.cfg.NodeTransport) {
			home.Self = true
		}
	}
	if !home.Self {
		return p.routeToHome(ctx, in, ruri, home)
	}
	bindings, err := p.deps.Bindings.Lookup(ctx, aor)
	switch {
	case errors.Is(err, registrar.ErrNotFound), errors.Is(err, registrar.ErrInvalidAOR):
		return decision{kind: RouteLocal, rej: reject(404, "Not Found")}
	case errors.Is(err, registrar.ErrNoBindings):
		return decision{kind: RouteLocal, rej: reject(480, "Temporarily Unavailable")}
	case err != nil:
		p.log.Warn("binding look-up failed", zap.String("aor", aor), zap.Error(err))
		return decision{kind: RouteLocal, rej: reject(500, "Location Service Failure",
			sip.NewHeader("Retry-After", p.retryAfter()))}
	}
	d := decision{kind: RouteHome, recordRoute: true}
	for i := range bindings {
		if len(d.branches) == p.cfg.MaxBranches {
			break
		}
		bp, err := p.bindingPlan(ctx, &bindings[i])
		if err != nil {
			p.log.Info("skipping binding", zap.String("aor", aor), zap.String("contact", bindings[i].Contact), zap.Error(err))
			continue
		}
		d.branches = append(d.branches, bp)
	}
	if len(d.branches) == 0 {
		return decision{kind: RouteLocal, rej: reject(480, "Temporarily Unavailable")}
	}
	return d
}

// routeToHome hands a request for a subscriber on to its home node.
func (p *Proxy) routeToHome(ctx context.Context, in routeInput, ruri sip.Uri, home Home) decision {
	if p.cfg.RouteMode == ModeRedirect && in.req.Method == sip.INVITE && !in.inDialog {
		host, port, err := splitHostPort(home.Addr)
		if err != nil {
			p.log.Warn("bad home node address", zap.String("home", home.Name), zap.String("addr", home.Addr))
			return p.unavailable("Home node address invalid")
		}
		c := sip.Uri{Scheme: "sip", User: ruri.User, Host: uriHost(host), Port: port}
		if tr := strings.ToLower(p.cfg.NodeTransport); tr != "udp" {
			c.UriParams = sip.HeaderParams{{K: "transport", V: tr}}
		}
		return decision{kind: RouteRedirect, redirect: &c}
	}
	hops, err := p.hopsForNode(ctx, home.Addr)
	if err != nil {
		p.log.Warn("home node not locatable", zap.String("home", home.Name), zap.Error(err))
		return p.unavailable("Home node not reachable")
	}
	if !p.id.isDomain(ruri.Host) {
		// sip:user@<this node>: the home node would not know the user
		// by this node's address; name the DSN domain instead.
		ruri = sip.Uri{Scheme: ruri.Scheme, User: ruri.User, Host: uriHost(p.id.domain), UriParams: ruri.UriParams}
	}
	return decision{kind: RouteProxy, branches: []branchPlan{{ruri: ruri, hops: hops}}}
}

// bindingPlan is the branch toward one registered contact: through its
// Path (minus leading entries naming this node), else through its NAT
// flow, else to the Contact itself.
func (p *Proxy) bindingPlan(ctx context.Context, b *registrar.Binding) (branchPlan, error) {
	var bp branchPlan
	if err := sip.ParseUri(b.Contact, &bp.ruri); err != nil || !isSIP(&bp.ruri) {
		return bp, fmt.Errorf("proxy: contact %q is not a SIP URI", b.Contact)
	}
	for _, v := range b.Path {
		var u sip.Uri
		params := sip.NewParams()
		if _, err := sip.ParseAddressValue(v, &u, &params); err != nil {
			return bp, fmt.Errorf("proxy: path %q: %w", v, err)
		}
		if len(bp.routes) == 0 && p.id.isSelfURI(&u) {
			continue
		}
		bp.routes = append(bp.routes, u)
	}
	var err error
	switch nat, behindNAT := b.NATTarget(); {
	case len(bp.routes) > 0:
		bp.hops, err = p.hopsForURI(ctx, &bp.routes[0])
	case behindNAT:
		f := hopFromSource(nat)
		bp.hops, bp.flow = []hop{f}, &f
	default:
		bp.hops, err = p.hopsForURI(ctx, &bp.ruri)
	}
	return bp, err
}

// locateFailure answers a request whose next hop DNS cannot name: 404 when
// DNS says the name does not exist, else 503 so the sender may retry
// elsewhere.
func (p *Proxy) locateFailure(err error, what string) decision {
	if errors.Is(err, dnsreport.ErrNotFound) {
		return decision{kind: RouteLocal, rej: reject(404, "Not Found ("+what+" not in DNS)")}
	}
	p.log.Info("next hop not locatable", zap.String("what", what), zap.Error(err))
	return p.unavailable("Next hop not locatable")
}

func (p *Proxy) unavailable(reason string) decision {
	return decision{kind: RouteLocal, rej: reject(503, "Service Unavailable ("+reason+")",
		sip.NewHeader("Retry-After", p.retryAfter()))}
}

func (p *Proxy) retryAfter() string {
	return strconv.Itoa(int(p.cfg.RetryAfter.Seconds()))
}

func sameAddr(src registrar.Source, h *hop) bool {
	return !src.IsZero() && src.Addr == h.Addr
}

// routeURIs returns the Route values of req, top first.
func routeURIs(req *sip.Request) []sip.Uri {
	hs := req.GetHeaders("Route")
	out := make([]sip.Uri, 0, len(hs))
	for _, h := range hs {
		if r, ok := h.(*sip.RouteHeader); ok {
			out = append(out, *r.Address.Clone())
		}
	}
	return out
}

// setRoutes replaces req's Route header values with routes, top first.
func setRoutes(req *sip.Request, routes []sip.Uri) {
	for req.RemoveHeader("Route") {
	}
	hs := make([]sip.Header, 0, len(routes))
	for i := range routes {
		hs = append(hs, &sip.RouteHeader{Address: routes[i]})
	}
	if len(hs) > 0 {
		req.PrependHeader(hs...)
	}
}
