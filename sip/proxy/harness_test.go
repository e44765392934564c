package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/sip/registrar"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// wireEntry is one message as it arrived at a test endpoint's socket.
type wireEntry struct {
	at     time.Time
	req    bool
	method sip.RequestMethod // request method, or the CSeq method of a response
	code   int
	callID string
	msg    sip.Message
}

func (e wireEntry) String() string {
	if e.req {
		return string(e.method)
	}
	return strconv.Itoa(e.code) + "/" + string(e.method)
}

// wireLog records, in arrival order, the messages a sipgo user agent's
// transport reads, through TransportLayer.OnMessage (which runs on the
// read goroutine, before sipgo's per-message goroutines).
type wireLog struct {
	off     atomic.Bool // benchmarks: record nothing
	mu      sync.Mutex
	entries []wireEntry
	changed chan struct{}
}

func newWireLog() *wireLog { return &wireLog{changed: make(chan struct{})} }

func (w *wireLog) record(m sip.Message) {
	if w.off.Load() {
		return
	}
	e := wireEntry{at: time.Now(), msg: m}
	if c := m.CallID(); c != nil {
		e.callID = c.Value()
	}
	switch m := m.(type) {
	case *sip.Request:
		e.req, e.method = true, m.Method
	case *sip.Response:
		e.code = m.StatusCode
		if cs := m.CSeq(); cs != nil {
			e.method = cs.MethodName
		}
	}
	w.mu.Lock()
	w.entries = append(w.entries, e)
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// call returns the entries of one Call-ID.
func (w *wireLog) call(callID string) []wireEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []wireEntry
	for _, e := range w.entries {
		if e.callID == callID {
			out = append(out, e)
		}
	}
	return out
}

func (w *wireLog) all() []wireEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]wireEntry(nil), w.entries...)
}

// waitFor blocks until pred holds for the entries of callID ("" = all).
func (w *wireLog) waitFor(t testing.TB, callID string, d time.Duration, what string, pred func([]wireEntry) bool) []wireEntry {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		ch := w.changed
		w.mu.Unlock()
		var es []wireEntry
		if callID == "" {
			es = w.all()
		} else {
			es = w.call(callID)
		}
		if pred(es) {
			return es
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; saw %v", what, es)
			return nil
		}
	}
}

// has reports whether es holds a request of method m (code 0) or a
// response with code to method m.
func has(es []wireEntry, m sip.RequestMethod, code int) bool {
	return index(es, m, code) >= 0
}

func index(es []wireEntry, m sip.RequestMethod, code int) int {
	for i, e := range es {
		if e.method == m && e.code == code && e.req == (code == 0) {
			return i
		}
	}
	return -1
}

// endpoint is a sipgo user agent serving UDP on 127.0.0.1 with a wire log.
type endpoint struct {
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client // UDP, from the listening socket
	tcp    *sipgo.Client // TCP, from an ephemeral port
	conn   net.PacketConn
	tl     net.Listener // TCP on the same port
	addr   string
	log    *wireLog
}

// listenPair binds UDP and TCP on the same loopback port.
func listenPair(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for i := 0; i < 20; i++ {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tl, err := net.Listen("tcp4", conn.LocalAddr().String())
		if err == nil {
			return conn, tl
		}
		conn.Close()
	}
	t.Fatal("no port free for both UDP and TCP")
	return nil, nil
}

// newEndpoint creates the user agent and binds the socket; install
// handlers on ep.srv, then call serve.
func newEndpoint(t testing.TB, name string, opts ...sipgo.UserAgentOption) *endpoint {
	t.Helper()
	conn, tl := listenPair(t)
	addr := conn.LocalAddr().String()
	ua, err := sipgo.NewUA(append([]sipgo.UserAgentOption{sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname("127.0.0.1"),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerUnhandledResponseHandler(func(*sip.Response) {}))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientConnectionAddr(addr))
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	ep := &endpoint{ua: ua, srv: srv, client: client, tcp: tcp, conn: conn, tl: tl, addr: addr, log: newWireLog()}
	ua.TransportLayer().OnMessage(ep.log.record)
	return ep
}

// serve starts reading the socket; the endpoint stops at test cleanup.
func (ep *endpoint) serve(t testing.TB) {
	t.Helper()
	served := make(chan error, 2)
	go func() { served <- ep.srv.ServeUDP(ep.conn) }()
	go func() { served <- ep.srv.ServeTCP(ep.tl) }()
	// Ready when sipgo has put the listener into its connection pool
	// (ServeUDP does that before its first read).
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := ep.ua.TransportLayer().GetConnection("udp", ep.addr)
		if err == nil {
			_, _ = c.TryClose()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("UDP listener %s not serving", ep.addr)
		}
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(func() {
		_ = ep.ua.Close()
		_ = ep.conn.Close()
		_ = ep.tl.Close()
		for i := 0; i < 2; i++ {
			if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
				t.Errorf("serve: %v", err)
			}
		}
	})
}

// testNode is a Proxy on its own endpoint.
type testNode struct {
	*endpoint
	p *Proxy
}

type nodeOpts struct {
	mode     RouteMode
	cfg      func(*Config)
	bindings Bindings
	resolver *fakeResolver
	metrics  Metrics
	register sipgo.RequestHandler
	// untrusted: 127.0.0.1 (every test peer) is not a trusted source;
	// nodes then know each other by their markers only.
	untrusted bool
	callers   Callers
	// nodeAuth replaces the ring's shared testNodeAuth (nil keeps it).
	nodeAuth *NodeAuth
	// dials installs a DialGuard on the node's user agent.
	dials bool
}

// testClusterKey is the cluster key of the test nodes' markers.
var testClusterKey = []byte("0123456789abcdef0123456789abcdef")

func newTestNodeAuth(t testing.TB, key []byte) *NodeAuth {
	t.Helper()
	a, err := NewNodeAuth([][]byte{key})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// trustedSet is a TrustedPeers of single addresses.
type trustedSet []netip.Addr

func (s trustedSet) Contains(a netip.Addr) bool { return slices.Contains(s, a.Unmap()) }

var loopbackTrusted = trustedSet{netip.MustParseAddr("127.0.0.1")}

func testConfig(addr string) Config {
	cfg := DefaultConfig()
	cfg.Domain = testDomain
	cfg.Advertise = addr
	cfg.ListenUDP = addr
	cfg.FailoverTimeout = 300 * time.Millisecond
	cfg.AckWait = 500 * time.Millisecond
	cfg.LookupTimeout = 2 * time.Second
	// The tests of routing place calls from untrusted callers to DSN
	// users and from the trusted 127.0.0.1 out of the DSN; the policy
	// tests set their own.
	cfg.CallPolicy = PolicyAccept
	return cfg
}

func startNode(t testing.TB, r *ring, o nodeOpts) *testNode {
	t.Helper()
	var guard *DialGuard
	var uaOpts []sipgo.UserAgentOption
	if o.dials {
		guard = NewDialGuard(nil, 2*time.Second, 2*time.Second)
		uaOpts = guard.UserAgentOptions()
	}
	ep := newEndpoint(t, "dsn-node", uaOpts...)
	cfg := testConfig(ep.addr)
	if o.mode != "" {
		cfg.RouteMode = o.mode
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	b := o.bindings
	if b == nil {
		b = newFakeBindings()
	}
	deps := Deps{Locator: r.locator(ep.addr), Bindings: b, Logger: testLogger(t), Metrics: o.metrics, RegisterHandler: o.register,
		Trusted: loopbackTrusted, Callers: o.callers, NodeAuth: o.nodeAuth, Dials: guard}
	if o.untrusted {
		deps.Trusted = nil
	}
	if deps.NodeAuth == nil {
		deps.NodeAuth = newTestNodeAuth(t, testClusterKey)
	}
	if o.resolver != nil {
		deps.Resolver = o.resolver
	}
	p, err := New(cfg, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := p.Register(ep.srv); err != nil {
		t.Fatalf("Register: %v", err)
	}
	ep.serve(t)
	return &testNode{endpoint: ep, p: p}
}

// uasBehavior answers one INVITE on a test UAS.
type uasBehavior func(u *testUAS, req *sip.Request, tx sip.ServerTransaction)

// testUAS is a phone: it answers INVITEs (by default 180 then 200), and
// BYE with 200.
type testUAS struct {
	*endpoint
	user    string
	answer  uasBehavior
	mu      sync.Mutex
	invites map[string]chan struct{} // Call-ID -> closed when answered
}

func startUAS(t testing.TB, user string, answer uasBehavior) *testUAS {
	t.Helper()
	u := &testUAS{endpoint: newEndpoint(t, user), user: user, answer: answer}
	if u.answer == nil {
		u.answer = answerWith(200)
	}
	u.srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) { u.answer(u, req, tx) })
	u.srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	u.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	u.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	u.srv.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	u.serve(t)
	return u
}

// contact is the UAS's Contact URI.
func (u *testUAS) contact() string { return "sip:" + u.user + "@" + u.addr }

// binding is a registrar binding for the UAS.
func (u *testUAS) binding() registrar.Binding {
	return registrar.Binding{Contact: u.contact(), Q: registrar.QNone, Expires: time.Now().Add(time.Hour)}
}

// respond sends a response with a fixed To tag (one per UAS and call).
func (u *testUAS) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string) error {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if code > 100 {
		res.To().Params.Add("tag", u.user+"-tag")
	}
	if code >= 180 && code < 300 {
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: u.user, Host: "127.0.0.1", Port: portOf(u.addr)}})
	}
	return tx.Respond(res)
}

// answerWith: 180, then the final code.
func answerWith(code int) uasBehavior {
	return func(u *testUAS, req *sip.Request, tx sip.ServerTransaction) {
		_ = u.respond(req, tx, 180, "Ringing")
		_ = u.respond(req, tx, code, reasonFor(code))
	}
}

// ringUntil: 180, then wait until release is closed (then 200) or the
// caller cancels (sipgo answers 487 itself).
func ringUntil(release <-chan struct{}) uasBehavior {
	return func(u *testUAS, req *sip.Request, tx sip.ServerTransaction) {
		cancelled := make(chan struct{})
		if !tx.OnCancel(func(*sip.Request) { close(cancelled) }) {
			return
		}
		_ = u.respond(req, tx, 180, "Ringing")
		select {
		case <-release:
			_ = u.respond(req, tx, 200, "OK")
		case <-cancelled:
		case <-time.After(10 * time.Second):
			_ = u.respond(req, tx, 408, "Request Timeout")
		}
	}
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// testUAC is a caller.
type testUAC struct {
	*endpoint
	seq int
	mu  sync.Mutex
}

func startUAC(t testing.TB) *testUAC {
	t.Helper()
	u := &testUAC{endpoint: newEndpoint(t, "alice")}
	u.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	u.serve(t)
	return u
}

// outCall is a call placed by a testUAC.
type outCall struct {
	u      *testUAC
	invite *sip.Request
	tx     sip.ClientTransaction
	callID string
	final  *sip.Response
}

// request builds an out-of-dialog request from the UAC to ruri, sent to
// next (host:port).
func (u *testUAC) request(method sip.RequestMethod, ruri string, next string) *sip.Request {
	var target sip.Uri
	if err := sip.ParseUri(ruri, &target); err != nil {
		panic(err)
	}
	u.mu.Lock()
	u.seq++
	n := u.seq
	u.mu.Unlock()
	req := sip.NewRequest(method, target)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "example.net"}, Params: sip.NewParams()}
	from.Params.Add("tag", fmt.Sprintf("a%d-%s", n, sip.GenerateTagN(6)))
	req.AppendHeader(from)
	toAddr := target
	toAddr.UriParams = nil
	req.AppendHeader(&sip.ToHeader{Address: toAddr, Params: sip.NewParams()})
	cid := sip.CallIDHeader(fmt.Sprintf("call-%d-%s", n, sip.GenerateTagN(8)))
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1", Port: portOf(u.addr)}})
	req.SetTransport("UDP")
	req.SetDestination(next)
	return req
}

// invite sends an INVITE for ruri to next.
func (u *testUAC) invite(t testing.TB, ruri, next string, mod ...func(*sip.Request)) *outCall {
	t.Helper()
	req := u.request(sip.INVITE, ruri, next)
	for _, m := range mod {
		m(req)
	}
	return u.send(t, req)
}

func (u *testUAC) send(t testing.TB, req *sip.Request) *outCall {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	tx, err := u.clientFor(req).TransactionRequest(ctx, req)
	if err != nil {
		t.Fatalf("send %s: %v", req.Method, err)
	}
	return &outCall{u: u, invite: req, tx: tx, callID: req.CallID().Value()}
}

// wait returns the final response of the call's first transaction.
func (c *outCall) wait(t testing.TB) *sip.Response {
	t.Helper()
	res := waitFinalQuiet(c)
	if res == nil {
		t.Fatalf("no final response to %s: %v (wire %v)", c.invite.Method, c.tx.Err(), c.u.log.call(c.callID))
	}
	return res
}

// inDialog builds an in-dialog request (ACK or BYE) from the final 2xx:
// Request-URI = its Contact, Route = its Record-Route reversed.
func (c *outCall) inDialog(method sip.RequestMethod) *sip.Request {
	res := c.final
	target := c.invite.Recipient
	if ct := res.Contact(); ct != nil {
		target = ct.Address
	}
	req := sip.NewRequest(method, *target.Clone())
	rrs := res.GetHeaders("Record-Route")
	for i := len(rrs) - 1; i >= 0; i-- {
		rr := rrs[i].(*sip.RecordRouteHeader)
		req.AppendHeader(&sip.RouteHeader{Address: *rr.Address.Clone()})
	}
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.HeaderClone(c.invite.From()))
	req.AppendHeader(sip.HeaderClone(res.To()))
	req.AppendHeader(sip.HeaderClone(c.invite.CallID()))
	seq := c.invite.CSeq().SeqNo
	if method != sip.ACK {
		seq++
	}
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	next := target
	if r := req.Route(); r != nil {
		next = r.Address
	}
	req.SetTransport(uriTransport(&next))
	req.SetDestination(fmt.Sprintf("%s:%d", next.Host, next.Port))
	return req
}

// clientFor picks the UAC's client for a request's transport.
func (u *testUAC) clientFor(req *sip.Request) *sipgo.Client {
	if req.Transport() == "TCP" {
		return u.tcp
	}
	return u.client
}

// ack sends the ACK of the 2xx.
func (c *outCall) ack(t testing.TB) {
	t.Helper()
	ack := c.inDialog(sip.ACK)
	if err := c.u.clientFor(ack).WriteRequest(ack); err != nil {
		t.Fatalf("ACK: %v", err)
	}
}

// bye sends BYE and returns its final response.
func (c *outCall) bye(t testing.TB) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bye := c.inDialog(sip.BYE)
	res, err := c.u.clientFor(bye).Do(ctx, bye)
	if err != nil {
		t.Fatalf("BYE: %v (wire %v)", err, c.u.log.call(c.callID))
	}
	return res
}

// cancel sends CANCEL for the INVITE.
func (c *outCall) cancel(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	tx, err := c.u.client.TransactionRequest(ctx, cancelFor(c.invite), prebuilt)
	if err != nil {
		t.Fatalf("CANCEL: %v", err)
	}
	go drain(tx, nil)
}

func reasonFor(code int) string {
	switch code {
	case 200:
		return "OK"
	case 486:
		return "Busy Here"
	case 503:
		return "Service Unavailable"
	case 603:
		return "Decline"
	}
	return "Response " + strconv.Itoa(code)
}

// firstRequest waits for the first request of method in callID at a wire
// log. (The log records a message after sipgo has handed it to its
// handler goroutine, so a response to it can arrive elsewhere first.)
func firstRequest(t testing.TB, w *wireLog, callID string, m sip.RequestMethod) *sip.Request {
	t.Helper()
	es := w.waitFor(t, callID, 2*time.Second, string(m), func(es []wireEntry) bool { return has(es, m, 0) })
	return es[index(es, m, 0)].msg.(*sip.Request)
}

// testLogger logs to t while the test runs and drops what handler
// goroutines still log after it ended (zaptest would panic then).
func testLogger(t testing.TB) *zap.Logger {
	w := &guardedWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), zapcore.DebugLevel))
}

type guardedWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *guardedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
