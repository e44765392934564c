package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/dnsreport/dnsserver"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line settings.
type options struct {
	calls, phones, nodes, reps int
	domain, prefix             string
	firstIP                    string
	sipPort, clusterPort       int
	logLevel, logFile          string
	verbose                    bool
	timeout                    time.Duration
	seed                       uint64
	keepalive                  time.Duration
	cscfFailover               bool
	failover                   failoverConfig
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{failover: failoverConfig{Poll: 20 * time.Millisecond, Limit: 15 * time.Second, Settle: 500 * time.Millisecond}}
	fs := flag.NewFlagSet("dsn-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.calls, "calls", 200, "calls placed before the crash, and again after failover")
	fs.IntVar(&o.phones, "phones", 50, "SIP phones registered (1-9999)")
	fs.IntVar(&o.nodes, "nodes", 5, "dsn nodes in the ring (at least 3)")
	fs.IntVar(&o.reps, "reps", 2, "representatives published in DNS (fewer than -nodes)")
	fs.StringVar(&o.domain, "domain", "dsn.demo", "the DSN SIP `domain` (served by the embedded DNS server)")
	fs.StringVar(&o.prefix, "prefix", "+1555", "E.164 `prefix` provisioned in ENUM; phone i is <prefix>000<i in 4 digits>")
	fs.StringVar(&o.firstIP, "ip", "127.0.0.11", "loopback `address` of sn1; sn2, sn3 ... take the next ones")
	fs.IntVar(&o.sipPort, "sip-port", 5060, "SIP `port` tried on every node's address (0 or taken: a free one)")
	fs.IntVar(&o.clusterPort, "cluster-port", 7946, "cluster `port` tried on every node's address (0 or taken: a free one)")
	fs.StringVar(&o.logLevel, "log-level", "info", "`level` of the node logs (debug, info, warn, error) when shown (-v) or written (-log-file)")
	fs.StringVar(&o.logFile, "log-file", "", "write the node logs (JSON) to `file`; default: no node logs")
	fs.BoolVar(&o.verbose, "v", false, "show the node logs on stderr")
	fs.DurationVar(&o.timeout, "timeout", 50*time.Second, "give up (exit 1) after this long")
	fs.Uint64Var(&o.seed, "seed", 0, "random `seed` for the choice of nodes and callees (0: from the clock)")
	fs.DurationVar(&o.failover.CallInterval, "call-interval", 40*time.Millisecond, "pace of the calls placed during failover")
	fs.DurationVar(&o.keepalive, "keepalive", 250*time.Millisecond, "period of each phone's OPTIONS keepalive to the node it registered through")
	fs.BoolVar(&o.cscfFailover, "cscf-failover", true, "when a target sends nothing back, try the next SRV target (RFC 3263 4.3)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: dsn-demo [flags]\n\n"+
			"Runs the DSN's main job in one process on loopback: an embedded DNS server, a ring of dsn\n"+
			"nodes with representatives in DNS, ENUM, SIP phones, and calls placed as an IMS CSCF places\n"+
			"them; then crashes a representative and measures the failover while calls continue.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if o.nodes < 3 || o.nodes > 50 {
		bad("-nodes %d: want 3..50 (a representative needs a predecessor, a successor and a backup)", o.nodes)
	}
	if o.reps < 1 || o.reps >= o.nodes {
		bad("-reps %d: want 1..%d (fewer than -nodes, so a crashed one can be replaced)", o.reps, o.nodes-1)
	}
	if o.phones < 1 || o.phones > 9999 {
		bad("-phones %d: want 1..9999", o.phones)
	}
	if o.calls < 1 {
		bad("-calls %d: want at least 1", o.calls)
	}
	if ip, err := netip.ParseAddr(o.firstIP); err != nil || !ip.Is4() || !ip.IsLoopback() {
		bad("-ip %q: want an IPv4 loopback address (127.x.x.x)", o.firstIP)
	} else if last := ip.As4(); int(last[3])+o.nodes > 255 {
		bad("-ip %s: no room for %d consecutive addresses", o.firstIP, o.nodes)
	}
	if _, err := dnsreport.NormalizeE164(o.prefix); err != nil || len(o.prefix) > 9 {
		bad("-prefix %q: want a short E.164 prefix such as +1555", o.prefix)
	}
	if o.timeout <= 0 || o.failover.CallInterval <= 0 || o.keepalive <= 0 {
		bad("-timeout, -call-interval and -keepalive must be positive")
	}
	if _, err := zapcore.ParseLevel(o.logLevel); err != nil {
		bad("-log-level %q: want debug, info, warn or error", o.logLevel)
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	return o, errors.Join(errs...)
}

// openLogs returns the node logger: stderr with -v, a file with -log-file,
// else nothing. sipgo's package-level logger (a dependency's global, set
// here in cmd/ only) follows at warn level.
func openLogs(o options, stderr io.Writer) (*zap.Logger, func(), error) {
	lvl, _ := zapcore.ParseLevel(o.logLevel)
	var w io.Writer
	var enc zapcore.Encoder
	closer := func() {}
	switch {
	case o.verbose:
		ec := zap.NewDevelopmentEncoderConfig()
		enc, w = zapcore.NewConsoleEncoder(ec), stderr
	case o.logFile != "":
		f, err := os.OpenFile(o.logFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("-log-file: %w", err)
		}
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc, w, closer = zapcore.NewJSONEncoder(ec), f, func() { f.Close() }
	default:
		sip.SetDefaultLogger(slog.New(slog.DiscardHandler))
		return zap.NewNop(), closer, nil
	}
	sync := zapcore.Lock(zapcore.AddSync(w))
	sip.SetDefaultLogger(slog.New(slog.NewTextHandler(sync, &slog.HandlerOptions{Level: slog.LevelWarn})))
	return zap.New(zapcore.NewCore(enc, sync, lvl)), closer, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "dsn-demo: %v\n", err)
		return 2
	}
	log, closeLog, err := openLogs(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "dsn-demo: %v\n", err)
		return 2
	}
	defer closeLog()
	defer log.Sync()
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	d := &demo{o: o, start: time.Now(), log: log, rng: rand.New(rand.NewPCG(o.seed, o.seed^0x9e3779b97f4a7c15))}
	d.out = newPrinter(stdout, d.start)
	if !d.run(ctx) {
		return 1
	}
	return 0
}

// stepLimit bounds each wait for the fleet to converge (ring, DNS).
const stepLimit = 20 * time.Second

// demo is one run: what it started and what it found.
type demo struct {
	o     options
	start time.Time
	out   *printer
	log   *zap.Logger

	rngMu sync.Mutex
	rng   *rand.Rand

	dns    *dnsserver.Server
	fleet  *fleet
	phones *phoneBank
	caller *caller

	problems []string
}

// fail records a reason for exit status 1 and prints it.
func (d *demo) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.problems = append(d.problems, msg)
	d.out.say("PROBLEM: %s", msg)
}

// pickCallee returns a random phone.
func (d *demo) pickCallee() *phone {
	d.rngMu.Lock()
	defer d.rngMu.Unlock()
	return d.phones.phones[d.rng.IntN(len(d.phones.phones))]
}

// nodeName names the node at a SIP address.
func (d *demo) nodeName(a netip.AddrPort) string {
	if m := d.fleet.bySIP(a.String()); m != nil {
		return m.Name
	}
	return a.String()
}

// run goes through the steps; it returns whether everything worked.
func (d *demo) run(ctx context.Context) bool {
	defer d.teardown()
	if err := d.steps(ctx); err != nil {
		d.fail("%v", err)
	}
	d.shutdown(ctx)
	if len(d.problems) > 0 {
		d.out.say("result: FAILED (%d problems: %s)", len(d.problems), strings.Join(d.problems, "; "))
		return false
	}
	d.out.say("result: OK — every call worked or failed for a reason the crash explains; exit 0")
	return true
}

func (d *demo) steps(ctx context.Context) error {
	o := d.o
	d.out.say("dsn-demo: %d nodes, %d representatives, %d phones, %d calls before and after a crash (seed %d)",
		o.nodes, o.reps, o.phones, o.calls, o.seed)

	dns, key, err := startDNS(o.domain, d.log)
	if err != nil {
		return err
	}
	d.dns = dns
	d.out.say("embedded DNS server on %s: zones %s. and e164.arpa., TSIG key %s generated", dns.Addr(), o.domain, key)

	first := netip.MustParseAddr(o.firstIP)
	began := time.Now()
	f, err := startFleet(fleetConfig{Nodes: o.nodes, Reps: o.reps, Domain: o.domain, FirstIP: first,
		SIPPort: o.sipPort, ClusterPort: o.clusterPort}, dns, key, d.log)
	if err != nil {
		return err
	}
	d.fleet = f
	d.out.say("started %s (cluster key generated; each node joined through sn1)", memberList(f.members))
	rctx, cancel := context.WithTimeout(ctx, stepLimit)
	defer cancel()
	if err := waitFor(rctx, 50*time.Millisecond, "a consistent ring", f.ringConsistent); err != nil {
		return err
	}
	d.out.say("ring of %d formed after %s", o.nodes, secs(time.Since(began)))
	reps, err := d.waitReps(ctx)
	if err != nil {
		return err
	}
	d.out.say("representatives: %s (in DNS, agreed by every node, each watched by predecessor, successor and backup) after %s",
		sortedNames(reps), secs(time.Since(began)))

	rec, err := provisionENUM(ctx, dns.Addr(), &key, o.prefix, o.domain)
	if err != nil {
		return err
	}
	d.out.say("ENUM provisioned by TSIG-signed UPDATE: %s", strings.Join(strings.Fields(rec.String()), " "))
	rcfg := dnsreport.DefaultConfig().Resolver
	rcfg.Server = dns.Addr()
	res, err := dnsreport.NewResolver(rcfg, nil, rand.New(rand.NewPCG(o.seed, 1)))
	if err != nil {
		return err
	}

	d.phones = newPhoneBank(phoneConfig{Count: o.phones, NumberPrefix: o.prefix + "000", Domain: o.domain,
		Keepalive: o.keepalive, KeepaliveTimeout: o.keepalive, KeepaliveMisses: 2, RegisterTimeout: 2 * time.Second},
		f, rand.New(rand.NewPCG(o.seed, 2)))
	if err := d.phones.start(); err != nil {
		return fmt.Errorf("phones: %w", err)
	}
	if err := d.phones.registerAll(ctx); err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	via := map[string]int{}
	for _, p := range d.phones.phones {
		via[p.Edge().Name]++
	}
	d.out.say("%d phones registered (%s), each through a random node; keepalive OPTIONS every %s", o.phones, countList(via), millis(o.keepalive))
	d.phones.startKeepalives()
	uri, err := res.ENUM(ctx, d.phones.phones[0].Number)
	if err != nil {
		return fmt.Errorf("ENUM check: %w", err)
	}
	targets, err := res.Locate(ctx, uri)
	if err != nil {
		return fmt.Errorf("RFC 3263 check: %w", err)
	}
	d.out.say("a CSCF's view: ENUM %s -> %s; RFC 3263 %s -> %v", d.phones.phones[0].Number, uri, o.domain, targets)

	d.caller, err = newCaller(callerConfig{NoResponse: time.Second, Setup: 2 * time.Second, Bye: 2 * time.Second, Failover: o.cscfFailover}, res)
	if err != nil {
		return fmt.Errorf("caller: %w", err)
	}
	var phases []phaseResult
	before := d.callPhase(ctx, "calls")
	phases = append(phases, phaseResult{"before the crash", before})

	d.rngMu.Lock()
	victim := f.byLabel(reps[d.rng.IntN(len(reps))].Label)
	d.rngMu.Unlock()
	fo, err := d.failover(ctx, victim, reps)
	if err != nil {
		return err
	}
	phases = append(phases, phaseResult{"during failover", fo.Calls})
	d.out.say("calls during failover: %s", fo.Calls.line())
	d.checkFailover(fo)
	if reps, err = d.waitReps(ctx); err != nil {
		return err
	}
	d.out.say("representatives: %s", sortedNames(reps))
	after := d.callPhase(ctx, "calls after failover")
	phases = append(phases, phaseResult{"after failover", after})

	d.checkAnswered(phases)
	s := &summary{Phones: o.phones, Reregistered: len(d.phones.reregistrations()), Phases: phases, Failover: fo}
	s.Nodes, err = d.nodeRows(ctx, phases)
	if err != nil {
		return err
	}
	d.out.raw(s.render() + "\n")
	return nil
}

// waitReps waits until DNS publishes the representative set every node
// agrees on.
func (d *demo) waitReps(ctx context.Context) ([]publishedRep, error) {
	ctx, cancel := context.WithTimeout(ctx, stepLimit)
	defer cancel()
	var reps []publishedRep
	err := waitFor(ctx, 50*time.Millisecond, "the representatives in DNS", func() error {
		var err error
		reps, err = d.fleet.repsPublished(ctx)
		return err
	})
	return reps, err
}

// callPhase places -calls calls to random phones, ten at a time, prints
// the outcome and records any failure as a problem (nothing crashed).
func (d *demo) callPhase(ctx context.Context, label string) *tally {
	t := newTally()
	for _, cl := range d.caller.batch(ctx, d.o.calls, 10, d.pickCallee, d.nodeName) {
		why := ""
		if !cl.OK {
			why = unexplained(cl)
		}
		t.add(cl, why, cl.OK)
	}
	d.out.say("%s: %s", label, t.line())
	if t.Unexplained > 0 {
		d.fail("%d of %d %s failed", t.Unexplained, t.Attempted, label)
	}
	return t
}

// checkFailover records what the failover step did not achieve.
func (d *demo) checkFailover(fo *failoverResult) {
	if !fo.RingRepairedOK {
		d.fail("the ring still points at %s", fo.Dead)
	}
	if !fo.DNSForgotOK {
		d.fail("DNS still gives out %s", fo.Dead)
	}
	if !fo.ReplacedOK {
		d.fail("no replacement for %s published", fo.Dead)
	}
	if !fo.ReregisteredOK {
		d.fail("phones still registered through %s", fo.Dead)
	}
	if fo.Calls.Unexplained > 0 {
		d.fail("%d calls during failover failed for reasons the crash does not explain", fo.Calls.Unexplained)
	}
}

// checkAnswered cross-checks the caller's count with the phones': every
// call that worked ended with a BYE the callee itself answered, so the
// phones must have seen exactly that many BYEs.
func (d *demo) checkAnswered(phases []phaseResult) {
	ok := 0
	for _, ph := range phases {
		ok += ph.T.OK
	}
	var invites, byes int64
	for _, p := range d.phones.phones {
		invites += p.Invites.Load()
		byes += p.Byes.Load()
	}
	d.out.say("phones answered %d INVITEs and %d BYEs (%d calls worked)", invites, byes, ok)
	if byes != int64(ok) {
		d.fail("the phones saw %d BYEs for %d calls that worked", byes, ok)
	}
}

// nodeRows builds the per-node table from StatusSnapshot, the phones'
// current edges, the calls' representatives and a ring look-up of every
// phone's home.
func (d *demo) nodeRows(ctx context.Context, phases []phaseResult) ([]nodeRow, error) {
	live := d.fleet.live()
	home, err := homes(ctx, live[0], d.phones.phones)
	if err != nil {
		return nil, err
	}
	var rows []nodeRow
	for _, m := range d.fleet.members {
		var r nodeRow
		if m.Killed {
			r = nodeRow{Name: m.Name, SIP: m.SIP, Killed: true}
		} else {
			r = statusRow(m, m.Node.StatusSnapshot())
		}
		for _, p := range d.phones.phones {
			if p.Edge() == m {
				r.RegisteredVia++
			}
			if home[p] == m.Name {
				r.HomeOfPhones++
			}
		}
		for _, ph := range phases {
			r.Answered += ph.T.ViaRep[m.Name]
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// shutdown stops the phones and the caller, makes every live node leave
// gracefully, and checks that DNS is left without representatives.
func (d *demo) shutdown(ctx context.Context) {
	if d.phones != nil {
		d.phones.stop()
	}
	if d.caller != nil {
		d.caller.close()
		d.caller = nil
	}
	if d.fleet == nil {
		return
	}
	live := len(d.fleet.live())
	began := time.Now()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	left, err := d.fleet.shutdown(sctx)
	if err != nil {
		d.fail("graceful shutdown: %v", err)
	}
	pub, rerr := d.fleet.view.reps(sctx)
	switch {
	case rerr != nil:
		d.fail("reading DNS after shutdown: %v", rerr)
	case len(pub) > 0:
		d.fail("DNS still publishes %s after every node left", sortedNames(pub))
	default:
		d.out.say("shutdown: %d/%d nodes left gracefully in %s; DNS publishes no representative", left, live, secs(time.Since(began)))
	}
}

// teardown closes whatever is still open (after a failed step).
func (d *demo) teardown() {
	if d.phones != nil {
		d.phones.stop()
	}
	if d.caller != nil {
		d.caller.close()
	}
	if d.fleet != nil {
		d.fleet.closeAll()
	}
	if d.dns != nil {
		_ = d.dns.Close()
	}
}

// memberList renders "sn1 127.0.0.11 (SIP 5060, cluster 7946), ...".
func memberList(ms []*member) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("%s %s (cluster %s)", m.Name, m.SIP, m.Cluster))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
