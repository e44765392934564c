package proxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/sip/registrar"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// flowParam is the Record-Route URI parameter in which the home node keeps
// the NAT flow of the callee's binding, so later in-dialog requests reach
// the phone through the flow it registered on.
const flowParam = "dsn-flow"

// altParam marks the Route entry with which a node sends a request to an
// alternate of the callee's home node (<sip:alternate;lr;dsn-alt>) after
// the home node did not answer: the alternate then serves the callee from
// the replica of the home node's records even while its own view of the
// ring still names the failed node as home.
const altParam = "dsn-alt"

// branchPlan is one target of a request (RFC 3261 16.5): its new
// Request-URI, the Route values to push on top, and the hops to try in
// order (RFC 3263 fail-over); then, when every hop has failed, the plans
// chained on next (the home node's alternates, or the phone without the
// Path edge it registered through).
type branchPlan struct {
	ruri   sip.Uri
	routes []sip.Uri
	hops   []hop
	// flow is the NAT flow of a binding reached without Path; it goes into
	// this branch's Record-Route.
	flow *hop
	// wait is how long a hop of this plan may stay silent before the
	// next hop is tried; 0 means Config.FailoverTimeout.
	wait time.Duration
	// kind is what moving on to this plan counts as (Event.Failovers);
	// moving between the hops of one plan counts as failTarget.
	kind failoverKind
	// next is tried when every hop of this plan has failed.
	next *branchPlan
	// node: the hops are DSN nodes (the home node, an alternate, a Path
	// edge): the copy sent carries this node's DSN-Node-Auth marker.
	node bool
}

// failoverKind says which Failovers counter a move to the next hop counts
// in.
type failoverKind uint8

const (
	failTarget failoverKind = iota // the next RFC 3263 target
	failHome                       // the home node's next alternate
	failPath                       // past a Path edge, toward the phone
)

func (k failoverKind) String() string {
	switch k {
	case failHome:
		return "home"
	case failPath:
		return "path"
	}
	return "target"
}

func (f *Failovers) add(k failoverKind) {
	switch k {
	case failHome:
		f.Home++
	case failPath:
		f.Path++
	default:
		f.Target++
	}
}

// hopCount is the number of hops of bp and of the plans chained after it.
func (bp *branchPlan) hopCount() int {
	n := 0
	for q := bp; q != nil; q = q.next {
		n += len(q.hops)
	}
	return n
}

// at returns the plan holding the i-th hop of the chain that starts at
// bp, and the index of that hop within it.
func (bp *branchPlan) at(i int) (*branchPlan, int) {
	q := bp
	for q.next != nil && i >= len(q.hops) {
		i -= len(q.hops)
		q = q.next
	}
	return q, i
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
	// alt: a removed Route entry carried dsn-alt: another node sends
	// the request to this node as an alternate of the callee's home node.
	alt bool
	// inDialog: the request has a To tag.
	inDialog bool
	// routed: the request reached this node as a hop of its route (a
	// Route entry naming it, or a strict router's Request-URI naming
	// it), as the requests of a dialog this node record-routed do.
	routed bool
	// ownDialog: routed, and an entry naming this node (a removed Route
	// entry, or a strict router's Request-URI) carried a Record-Route
	// token valid for the request's Call-ID: the dialog is one this node
	// (or another DSN node) record-routed and admitted when it was
	// created. Without it an in-dialog request is subject to the relay
	// rule.
	ownDialog bool
	src       registrar.Source
	// who is the sender's standing for the call policy and relay rule.
	who *caller
	// orig is the request as received (nil in tests that route a copy
	// only): Digest checks it.
	orig *sip.Request
}

// preprocess applies RFC 3261 section 16.4 to req (a copy the caller
// owns): a Request-URI naming this node with Route headers present came
// from a strict router, so the last Route value becomes the Request-URI;
// then every Route entry at the top that names this node is removed.
//
// Before that it evaluates the sender's standing (trusted source, DSN
// node marker) on the request as it came, and removes the marker.
func (p *Proxy) preprocess(req *sip.Request, src registrar.Source) routeInput {
	in := routeInput{req: req, src: src, who: p.standing(req, src)}
	if to := req.To(); to != nil {
		in.inDialog = to.Params.Has("tag")
	}
	callID := ""
	if c := req.CallID(); c != nil {
		callID = c.Value()
	}
	checkToken := func(u *sip.Uri) {
		if v, ok := u.UriParams.Get(rrTokenParam); ok && p.deps.NodeAuth != nil && p.deps.NodeAuth.verifyRRToken(v, callID) {
			in.ownDialog = true
		}
	}
	routes := routeURIs(req)
	if len(routes) > 0 && p.id.isSelfURI(&req.Recipient) {
		checkToken(&req.Recipient)
		req.Recipient = routes[len(routes)-1]
		routes = routes[:len(routes)-1]
		in.routed = true
	}
	for len(routes) > 0 && p.id.isSelfURI(&routes[0]) {
		checkToken(&routes[0])
		in.viaRoute, in.routed = true, true
		if v, ok := routes[0].UriParams.Get(flowParam); ok {
			if f, ok := parseFlow(v); ok {
				in.flow = &f
			}
		}
		if routes[0].UriParams.Has(altParam) {
			in.alt = true
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
		// A Route set remains: it says where the request goes next. A
		// preloaded one (or one of a dialog this node did not
		// record-route: no valid token) is a relay.
		if !in.inDialog || !in.ownDialog {
			if rej := p.admitRelay(ctx, in); rej != nil {
				return refused(rej)
			}
		}
		hops, err := p.hopsForURI(ctx, &r.Address)
		if err != nil {
			return p.locateFailure(err, "Route")
		}
		return decision{kind: RouteDialog, branches: []branchPlan{{ruri: req.Recipient, hops: hops}}}
	}
	ruri := req.Recipient
	if p.id.isSelfURI(&ruri) {
		// Addressed to this node (or the bare domain) itself.
		switch {
		case req.Method == sip.OPTIONS:
			return decision{kind: RouteLocal, options200: true}
		case !knownMethod(req.Method):
			// RFC 3261 8.2.1: a method this node does not implement.
			return decision{kind: RouteLocal, rej: reject(501, "Not Implemented", p.allowHeader())}
		}
		return decision{kind: RouteLocal, rej: reject(404, "Not Found (no user part)")}
	}
	if in.inDialog {
		if in.flow != nil && !sameAddr(in.src, in.flow) {
			// Toward the phone that is behind NAT: through its flow.
			if !in.ownDialog {
				if rej := p.admitRelay(ctx, in); rej != nil {
					return refused(rej)
				}
			}
			return decision{kind: RouteDialog, branches: []branchPlan{{ruri: ruri, hops: []hop{*in.flow}}}}
		}
		if !p.id.ownsUser(&ruri) {
			if !in.ownDialog {
				// Not a dialog this node (or another DSN node) is on the
				// route of, by a valid Record-Route token.
				if rej := p.admitRelay(ctx, in); rej != nil {
					return refused(rej)
				}
			}
			hops, err := p.hopsForURI(ctx, &ruri)
			if err != nil {
				return p.locateFailure(err, "Request-URI")
			}
			return decision{kind: RouteDialog, branches: []branchPlan{{ruri: ruri, hops: hops}}}
		}
	}
	if in.flow != nil && !in.inDialog && !sameAddr(in.src, in.flow) && !p.id.ownsUser(&ruri) {
		// The last DSN hop of a Path: the home node named, in this
		// node's Route entry, the NAT flow the phone registered on here.
		// Deliver through it, and record-route with it so the rest of
		// the dialog does too. Only the home node asks for that: a DSN
		// node, or a trusted or authenticated sender.
		if rej := p.admitRelay(ctx, in); rej != nil {
			return refused(rej)
		}
		return decision{kind: RouteExternal, recordRoute: dialogCreating(req.Method),
			branches: []branchPlan{{ruri: ruri, hops: []hop{*in.flow}, flow: in.flow}}}
	}
	var d decision
	switch number, phone := e164Target(&ruri); {
	case phone:
		d = p.routeNumber(ctx, in, ruri, number)
	case p.id.ownsUser(&ruri):
		d = p.routeUser(ctx, in, ruri)
	default:
		if rej := p.admitRelay(ctx, in); rej != nil {
			return refused(rej)
		}
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
	if p.cfg.CallPolicy != PolicyAccept {
		// The number leads to a DSN user or out of the DSN; under this
		// policy a caller who may do neither is stopped before ENUM.
		if rej := p.admitCall(ctx, in); rej != nil {
			return refused(rej)
		}
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
	if rej := p.admitRelay(ctx, in); rej != nil {
		return refused(rej)
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
// the bindings; elsewhere proxy or redirect to the home node. A request
// sent here as an alternate of the home node is served here when this
// node is one of the home node's alternates in its own view of the ring.
//
// A request another DSN node sent here as the home node or as an
// alternate (sentAsHome) is served here whatever this node's view of the
// ring says: it never goes back into the ring. See sentAsHome.
func (p *Proxy) routeUser(ctx context.Context, in routeInput, ruri sip.Uri) decision {
	if rej := p.admitCall(ctx, in); rej != nil {
		return refused(rej)
	}
	aor, err := registrar.CanonicalAOR("sip:" + ruri.User + "@" + uriHost(p.id.domain))
	if err != nil {
		return decision{kind: RouteLocal, rej: reject(404, "Not Found (invalid user)")}
	}
	kind := RouteHome
	if in.alt {
		kind = RouteAlternate
	}
	home, err := p.deps.Locator.Home(ctx, aor)
	if err != nil {
		if sentAsHome(in) {
			p.log.Info("home node look-up failed; serving the request a DSN node sent here",
				zap.String("aor", aor), zap.String("route", string(kind)), zap.Error(err))
			return p.serveUser(ctx, in, aor, kind)
		}
		p.log.Warn("home node look-up failed", zap.String("aor", aor), zap.Error(err))
		return p.unavailable("Home node not reachable")
	}
	switch {
	case p.isSelfNode(home.Self, home.Addr):
		return p.serveUser(ctx, in, aor, RouteHome)
	case in.alt && p.isAlternate(home):
		p.log.Info("serving as an alternate of the home node", zap.String("aor", aor),
			zap.String("home", home.Name), zap.String("home_addr", home.Addr))
		return p.serveUser(ctx, in, aor, RouteAlternate)
	case sentAsHome(in):
		// The sending node's view of the ring makes this node the home
		// node (or an alternate), this node's does not: the views
		// differ while the ring churns. Sending the request on could
		// bring it back to a node it has passed (482). Serve it here:
		// the binding look-up reads the DHT, which reaches the node that
		// really owns the AOR.
		p.log.Info("ring views differ; serving the request a DSN node sent here", zap.String("aor", aor),
			zap.String("route", string(kind)), zap.String("home", home.Name), zap.String("home_addr", home.Addr))
		return p.serveUser(ctx, in, aor, kind)
	case in.alt:
		// Sent here as an alternate, but this node's ring view does not
		// make it one (the ring changed): hand it to the home node as
		// any other request. Max-Forwards and loop detection bound it.
		p.log.Info("request for an alternate, but this node is none of the home node's; forwarding",
			zap.String("aor", aor), zap.String("home", home.Name))
	}
	return p.routeToHome(ctx, in, ruri, home)
}

// sentAsHome reports whether another DSN node sent the request to this
// node as the callee's home node (by its Request-URI, with no Route entry
// naming this node) or as an alternate of it (a Route entry marked
// dsn-alt): the request carried a valid DSN-Node-Auth marker. Such a
// request is served by this node, never forwarded to another DSN node, so
// a request crosses at most one hop between DSN nodes on its way to the
// callee's bindings (the entry node to the node serving them, plus a
// fail-over to an alternate) and cannot come back to a node it has passed
// however the nodes' views of the ring differ. A request reaching this
// node through a plain Route entry (a Path edge) is not one.
func sentAsHome(in routeInput) bool {
	return in.who != nil && in.who.node && (!in.viaRoute || in.alt)
}

// isSelfNode reports whether a node the Locator names is this node.
func (p *Proxy) isSelfNode(self bool, addr string) bool {
	if self {
		return true
	}
	h, port, err := splitHostPort(addr)
	return err == nil && p.id.isSelf(h, port, p.cfg.NodeTransport)
}

// isAlternate reports whether this node is one of home's alternates.
func (p *Proxy) isAlternate(home Home) bool {
	for _, a := range home.Alternates {
		if p.isSelfNode(a.Self, a.Addr) {
			return true
		}
	}
	return false
}

// serveUser forks a request for aor to its live bindings: on the home node
// (kind RouteHome) or on an alternate of a home node that did not answer
// (RouteAlternate).
func (p *Proxy) serveUser(ctx context.Context, in routeInput, aor string, kind RouteKind) decision {
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
	d := decision{kind: kind, recordRoute: true}
	wait := p.nodeWait(in.req.Method)
	for i := range bindings {
		if len(d.branches) == p.cfg.MaxBranches {
			break
		}
		bp, err := p.bindingPlan(ctx, &bindings[i], wait)
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

// nodeWait is how long a request of method m may find another DSN node
// silent before the proxy tries the next one (Config.NodeFailoverTimeout).
func (p *Proxy) nodeWait(m sip.RequestMethod) time.Duration {
	if m == sip.INVITE {
		return p.cfg.NodeFailoverTimeout
	}
	return max(p.cfg.NodeFailoverTimeout, p.cfg.FailoverTimeout)
}

// routeToHome hands a request for a subscriber on to its home node, then,
// if the home node does not answer, to its alternates in order (each with
// a Route entry marked dsn-alt, so that it serves the request).
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
	if !p.id.isDomain(ruri.Host) {
		// sip:user@<this node>: the home node would not know the user
		// by this node's address; name the DSN domain instead.
		ruri = sip.Uri{Scheme: ruri.Scheme, User: ruri.User, Host: uriHost(p.id.domain), UriParams: ruri.UriParams}
	}
	wait := p.nodeWait(in.req.Method)
	var plans []branchPlan
	if hops, err := p.hopsForNode(ctx, home.Addr); err != nil {
		p.log.Warn("home node not locatable", zap.String("home", home.Name), zap.Error(err))
	} else {
		plans = append(plans, branchPlan{ruri: ruri, hops: hops, wait: wait, node: true})
	}
	for _, a := range home.Alternates {
		if a.Addr == home.Addr {
			continue
		}
		u, err := p.nodeURI(a.Addr)
		if err == nil {
			u.UriParams.Add("lr", "")
			u.UriParams.Add(altParam, "")
		}
		var hops []hop
		if err == nil {
			hops, err = p.hopsForURI(ctx, &u)
		}
		if err != nil {
			p.log.Info("alternate not locatable", zap.String("alternate", a.Name), zap.Error(err))
			continue
		}
		plans = append(plans, branchPlan{ruri: ruri, routes: []sip.Uri{u}, hops: hops, wait: wait, kind: failHome, node: true})
	}
	if len(plans) == 0 {
		return p.unavailable("Home node not reachable")
	}
	return decision{kind: RouteProxy, branches: []branchPlan{chain(plans)}}
}

// chain links plans in order and returns the first.
func chain(plans []branchPlan) branchPlan {
	for i := len(plans) - 2; i >= 0; i-- {
		plans[i].next = &plans[i+1]
	}
	return plans[0]
}

// bindingPlan is the branch toward one registered contact: through its
// Path (minus leading entries naming this node), else through its NAT
// flow, else to the Contact itself. A Path edge that does not answer
// within wait (or answers 503, or fails at the transport) is skipped: the
// branch goes on past it, to the next Path entry or to the phone itself.
func (p *Proxy) bindingPlan(ctx context.Context, b *registrar.Binding, wait time.Duration) (branchPlan, error) {
	var ruri sip.Uri
	if err := sip.ParseUri(b.Contact, &ruri); err != nil || !isSIP(&ruri) {
		return branchPlan{}, fmt.Errorf("proxy: contact %q is not a SIP URI", b.Contact)
	}
	var routes []sip.Uri
	ownSkipped := false
	for _, v := range b.Path {
		var u sip.Uri
		params := sip.NewParams()
		if _, err := sip.ParseAddressValue(v, &u, &params); err != nil {
			return branchPlan{}, fmt.Errorf("proxy: path %q: %w", v, err)
		}
		if len(routes) == 0 && p.id.isSelfURI(&u) {
			ownSkipped = true
			continue
		}
		routes = append(routes, u)
	}
	nat, behindNAT := b.NATTarget()
	if behindNAT && len(routes) > 0 && !ownSkipped {
		// The first Path entry is the node that took the REGISTER, and
		// Received the flow it came in on: tell that node, in its Route
		// entry, to deliver through the flow (the phone's Contact names
		// an address behind its NAT).
		if routes[0].UriParams == nil {
			routes[0].UriParams = sip.NewParams()
		}
		routes[0].UriParams.Add(flowParam, hopFromSource(nat).String())
	}
	var plans []branchPlan
	for i := range routes {
		hops, err := p.hopsForURI(ctx, &routes[i])
		if err != nil {
			p.log.Info("path hop not locatable", zap.String("path", routes[i].String()), zap.Error(err))
			continue
		}
		// A Path entry is a node that took the REGISTER: a DSN node
		// (or a proxy the phone registered through; the marker is then
		// good for this one request toward it only).
		plans = append(plans, branchPlan{ruri: ruri, routes: routes[i:], hops: hops, wait: wait, kind: failPath, node: true})
	}
	direct := branchPlan{ruri: ruri, kind: failPath}
	var err error
	if behindNAT {
		f := hopFromSource(nat)
		direct.hops, direct.flow = []hop{f}, &f
	} else {
		direct.hops, err = p.hopsForURI(ctx, &direct.ruri)
	}
	switch {
	case err == nil:
		plans = append(plans, direct)
	case len(plans) == 0:
		return branchPlan{}, err
	default:
		p.log.Info("contact not locatable, reached only through its Path", zap.String("contact", b.Contact), zap.Error(err))
	}
	return chain(plans), nil
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
// The values are prepended one at a time, bottom first: sipgo's
// PrependHeader caches the last header it is given as the one Route()
// returns, so prepending them all at once made Route() name the bottom
// entry, and a request with two Route values left went to the wrong one
// (an ACK sent to an edge node with Route: <H>, <edge> went back to the
// edge itself and died as a loop).
func setRoutes(req *sip.Request, routes []sip.Uri) {
	for req.RemoveHeader("Route") {
	}
	for i := len(routes) - 1; i >= 0; i-- {
		req.PrependHeader(&sip.RouteHeader{Address: routes[i]})
	}
}
