package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/sip/auth"
	"github.com/dsn-ims/dsn/sip/registrar"
)

// CallPolicy says who may send out-of-dialog requests (calls, MESSAGE,
// SUBSCRIBE...) to the DSN's subscribers (the -call-policy flag). Trusted
// peers (Deps.Trusted) and other DSN nodes (a valid DSN-Node-Auth marker)
// are never subject to it.
type CallPolicy string

const (
	// PolicyAccept lets anyone call a DSN user, as a terminating IMS
	// network takes calls from any peer. Requests that leave the DSN
	// still need a trusted source, a DSN node or Digest (see Relay).
	PolicyAccept CallPolicy = "accept"
	// PolicyChallenge answers an untrusted, unauthenticated caller 407
	// (Proxy Authentication Required, RFC 3261 section 22.3); it must
	// authenticate with Digest credentials of the domain (Deps.Callers).
	PolicyChallenge CallPolicy = "challenge"
	// PolicyReject answers untrusted callers 403 without a challenge:
	// only trusted peers (e.g. the IMS CSCF) and DSN nodes may call.
	PolicyReject CallPolicy = "reject"
)

// ParseCallPolicy parses the -call-policy flag value.
func ParseCallPolicy(s string) (CallPolicy, error) {
	switch p := CallPolicy(strings.ToLower(strings.TrimSpace(s))); p {
	case PolicyAccept, PolicyChallenge, PolicyReject:
		return p, nil
	}
	return "", fmt.Errorf("%w: call policy %q, want accept, challenge or reject", ErrInvalidConfig, s)
}

// TrustedPeers are the networks whose requests need neither Digest nor a
// node marker (-trusted), e.g. the IMS CSCFs. *auth.Trusted implements
// it. Safe for concurrent use.
type TrustedPeers interface {
	Contains(netip.Addr) bool
}

var _ TrustedPeers = (*auth.Trusted)(nil)

// Callers authenticates the sender of a request by SIP Digest (RFC 3261
// section 22.3): it returns the caller's identity, or the answer to send
// (407 with Proxy-Authenticate challenges, stale=true for an expired or
// replayed nonce; 400 for malformed credentials). *auth.Digest implements
// it. It must be safe for concurrent use and must not block on I/O.
type Callers interface {
	AuthenticateCaller(ctx context.Context, req *sip.Request, src registrar.Source) (identity string, rej *registrar.Rejection)
}

var _ Callers = (*auth.Digest)(nil)

// caller is what the proxy knows about who sent a request: its source is
// trusted, it is another DSN node (its marker verified), or Digest
// authenticated it (evaluated only when a rule needs it, once).
type caller struct {
	trusted bool
	node    bool
	authed  bool   // authenticate ran
	user    string // the Digest identity, if authentication succeeded
	rej     *rejection
}

// standing evaluates who sent the request: the trusted set and the node
// marker (on the request as received, before Route pre-processing
// changes it). It removes the marker from req.
func (p *Proxy) standing(req *sip.Request, src registrar.Source) *caller {
	c := &caller{trusted: p.deps.Trusted != nil && !src.IsZero() && p.deps.Trusted.Contains(src.Addr.Addr())}
	if req.GetHeader(NodeAuthHeader) != nil {
		if p.deps.NodeAuth != nil {
			err := p.deps.NodeAuth.verify(req, p.clock.Now(), p.cfg.NodeAuthWindow)
			c.node = err == nil
			if err != nil {
				p.log.Info("node marker refused; request treated as from an untrusted source",
					zap.String("method", string(req.Method)), zap.Stringer("src", src), zap.Error(err))
			}
		}
		for req.RemoveHeader(NodeAuthHeader) {
		}
	}
	return c
}

// authenticate runs Digest on the caller once; it reports whether the
// caller is an authenticated user, and otherwise sets c.rej.
func (p *Proxy) authenticate(ctx context.Context, in routeInput) bool {
	c := in.who
	if c.authed {
		return c.user != ""
	}
	c.authed = true
	req := in.orig
	if req == nil {
		req = in.req
	}
	id, rej := p.deps.Callers.AuthenticateCaller(ctx, req, in.src)
	if rej != nil {
		c.rej = &rejection{code: rej.Code, reason: rej.Reason, headers: rej.Headers}
		return false
	}
	c.user = id
	return true
}

// admitCall applies the call policy to an out-of-dialog request for a
// DSN subscriber. It returns nil when the request may go on, else the
// answer: 407 (challenge), 400 (malformed credentials) or 403.
func (p *Proxy) admitCall(ctx context.Context, in routeInput) *rejection {
	c := in.who
	if in.inDialog || p.cfg.CallPolicy == PolicyAccept {
		return nil
	}
	if c == nil {
		return reject(403, "Forbidden") // no standing evaluated: fail closed
	}
	if c.trusted || c.node {
		return nil
	}
	switch p.cfg.CallPolicy {
	case PolicyChallenge:
		if p.authenticate(ctx, in) {
			return nil
		}
		return c.rej
	}
	return reject(403, "Forbidden (calls from untrusted sources refused)")
}

// admitRelay applies the relay rule to a request that this node would
// send out of the DSN (to the IMS side, an external domain, a preloaded
// Route): only trusted peers, other DSN nodes and Digest-authenticated
// users may make the node relay. Others are challenged (407) when the
// node has credentials to check and the policy is not reject, else
// refused (403), before any DNS look-up is made for them.
func (p *Proxy) admitRelay(ctx context.Context, in routeInput) *rejection {
	c := in.who
	if c == nil {
		return reject(403, "Forbidden") // no standing evaluated: fail closed
	}
	if c.trusted || c.node {
		return nil
	}
	if p.deps.Callers != nil && p.cfg.CallPolicy != PolicyReject {
		if !in.inDialog {
			if p.authenticate(ctx, in) {
				return nil
			}
			return c.rej
		}
		// An in-dialog request without a valid Record-Route token: the
		// credentials it carries are checked, but it is not challenged.
		if hasProxyAuthz(in) && p.authenticate(ctx, in) {
			return nil
		}
	}
	return reject(403, "Forbidden (relay refused)")
}

// hasProxyAuthz reports whether the request as received carries
// Proxy-Authorization.
func hasProxyAuthz(in routeInput) bool {
	req := in.orig
	if req == nil {
		req = in.req
	}
	return req.GetHeader("Proxy-Authorization") != nil
}

// refused is the decision for a request the policy stops.
func refused(rej *rejection) decision {
	return decision{kind: RoutePolicy, rej: rej}
}

// stripCredentials removes the Proxy-Authorization values of this
// node's realm (the DSN domain) from a request about to be forwarded:
// they were meant for this node (RFC 3261 section 22.3), and neither
// another DSN node (which trusts the node marker) nor anything outside
// the DSN has a use for them.
func (p *Proxy) stripCredentials(req *sip.Request) {
	hs := req.GetHeaders("Proxy-Authorization")
	if len(hs) == 0 {
		return
	}
	var keep []sip.Header
	for _, h := range hs {
		if c, err := auth.ParseAuthorization(h.Value()); err == nil && strings.EqualFold(c.Realm, p.cfg.Domain) {
			continue
		}
		keep = append(keep, sip.HeaderClone(h))
	}
	if len(keep) == len(hs) {
		return
	}
	for req.RemoveHeader("Proxy-Authorization") {
	}
	for _, h := range keep {
		req.AppendHeader(h)
	}
}
