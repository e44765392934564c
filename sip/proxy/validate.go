package proxy

import (
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// branchPrefix starts every Via branch this proxy writes: the RFC 3261
// magic cookie and a mark that lets the proxy find its own loop hash.
const branchPrefix = sip.RFC3261BranchMagicCookie + "dsn"

// rejection is a response the proxy answers itself.
type rejection struct {
	code    int
	reason  string
	headers []sip.Header
}

func reject(code int, reason string, hs ...sip.Header) *rejection {
	return &rejection{code: code, reason: reason, headers: hs}
}

// validate applies RFC 3261 section 16.3 items 1, 2, 5 (and the parts of
// 8.2 a proxy needs) to an incoming request: the headers a proxy must read
// are present and sane, the Request-URI scheme is one it routes, and no
// Proxy-Require names an extension. Max-Forwards (item 3) and loops (item 4)
// are checked by checkHops, after the proxy knows whether the request is
// addressed to itself. It returns nil when the request may be routed.
func validate(req *sip.Request) *rejection {
	switch {
	case req.Via() == nil:
		return reject(400, "Missing Via")
	case req.From() == nil:
		return reject(400, "Missing From")
	case req.To() == nil:
		return reject(400, "Missing To")
	case req.CallID() == nil || strings.TrimSpace(req.CallID().Value()) == "":
		return reject(400, "Missing Call-ID")
	case req.CSeq() == nil:
		return reject(400, "Missing CSeq")
	case !strings.EqualFold(string(req.CSeq().MethodName), string(req.Method)):
		// sipgo upper-cases the start line's method (not the CSeq's), so
		// case is all that can be compared (RFC 4475 3.1.1.2, intmeth).
		return reject(400, "CSeq method does not match the request method")
	}
	switch req.Recipient.Scheme {
	case "sip", "sips", "tel":
	default:
		return reject(416, "Unsupported URI Scheme")
	}
	if isSIP(&req.Recipient) && req.Recipient.Host == "" {
		return reject(400, "Request-URI has no host")
	}
	if hs := req.GetHeaders("Proxy-Require"); len(hs) > 0 {
		var tags []string
		for _, h := range hs {
			tags = append(tags, h.Value())
		}
		// This proxy supports no extension that needs proxy support.
		return reject(420, "Bad Extension", sip.NewHeader("Unsupported", strings.Join(tags, ", ")))
	}
	return nil
}

// checkHops applies RFC 3261 section 16.3 items 3 and 4: 483 when
// Max-Forwards is 0, 482 when the request carries a Via this proxy wrote
// with the same loop hash (it came back unchanged: a loop, not a spiral).
func (p *Proxy) checkHops(req *sip.Request, loopHash string) *rejection {
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		return reject(483, "Too Many Hops")
	}
	if p.looped(req, loopHash) {
		return reject(482, "Loop Detected")
	}
	return nil
}

// looped reports whether one of req's Via values was written by this node
// for a request with the same loop hash.
func (p *Proxy) looped(req *sip.Request, loopHash string) bool {
	want := branchPrefix + loopHash + "."
	for _, h := range req.GetHeaders("Via") {
		v, ok := h.(*sip.ViaHeader)
		if !ok {
			continue
		}
		b, _ := v.Params.Get("branch")
		if strings.HasPrefix(b, want) && p.id.isSelf(v.Host, v.Port, v.Transport) {
			return true
		}
	}
	return false
}

// loopHash hashes what decides where a request goes (RFC 3261 16.6 step 8,
// without the topmost Via as RFC 5393 requires): the Request-URI as
// received, the From and To tags, Call-ID, CSeq number, Proxy-Require,
// Proxy-Authorization and the Route values other than this node's (of
// this node's own, only a dsn-alt mark counts). A request that comes back
// with all of these unchanged is looping; a changed one (e.g. a
// retargeted Request-URI) is spiralling.
func (p *Proxy) loopHash(req *sip.Request) string {
	h := fnv.New64a()
	w := func(s string) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	w(req.Recipient.String())
	if f := req.From(); f != nil {
		w(f.Params.GetOr("tag", ""))
	}
	if t := req.To(); t != nil {
		w(t.Params.GetOr("tag", ""))
	}
	if c := req.CallID(); c != nil {
		w(c.Value())
	}
	if c := req.CSeq(); c != nil {
		w(strconv.FormatUint(uint64(c.SeqNo), 10))
	}
	for _, name := range []string{"Proxy-Require", "Proxy-Authorization"} {
		for _, hd := range req.GetHeaders(name) {
			w(hd.Value())
		}
	}
	for _, hd := range req.GetHeaders("Route") {
		if r, ok := hd.(*sip.RouteHeader); ok && p.id.isSelfURI(&r.Address) {
			if r.Address.UriParams.Has(altParam) {
				// Sent here as an alternate of the home node: a
				// request this node gave the home node, and now serves
				// itself, spirals (it may be its own alternate).
				w(altParam)
			}
			continue
		}
		w(hd.Value())
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

// newBranch returns a unique Via branch carrying loopHash.
func (p *Proxy) newBranch(loopHash string) string {
	n := p.branchSeq.Add(1)
	return branchPrefix + loopHash + "." + p.instance + strconv.FormatUint(n, 36)
}

// ackBranch is the branch for a statelessly forwarded ACK: derived from
// the incoming branch so that a retransmitted ACK gets the same one.
func (p *Proxy) ackBranch(loopHash, inBranch string) string {
	h := fnv.New64a()
	h.Write([]byte(inBranch))
	return branchPrefix + loopHash + ".a" + strconv.FormatUint(h.Sum64(), 36)
}
