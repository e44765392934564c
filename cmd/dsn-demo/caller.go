package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/dsn-ims/dsn/dnsreport"
)

// callerConfig tunes the CSCF-like caller.
type callerConfig struct {
	// NoResponse is how long the caller waits for any response (100 Trying
	// included) from one target before it counts the target as dead and,
	// with Failover, tries the next one (RFC 3263 section 4.3).
	NoResponse time.Duration
	// Setup bounds the wait for a final response after the target
	// answered; the caller then sends CANCEL.
	Setup time.Duration
	// Bye bounds the BYE transaction.
	Bye time.Duration
	// Failover: try the next SRV target when one sends nothing back.
	Failover bool
}

// caller places calls the way an IMS CSCF does: ENUM for the number, RFC
// 3263 for the SIP URI's domain, INVITE to the target found, ACK and BYE
// along the dialog's route. Each call resolves afresh (the resolver does
// not cache), so calls see DNS changes at once.
type caller struct {
	*endpoint
	cfg callerConfig
	res *dnsreport.DNSResolver
}

func newCaller(cfg callerConfig, res *dnsreport.DNSResolver) (*caller, error) {
	ep, err := newEndpoint("cscf")
	if err != nil {
		return nil, err
	}
	c := &caller{endpoint: ep, cfg: cfg, res: res}
	ep.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	if err := ep.serve(); err != nil {
		ep.close()
		return nil, err
	}
	return c, nil
}

// attempt is one INVITE sent to one target.
type attempt struct {
	Target netip.AddrPort
	// Silent: the target sent nothing back within NoResponse.
	Silent bool
	Code   int // final response code, 0 if none
	CallID string
}

// call is one call and what became of it.
type call struct {
	Callee  *phone
	Edge    string // the callee's edge node when the call started
	Started time.Time
	URI     string // what ENUM gave
	// Attempts lists the targets tried, in order.
	Attempts []attempt
	// Via is the node that took the INVITE (the target that answered).
	Via string
	// CallID is the Call-ID of the last INVITE sent, to find it in logs.
	CallID string
	OK     bool
	// Setup is the time from the start of the call (ENUM and RFC 3263
	// included) to the 200.
	Setup time.Duration
	// Err says what failed (nil when OK).
	Err error
}

// targetsFor resolves the callee number: ENUM to a SIP URI, then RFC 3263
// to UDP targets (each address once, in the resolver's order).
func (c *caller) targetsFor(ctx context.Context, number string) (string, []netip.AddrPort, error) {
	uri, err := c.res.ENUM(ctx, number)
	if err != nil {
		return "", nil, fmt.Errorf("ENUM %s: %w", number, err)
	}
	ts, err := c.res.Locate(ctx, uri)
	if err != nil {
		return uri, nil, fmt.Errorf("RFC 3263 for %s: %w", uri, err)
	}
	var out []netip.AddrPort
	seen := map[netip.AddrPort]bool{}
	for _, t := range ts {
		if t.Transport == "udp" && !seen[t.Addr] {
			seen[t.Addr] = true
			out = append(out, t.Addr)
		}
	}
	if len(out) == 0 {
		return uri, nil, fmt.Errorf("RFC 3263 for %s: no UDP target in %v", uri, ts)
	}
	return uri, out, nil
}

// place makes one call to the callee and reports how it went; name maps a
// target address to a node name for the report.
func (c *caller) place(ctx context.Context, callee *phone, name func(netip.AddrPort) string) *call {
	cl := &call{Callee: callee, Started: time.Now()}
	if e := callee.Edge(); e != nil {
		cl.Edge = e.Name
	}
	uri, targets, err := c.targetsFor(ctx, callee.Number)
	cl.URI = uri
	if err != nil {
		cl.Err = err
		return cl
	}
	var ruri sip.Uri
	if err := sip.ParseUri(uri, &ruri); err != nil {
		cl.Err = fmt.Errorf("ENUM gave %q: %w", uri, err)
		return cl
	}
	for i, t := range targets {
		if i > 0 && !c.cfg.Failover {
			break
		}
		at, d, err := c.invite(ctx, ruri, t)
		cl.Attempts = append(cl.Attempts, at)
		cl.CallID = at.CallID
		if at.Silent {
			cl.Err = fmt.Errorf("no response from %s (%s) within %s", name(t), t, c.cfg.NoResponse)
			continue
		}
		cl.Via = name(t)
		if err != nil {
			cl.Err = err
			if at.Code == 503 {
				continue // RFC 3263 4.3: a 503 also sends the caller to the next target
			}
			return cl
		}
		cl.Setup = time.Since(cl.Started)
		if err := d.finish(ctx, c, callee); err != nil {
			cl.Err = err
			return cl
		}
		cl.OK, cl.Err = true, nil
		return cl
	}
	return cl
}

// dialog is an answered INVITE.
type dialog struct {
	invite *sip.Request
	ok     *sip.Response
}

// invite sends one INVITE to target and waits for its outcome: silence
// (no response within NoResponse), a final response, or no final response
// within Setup after the first provisional (then CANCEL).
func (c *caller) invite(ctx context.Context, ruri sip.Uri, target netip.AddrPort) (attempt, *dialog, error) {
	at := attempt{Target: target}
	callID := "demo-" + sip.GenerateTagN(16)
	at.CallID = callID
	req := request(sip.INVITE, ruri, sip.Uri{Scheme: "sip", User: "cscf", Host: "ims.demo"}, sip.GenerateTagN(10),
		sip.Uri{Scheme: "sip", User: ruri.User, Host: ruri.Host}, callID, 1,
		&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "cscf", Host: "127.0.0.1", Port: c.port}}, target.String())
	tx, err := c.client.TransactionRequest(ctx, req)
	if err != nil {
		return at, nil, fmt.Errorf("send INVITE to %s: %w", target, err)
	}
	defer tx.Terminate()
	silent := time.NewTimer(c.cfg.NoResponse)
	defer silent.Stop()
	var setup <-chan time.Time
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				if setup == nil {
					silent.Stop()
					st := time.NewTimer(c.cfg.Setup)
					defer st.Stop()
					setup = st.C
				}
				continue
			}
			at.Code = res.StatusCode
			if !res.IsSuccess() {
				return at, nil, fmt.Errorf("INVITE answered %d %s", res.StatusCode, res.Reason)
			}
			return at, &dialog{invite: req, ok: res}, nil
		case <-tx.Done():
			return at, nil, fmt.Errorf("INVITE to %s: %w", target, tx.Err())
		case <-silent.C:
			at.Silent = true
			return at, nil, nil
		case <-setup:
			c.cancel(ctx, req, tx)
			return at, nil, fmt.Errorf("no final response within %s of the first provisional (CANCEL sent)", c.cfg.Setup)
		case <-ctx.Done():
			return at, nil, ctx.Err()
		}
	}
}

// cancel sends CANCEL for the INVITE and waits briefly for the INVITE's
// final response (487), which the transaction then ACKs.
func (c *caller) cancel(ctx context.Context, inv *sip.Request, tx sip.ClientTransaction) {
	req := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	req.AppendHeader(sip.HeaderClone(inv.Via()))
	req.AppendHeader(sip.HeaderClone(inv.From()))
	req.AppendHeader(sip.HeaderClone(inv.To()))
	req.AppendHeader(sip.HeaderClone(inv.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.SetTransport(inv.Transport())
	req.SetDestination(inv.Destination())
	req.Laddr = inv.Laddr
	cctx, stop := context.WithTimeout(ctx, time.Second)
	defer stop()
	prebuilt := func(*sipgo.Client, *sip.Request) error { return nil }
	if _, err := c.client.Do(cctx, req, prebuilt); err != nil {
		return
	}
	for {
		select {
		case res := <-tx.Responses():
			if !res.IsProvisional() {
				return
			}
		case <-tx.Done():
			return
		case <-cctx.Done():
			return
		}
	}
}

// finish checks that the callee answered, then sends ACK and BYE along
// the dialog's route set (the Record-Routes of the 200, reversed).
func (d *dialog) finish(ctx context.Context, c *caller, callee *phone) error {
	if ct := d.ok.Contact(); ct == nil || ct.Address.User != callee.Number {
		return fmt.Errorf("200 OK from the wrong party (Contact %v, want %s)", d.ok.Contact(), callee.Number)
	}
	ack, err := d.inDialog(sip.ACK)
	if err != nil {
		return err
	}
	if err := c.client.WriteRequest(ack); err != nil {
		return fmt.Errorf("ACK: %w", err)
	}
	bye, err := d.inDialog(sip.BYE)
	if err != nil {
		return err
	}
	bctx, cancel := context.WithTimeout(ctx, c.cfg.Bye)
	defer cancel()
	res, err := c.client.Do(bctx, bye)
	if err != nil {
		return fmt.Errorf("BYE: %w", err)
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("BYE answered %d %s", res.StatusCode, res.Reason)
	}
	return nil
}

// inDialog builds ACK or BYE: Request-URI = the 200's Contact, Route =
// its Record-Route reversed (RFC 3261 12.2.1.1).
func (d *dialog) inDialog(method sip.RequestMethod) (*sip.Request, error) {
	target := d.invite.Recipient
	if ct := d.ok.Contact(); ct != nil {
		target = ct.Address
	}
	req := sip.NewRequest(method, *target.Clone())
	rrs := d.ok.GetHeaders("Record-Route")
	for i := len(rrs) - 1; i >= 0; i-- {
		rr, ok := rrs[i].(*sip.RecordRouteHeader)
		if !ok {
			return nil, fmt.Errorf("unparsed Record-Route %q", rrs[i].Value())
		}
		req.AppendHeader(&sip.RouteHeader{Address: *rr.Address.Clone()})
	}
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.HeaderClone(d.invite.From()))
	req.AppendHeader(sip.HeaderClone(d.ok.To()))
	req.AppendHeader(sip.HeaderClone(d.invite.CallID()))
	seq := d.invite.CSeq().SeqNo
	if method != sip.ACK {
		seq++
	}
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	next := target
	if r := req.Route(); r != nil {
		next = r.Address
	}
	tr := "UDP"
	if v, ok := next.UriParams.Get("transport"); ok && v != "" {
		tr = strings.ToUpper(v)
	}
	req.SetTransport(tr)
	port := next.Port
	if port == 0 {
		port = 5060
	}
	req.SetDestination(fmt.Sprintf("%s:%d", next.Host, port))
	return req, nil
}

// batch places n calls to random phones, at most par at a time, and
// returns them in the order they were started.
func (c *caller) batch(ctx context.Context, n, par int, pickCallee func() *phone, name func(netip.AddrPort) string) []*call {
	out := make([]*call, n)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			out[i] = &call{Err: ctx.Err()}
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = c.place(ctx, pickCallee(), name)
		}()
	}
	wg.Wait()
	return out
}

// allSilent tells whether a call failed only because every target tried
// was silent.
func (cl *call) allSilent() bool {
	if cl.OK || len(cl.Attempts) == 0 {
		return false
	}
	for _, a := range cl.Attempts {
		if !a.Silent {
			return false
		}
	}
	return true
}
