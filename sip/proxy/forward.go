package proxy

import (
	"context"
	"net"

	"github.com/dsn-ims/dsn/sip/registrar"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// prebuilt is the sipgo client option for requests the proxy has built
// completely: sipgo then adds nothing.
func prebuilt(*sipgo.Client, *sip.Request) error { return nil }

// forwardCopy builds the request sent on one branch to one hop (RFC 3261
// 16.6 steps 1-8) from base, the copy every branch starts from (own Route
// entries removed, Max-Forwards decremented, sender's Via completed):
// the branch's Request-URI and Route set, this node's Record-Route when rr
// (two entries when the transport changes, RFC 5658), the strict-route
// conversion of step 6, and this node's Via with branchID.
func (p *Proxy) forwardCopy(base *sip.Request, plan *branchPlan, h hop, branchID string, rr bool, inTransport string) *sip.Request {
	out := base.Clone()
	out.Recipient = *plan.ruri.Clone()
	if len(plan.routes) > 0 {
		routes := make([]sip.Uri, 0, len(plan.routes)+2)
		for i := range plan.routes {
			routes = append(routes, *plan.routes[i].Clone())
		}
		setRoutes(out, append(routes, routeURIs(out)...))
	}
	if rr {
		callID := ""
		if c := out.CallID(); c != nil {
			callID = c.Value()
		}
		if in := upperTransport(inTransport); in != h.Transport {
			out.PrependHeader(&sip.RecordRouteHeader{Address: p.recordRouteURI(in, nil, callID)})
		}
		out.PrependHeader(&sip.RecordRouteHeader{Address: p.recordRouteURI(h.Transport, plan.flow, callID)})
	}
	if r := out.Route(); r != nil && !r.Address.UriParams.Has("lr") {
		// The next hop is a strict router: it wants its URI as the
		// Request-URI and the real Request-URI at the end of the Route.
		routes := routeURIs(out)
		next := routes[0]
		routes = append(routes[1:], out.Recipient)
		out.Recipient = next
		setRoutes(out, routes)
	}
	out.PrependHeader(&sip.ViaHeader{
		ProtocolName:    "SIP",
		ProtocolVersion: "2.0",
		Transport:       h.Transport,
		Host:            p.id.advertise.host,
		Port:            p.id.advertise.port,
		Params:          sip.HeaderParams{{K: "branch", V: branchID}, {K: "rport", V: ""}},
	})
	out.SetTransport(h.Transport)
	out.SetDestination(h.Addr.String())
	p.setLocalAddr(out, h)
	p.stripCredentials(out)
	if plan.node && p.deps.NodeAuth != nil {
		p.deps.NodeAuth.sign(out, p.clock.Now())
	}
	return out
}

// udpMax is the size above which a request is not sent over UDP (RFC 3261
// 18.1.1: within 200 bytes of an unknown path MTU, taken as 1500; sipgo
// refuses to send such a message over UDP at all).
const udpMax = 1300

// tooBigForUDP reports whether req, to be sent to h over UDP, must go
// over TCP instead.
func tooBigForUDP(req *sip.Request, h hop) bool {
	if h.Transport != "UDP" {
		return false
	}
	var n countWriter
	req.StringWrite(&n)
	return int(n) > udpMax
}

// countWriter counts what is written to it.
type countWriter int

func (c *countWriter) WriteString(s string) (int, error) {
	*c += countWriter(len(s))
	return len(s), nil
}

// recordRouteURI is this node's Record-Route URI for a transport, with the
// dialog's Record-Route token after lr (when the node has Deps.NodeAuth)
// and the NAT flow of the callee when it has one.
func (p *Proxy) recordRouteURI(transport string, flow *hop, callID string) sip.Uri {
	u := sip.Uri{Scheme: "sip", Host: uriHost(p.id.advertise.host), Port: p.id.advertise.port, UriParams: sip.NewParams()}
	if transport != "UDP" {
		u.UriParams.Add("transport", sipTransportParam(transport))
	}
	u.UriParams.Add("lr", "")
	if p.deps.NodeAuth != nil {
		u.UriParams.Add(rrTokenParam, p.deps.NodeAuth.rrToken(callID))
	}
	if flow != nil {
		u.UriParams.Add(flowParam, flow.String())
	}
	return u
}

func sipTransportParam(t string) string {
	switch t {
	case "TCP":
		return "tcp"
	case "TLS":
		return "tls"
	case "WS":
		return "ws"
	case "WSS":
		return "wss"
	}
	return "udp"
}

// setLocalAddr makes a UDP request leave from the node's listener
// (Config.ListenUDP) when that socket is serving and can reach the hop.
func (p *Proxy) setLocalAddr(req *sip.Request, h hop) {
	if h.Transport != "UDP" || p.laddr.IP == nil {
		return
	}
	l4 := p.laddr.IP.To4() != nil
	if l4 != h.Addr.Addr().Is4() && !(p.laddr.IP.IsUnspecified() && !l4) {
		return
	}
	_, tp := p.sender()
	c, err := tp.GetConnection("udp", p.laddr.String())
	if err != nil {
		return // not serving (yet): let sipgo pick a socket
	}
	_, _ = c.TryClose() // GetConnection took a reference
	req.Laddr = sip.Addr{IP: append(net.IP(nil), p.laddr.IP...), Port: p.laddr.Port}
}

// serveAck forwards an ACK that matched no server transaction: the ACK of
// a 2xx, which is end-to-end (RFC 3261 13.2.2.4). It is forwarded
// statelessly along its Route set (or Request-URI), and releases the
// in-dialog requests of its dialog that wait for it. An ACK gets no
// response, so a bad one is dropped.
func (p *Proxy) serveAck(req *sip.Request, _ sip.ServerTransaction) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("panic while forwarding ACK", zap.Any("panic", r))
		}
	}()
	key := dialogKey(req)
	if validate(req) != nil {
		return
	}
	src := registrar.SourceOf(req)
	loop := p.loopHash(req)
	if rej := p.checkHops(req, loop); rej != nil {
		var vias []string
		for _, h := range req.GetHeaders("Via") {
			vias = append(vias, h.Value())
		}
		p.log.Debug("dropping ACK", zap.Int("would-be", rej.code), zap.String("reason", rej.reason),
			zap.Strings("via", vias), zap.String("loop_hash", loop), zap.String("source", req.Source()))
		return
	}
	work := p.baseCopy(req, src)
	in := p.preprocess(work, src)
	if !in.inDialog || (work.Route() == nil && (p.id.isSelfURI(&work.Recipient) || p.id.ownsUser(&work.Recipient))) {
		// Addressed to this node or to an AOR: the ACK of a response this
		// node generated (over TCP sipgo no longer has the transaction);
		// the ACK of a 2xx names the callee's contact.
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.LookupTimeout)
	d := p.decide(ctx, in)
	cancel()
	if len(d.branches) == 0 || len(d.branches[0].hops) == 0 {
		p.log.Debug("dropping ACK with no next hop", zap.String("ruri", req.Recipient.String()))
		return
	}
	inBranch, _ := req.Via().Params.Get("branch")
	plan := &d.branches[0]
	h := plan.hops[0]
	out := p.forwardCopy(work, plan, h, p.ackBranch(loop, inBranch), false, req.Transport())
	if tooBigForUDP(out, h) {
		h.Transport = "TCP"
		out = p.forwardCopy(work, plan, h, p.ackBranch(loop, inBranch), false, req.Transport())
	}
	client, _ := p.sender()
	p.allowDial(out)
	if err := client.WriteRequest(out, prebuilt); err != nil {
		p.log.Info("forwarding ACK failed", zap.String("to", plan.hops[0].String()), zap.Error(err))
		return
	}
	p.gate.acked(key)
}

// cancelFor builds the CANCEL of a forwarded INVITE (RFC 3261 9.1): same
// Request-URI, Call-ID, To, From, CSeq number and Route, and the INVITE's
// top Via, so it matches the INVITE's transaction downstream.
func cancelFor(inv *sip.Request) *sip.Request {
	c := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	c.SipVersion = inv.SipVersion
	if v := inv.Via(); v != nil {
		c.AppendHeader(v.Clone())
	}
	for _, h := range inv.GetHeaders("Route") {
		c.AppendHeader(sip.HeaderClone(h))
	}
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	for _, h := range []sip.Header{inv.From(), inv.To(), inv.CallID()} {
		c.AppendHeader(sip.HeaderClone(h))
	}
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	c.SetBody(nil)
	c.SetTransport(inv.Transport())
	c.SetDestination(inv.Destination())
	c.Laddr = inv.Laddr
	return c
}
