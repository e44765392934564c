package proxy

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dsn-ims/dsn/sip/registrar"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// allowMethods is the Allow header of this node's answers.
var allowMethods = []sip.RequestMethod{
	sip.INVITE, sip.ACK, sip.CANCEL, sip.BYE, sip.OPTIONS, sip.MESSAGE, sip.SUBSCRIBE,
	sip.NOTIFY, sip.UPDATE, sip.INFO, sip.PRACK, sip.REFER,
}

// knownMethod reports whether this node implements method m (RFC 3261
// 8.2.1: 501 for others addressed to it).
func knownMethod(m sip.RequestMethod) bool {
	return slices.Contains(allowMethods, m) || m == sip.REGISTER || m == sip.PUBLISH
}

// Proxy is the request router and stateful proxy of a DSN service node.
// Create it with New and attach it to a sipgo server with Register. Safe
// for concurrent use.
type Proxy struct {
	cfg      Config
	deps     Deps
	id       identity
	log      *zap.Logger
	clock    Clock
	metrics  Metrics
	instance string // random per Proxy; makes Via branches unique
	taps     *tapTable
	gate     *ackGate

	branchSeq atomic.Uint64
	inFlight  atomic.Int64

	mu     sync.Mutex // guards the fields set by Register
	client *sipgo.Client
	tp     *sip.TransportLayer
	laddr  sip.Addr // local UDP listener to send from; zero: sipgo picks
}

// New returns a Proxy. deps.Locator and deps.Bindings are required.
func New(cfg Config, deps Deps) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Locator == nil || deps.Bindings == nil {
		return nil, fmt.Errorf("%w: Deps.Locator and Deps.Bindings are required", ErrInvalidConfig)
	}
	if cfg.CallPolicy == PolicyChallenge && deps.Callers == nil {
		return nil, fmt.Errorf("%w: call policy challenge needs Deps.Callers (Digest credentials to check)", ErrInvalidConfig)
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Clock == nil {
		deps.Clock = SystemClock{}
	}
	if deps.Metrics == nil {
		deps.Metrics = nopMetrics{}
	}
	if deps.Rand == nil {
		var seed [16]byte
		if _, err := crand.Read(seed[:]); err != nil {
			return nil, fmt.Errorf("proxy: seed random source: %w", err)
		}
		deps.Rand = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	p := &Proxy{
		cfg:      cfg,
		deps:     deps,
		id:       newIdentity(cfg),
		log:      deps.Logger.Named("proxy"),
		clock:    deps.Clock,
		metrics:  deps.Metrics,
		instance: strconv.FormatUint(deps.Rand.Uint64()>>16, 36) + "-",
		taps:     newTapTable(),
		gate:     newAckGate(deps.Clock, cfg.AckGateTTL),
	}
	p.cfg.Aliases = append([]string(nil), cfg.Aliases...)
	if cfg.ListenUDP != "" {
		ap := netip.MustParseAddrPort(cfg.ListenUDP) // checked by Validate
		p.laddr = sip.Addr{IP: net.IP(ap.Addr().AsSlice()), Port: int(ap.Port())}
	}
	return p, nil
}

// Register installs the proxy's handlers on srv: INVITE, ACK, CANCEL, BYE,
// OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY, UPDATE, INFO, PRACK, REFER, PUBLISH
// and unknown methods are routed by the proxy, REGISTER goes to
// Deps.RegisterHandler (405 without one). It also installs the response
// tap on srv's transport layer and sends through srv's user agent. Call it
// once, before srv serves: sipgo does not guard its handler tables.
func (p *Proxy) Register(srv *sipgo.Server) error {
	if srv == nil {
		return fmt.Errorf("%w: nil server", ErrInvalidConfig)
	}
	client, err := sipgo.NewClient(srv.UserAgent)
	if err != nil {
		return fmt.Errorf("proxy: sip client: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		return ErrRegistered
	}
	p.client, p.tp = client, srv.TransportLayer()
	for _, m := range []sip.RequestMethod{
		sip.INVITE, sip.BYE, sip.OPTIONS, sip.MESSAGE, sip.SUBSCRIBE, sip.NOTIFY,
		sip.UPDATE, sip.INFO, sip.PRACK, sip.REFER, sip.PUBLISH,
	} {
		srv.OnRequest(m, p.serveRequest)
	}
	srv.OnNoRoute(p.serveRequest)
	srv.OnAck(p.serveAck)
	srv.OnCancel(p.serveCancel)
	if p.deps.RegisterHandler != nil {
		srv.OnRegister(p.deps.RegisterHandler)
	} else {
		srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
			p.respond(req, tx, reject(405, "Method Not Allowed", p.allowHeader()))
		})
	}
	p.tp.OnMessage(p.tap)
	return nil
}

// InFlight is the number of requests the proxy is handling now.
func (p *Proxy) InFlight() int { return int(p.inFlight.Load()) }

// Config returns the configuration the proxy runs with.
func (p *Proxy) Config() Config {
	c := p.cfg
	c.Aliases = append([]string(nil), p.cfg.Aliases...)
	return c
}

func (p *Proxy) sender() (*sipgo.Client, *sip.TransportLayer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.client, p.tp
}

// serveRequest handles every request except ACK, CANCEL and REGISTER.
func (p *Proxy) serveRequest(req *sip.Request, tx sip.ServerTransaction) {
	start := p.clock.Now()
	p.inFlight.Add(1)
	ev := Event{Method: string(req.Method), Route: RouteLocal, Mode: p.cfg.RouteMode}
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("panic while handling request", zap.Any("panic", r), zap.String("request", req.StartLine()))
			ev.Status = 500
			p.respond(req, tx, reject(500, "Server Internal Error"))
		}
		ev.Duration = p.clock.Now().Sub(start)
		p.inFlight.Add(-1)
		p.metrics.Observe(ev)
		if req.Method == sip.INVITE && ev.Status >= 300 {
			go absorbAck(tx)
		}
	}()

	if rej := validate(req); rej != nil {
		ev.Status = p.respond(req, tx, rej)
		return
	}
	if req.Method == sip.INVITE {
		// RFC 3261 16.2: a stateful proxy answers 100 at once. sipgo sends
		// it to the address Via names, with received/rport (RFC 3581).
		if err := tx.Respond(sip.NewResponseFromRequest(req, 100, "Trying", nil)); err != nil {
			p.log.Debug("sending 100 failed", zap.Error(err))
		}
	}
	src := registrar.SourceOf(req)
	loop := p.loopHash(req)
	work := p.baseCopy(req, src)
	in := p.preprocess(work, src)
	in.orig = req
	if req.Method == sip.OPTIONS && work.Route() == nil && p.id.isSelfURI(&work.Recipient) {
		// A keepalive or health probe for this node: answered even at
		// Max-Forwards 0 (RFC 3261 16.3 item 3).
		ev.Status = p.respond(req, tx, nil)
		return
	}
	if rej := p.checkHops(req, loop); rej != nil {
		ev.Status = p.respond(req, tx, rej)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.LookupTimeout)
	if in.inDialog {
		if p.gate.wait(ctx, dialogKey(req), p.cfg.AckWait) {
			p.log.Debug("in-dialog request went on without the dialog's ACK", zap.String("method", string(req.Method)))
		}
	}
	d := p.decide(ctx, in)
	cancel()
	ev.Route = d.kind
	switch {
	case d.rej != nil:
		ev.Status = p.respond(req, tx, d.rej)
	case d.options200:
		ev.Status = p.respond(req, tx, nil)
	case d.redirect != nil:
		ev.Status = p.respond(req, tx, &rejection{code: 302, reason: "Moved Temporarily",
			headers: []sip.Header{&sip.ContactHeader{Address: *d.redirect}}})
	default:
		r := p.runCall(req, tx, work, d, loop, in.inDialog)
		ev.Status, ev.Cancel, ev.Failovers = r.status, r.cancelled, r.failovers
	}
}

// absorbAck takes the ACK of a non-2xx final response to an INVITE from
// its server transaction, which absorbs it (RFC 3261 17.2.1). sipgo hands
// that ACK to the transaction user and, when none is reading, keeps a
// goroutine for it until the transaction ends (Timer I, 5 s over UDP): at
// 2,000 redirects a second that was 10,000 goroutines, and the overload
// gate shed for it. This goroutine lives until the ACK (a round trip).
func absorbAck(tx sip.ServerTransaction) {
	select {
	case <-tx.Acks():
	case <-tx.Done():
	}
}

// respond answers req with rej, or with 200 + Allow/Accept/Supported when
// rej is nil (OPTIONS to this node). It returns the status sent.
func (p *Proxy) respond(req *sip.Request, tx sip.ServerTransaction, rej *rejection) int {
	if rej == nil {
		rej = reject(200, "OK", p.allowHeader(),
			sip.NewHeader("Accept", "application/sdp"),
			sip.NewHeader("Supported", "path"))
	}
	res := sip.NewResponseFromRequest(req, rej.code, rej.reason, nil)
	for _, h := range rej.headers {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		p.log.Debug("sending response failed", zap.Int("code", rej.code), zap.Error(err))
	}
	return rej.code
}

func (p *Proxy) allowHeader() sip.Header {
	names := make([]string, 0, len(allowMethods)+1)
	for _, m := range allowMethods {
		names = append(names, string(m))
	}
	if p.deps.RegisterHandler != nil {
		names = append(names, string(sip.REGISTER))
	}
	return sip.NewHeader("Allow", strings.Join(names, ", "))
}

// serveCancel answers a CANCEL that matched no server transaction (sipgo
// itself answers 200 to one that matches and tells the INVITE's handler
// through OnCancel): RFC 3261 16.10, 481.
func (p *Proxy) serveCancel(req *sip.Request, tx sip.ServerTransaction) {
	if rej := validate(req); rej != nil {
		p.respond(req, tx, rej)
		return
	}
	p.respond(req, tx, reject(481, "Call/Transaction Does Not Exist"))
}

// baseCopy is the template every forwarded copy of req starts from (RFC
// 3261 16.6 steps 1 and 3, and 18.2.1): a copy with Max-Forwards
// decremented (or set), and the sender's Via completed with received and
// rport so responses find their way back.
func (p *Proxy) baseCopy(req *sip.Request, src registrar.Source) *sip.Request {
	work := req.Clone()
	if cs := req.CSeq(); cs != nil && cs.MethodName != req.Method && strings.EqualFold(string(cs.MethodName), string(req.Method)) {
		// sipgo upper-cased the method of the start line; methods are
		// case-sensitive (RFC 3261 7.1): forward it as the CSeq spells it.
		work.Method = cs.MethodName
	}
	mf := sip.MaxForwardsHeader(p.cfg.MaxForwards)
	if cur := req.MaxForwards(); cur != nil {
		mf = sip.MaxForwardsHeader(cur.Val())
		if mf > 0 {
			mf--
		}
		work.ReplaceHeader(&mf) // a new header: sipgo's clone shares this one
	} else {
		work.AppendHeader(&mf)
	}
	if v := work.Via(); v != nil && !src.IsZero() {
		ip := src.Addr.Addr().String()
		if rp, ok := v.Params.Get("rport"); ok && rp == "" {
			v.Params.Add("rport", strconv.Itoa(int(src.Addr.Port())))
			v.Params.Add("received", ip)
		} else if normHost(v.Host) != normHost(ip) {
			v.Params.Add("received", ip)
		}
	}
	return work
}
