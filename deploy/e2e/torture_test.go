package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/miekg/dns"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// The RFC 4475 torture tests run every message of section 3.1 against a
// real dsn-node, over UDP and over TCP. The node serves the domain the
// messages use (example.com), so their Request-URIs stay as the RFC wrote
// them; it resolves every other name through a DNS server on loopback
// that answers NXDOMAIN, so a request for another domain gets 404 and no
// look-up leaves loopback. A phone on loopback (phone, below) is
// registered as sip:user@example.com, the callee of most messages: it
// answers INVITE with 486 and other requests with 200 and keeps what it
// received, so the test sees both the answer and the copy the node
// forwarded. The messages are the RFC's bytes (testdata/rfc4475/README.md)
// with these edits only, each listed in the report: a host the RFC names
// that must be one of this test's loopback peers (the table says which),
// baddn once more with the empty line its tarball copy lacks, a branch
// made unique where two RFC messages would be one transaction
// (uniqueTx), and, over TCP only, the top Via's host (viaToLoopback).

const (
	tortureDomain = "example.com"
	tortureUser   = "user" // registered; most messages are addressed to it
)

// Outcomes other than a status code.
const (
	dropped = "dropped" // UDP: no response
	closed  = "closed"  // TCP: the node closed the connection without a response
	waits   = "waits"   // TCP: no response, connection left open (the node waits for more bytes)
	none    = "none"    // one of several messages in one send got no response
)

// tortureCase is one RFC 4475 message and what the node must do with it.
type tortureCase struct {
	name    string
	file    string // testdata/rfc4475/<file>.dat; "" means name
	section string
	// udp, tcp: the outcomes RFC 4475 allows over each transport: the
	// final status code, or dropped/closed/waits; for a send holding
	// several messages, one result per Call-ID joined with "+".
	udp, tcp []string
	why      string
	// known is what the node does today where that breaks the RFC, by
	// transport, and bug says why. The test accepts it (and logs it) so
	// that it stays green until the bug is fixed, and fails once the node
	// conforms, so that the entry is removed with the fix; unless racy:
	// the bug is a race that the node sometimes wins.
	known map[string][]string
	bug   string
	racy  bool
	// malformed: sipgo cannot parse it, so the node must count it when it
	// drops it (a valid response it discards is not counted).
	malformed bool
	// tailDropTCP: over TCP the bytes after the last message are no
	// message, which the node must count once.
	tailDropTCP bool
	// edit adapts a host the RFC names to this test's loopback peers;
	// edited says what it changes, for the report.
	edit   func(msg []byte, n *tortureNode) []byte
	edited string
	// check inspects the answer and the forwarded copy, given the outcome.
	check func(t *testing.T, n *tortureNode, msg []byte, ex *exchange, got string)
}

func (tc *tortureCase) want(tr string) []string {
	if tr == "udp" {
		return tc.udp
	}
	return tc.tcp
}

// counted reports whether the node must count the message as malformed,
// given the outcome over tr.
func (tc *tortureCase) counted(tr, got string) bool {
	return tc.malformed && (got == dropped || got == closed) || tc.tailDropTCP && tr == "tcp"
}

func one(s ...string) []string { return s }

func both(outcome string) map[string][]string {
	return map[string][]string{"udp": {outcome}, "tcp": {outcome}}
}

// tortureCases is RFC 4475 section 3.1 in its order: 3.1.1 (valid) and
// 3.1.2 (invalid), plus badbranch (section 3.2.1).
var tortureCases = []tortureCase{
	{name: "wsinv", section: "3.1.1.1", udp: one("486"), tcp: one("486"),
		why:  "valid: forwarded to the Route's next hop (the RFC's services.example.com, here the phone); its 486 relayed",
		edit: replace("<sip:services.example.com;", "<sip:{phone};"), edited: "Route host", check: checkWsinv},
	{name: "intmeth", section: "3.1.1.2", udp: one("404"), tcp: one("404"),
		why: "valid unknown method; the unusual user is not registered: a proxy answers 404"},
	{name: "esc01", section: "3.1.1.3", udp: one("404"), tcp: one("404"),
		why: "valid escaping; example.net is not in DNS: 404"},
	{name: "escnull", section: "3.1.1.4", udp: one("200"), tcp: one("200"),
		why: "valid REGISTER of two contacts with %00 users: 200 listing both", check: checkEscnull},
	{name: "esc02", section: "3.1.1.5", udp: one("501"), tcp: one("501"),
		why:  "RE%47IST%45R is an unknown method, not REGISTER; sent to the registrar itself (here the node): 501",
		edit: replace("sip:registrar.example.com SIP/2.0", "sip:{node} SIP/2.0"), edited: "R-URI host"},
	{name: "lwsdisp", section: "3.1.1.6", udp: one("200"), tcp: one("200"),
		why: "valid (no LWS before <): forwarded to the phone, 200", check: checkForwarded},
	{name: "longreq", section: "3.1.1.7", udp: one("486"), tcp: one("486"),
		why:   "valid long message: forwarded (over TCP: it is over 1300 bytes) with all 34 Vias and long headers, 486",
		check: checkLongreq},
	{name: "dblreq", section: "3.1.1.8", udp: one("200+" + none), tcp: one("200+404"), tailDropTCP: true,
		why: "UDP: one datagram, REGISTER with Content-Length 0: 200, the INVITE after it ignored; " +
			"TCP: a stream of REGISTER (200), INVITE for unknown joe (404), then 5 stray bytes",
		known: map[string][]string{"tcp": {closed, "200+" + none, none + "+404"}}, racy: true,
		bug: "at the stray bytes sipgo closes the connection at once, racing the handlers of the two messages before them: their answers are lost (the node never connects to the Via's host to send them: proxy.DialGuard)"},
	{name: "semiuri", section: "3.1.1.9", udp: one("404"), tcp: one("404"),
		why: "valid: the user is \"user;par=u@example.net\", not the registered \"user\": 404", check: checkNotForwarded},
	{name: "transports", section: "3.1.1.10", udp: one("200"), tcp: one("200"),
		why: "valid (unknown transports in lower Vias): forwarded, 200", check: checkForwarded},
	{name: "mpart01", section: "3.1.1.11", udp: one("200"), tcp: one("200"),
		why:  "valid multipart body: forwarded to the Route (the RFC's 127.0.0.1:5080, here the phone) with the binary body intact, 200",
		edit: replace("<sip:127.0.0.1:5080>", "<sip:{phone}>"), edited: "Route host", check: checkBodyIntact},
	{name: "unreason", section: "3.1.1.12", udp: one(dropped), tcp: one(waits),
		why: "valid response matching no transaction: discarded (RFC 3261 16.7, 16.11), not counted"},
	{name: "noreason", section: "3.1.1.13", udp: one(dropped), tcp: one(waits),
		why: "valid response (empty reason) matching no transaction: discarded, not counted"},

	{name: "badinv01", section: "3.1.2.1", udp: one("400", dropped), tcp: one("400", closed), malformed: true,
		why: "extraneous ;,: 400, or dropped: the broken header is the Via a response is routed by"},
	{name: "clerr", section: "3.1.2.2", udp: one("400", dropped), tcp: one(waits), malformed: true,
		why: "Content-Length larger than the message: UDP 400 (or dropped and counted); TCP waits for the rest"},
	{name: "ncl", section: "3.1.2.3", udp: one("400", dropped), tcp: one("400", closed), malformed: true,
		why: "negative Content-Length: an error (or dropped and counted); TCP: the connection is closed"},
	{name: "scalar02", section: "3.1.2.4", udp: one("400", dropped), tcp: one("400", closed), malformed: true,
		why: "CSeq > 2**32-1: 400 (or dropped and counted)"},
	{name: "scalarlg", section: "3.1.2.5", udp: one(dropped), tcp: one(waits, closed), malformed: true,
		why: "response with overlarge scalars: discarded"},
	{name: "quotbal", section: "3.1.2.6", udp: one("400", "486", dropped), tcp: one("400", "486", closed), malformed: true,
		why: "unterminated quote in To: 400 (or dropped); accepting it with an inferred quote is allowed"},
	{name: "ltgtruri", section: "3.1.2.7", udp: one("400", "486", dropped), tcp: one("400", "486", closed), malformed: true,
		why: "<> around the Request-URI: 400 (or dropped); a liberal proxy forwards without them"},
	{name: "lwsruri", section: "3.1.2.8", udp: one("400", "486", dropped), tcp: one("400", "486", closed), malformed: true,
		why: "LWS inside the Request-URI: 400 (or dropped)"},
	{name: "lwsstart", section: "3.1.2.9", udp: one("400", "486", dropped), tcp: one("400", "486", closed), malformed: true,
		why: "several SP between start-line elements: reject (or drop), or accept"},
	{name: "trws", section: "3.1.2.10", udp: one("400", "404", dropped), tcp: one("400", "404", closed), malformed: true,
		why: "SP after SIP-Version: reject (or drop), or accept (remote-target is not registered: 404)"},
	{name: "escruri", section: "3.1.2.11", udp: one("400", "486"), tcp: one("400", "486"),
		why:   "escaped headers in the Request-URI: 400, or forwarded without them (never turned into a Route header)",
		check: checkEscruri},
	{name: "baddate", section: "3.1.2.12", udp: one("486", "400"), tcp: one("486", "400"),
		why:   "non-GMT Date, which a proxy does not use: forwarded with the Date unchanged (rejecting is allowed)",
		check: checkBaddate},
	{name: "regbadct", section: "3.1.2.13", udp: one("400", "200"), tcp: one("400", "200"),
		why: "Contact with a ?header outside <>: 400, or 200 with the brackets inferred"},
	{name: "badaspec", section: "3.1.2.14", udp: one("400", "404", dropped), tcp: one("400", "404", closed), malformed: true,
		why: "spaces inside <addr-spec>: 400 (or dropped); parsers must not break"},
	{name: "baddn", section: "3.1.2.15", udp: one("400", dropped), tcp: one(waits), malformed: true,
		why: "the RFC's tarball bytes end without the empty line that ends the header: UDP 400 or dropped; TCP waits for it"},
	{name: "baddn (as printed)", file: "baddn", section: "3.1.2.15", udp: one("400", "404", dropped), tcp: one("400", "404", closed),
		why:  "unquoted display names with commas: 400, or quotes inferred (t.watson@example.org is not in DNS: 404)",
		edit: func(msg []byte, _ *tortureNode) []byte { return append(slices.Clip(msg), "\r\n"...) }, edited: "+CRLF"},
	{name: "badvers", section: "3.1.2.16", udp: one("505"), tcp: one("505"),
		why:   "SIP/7.0: 505 Version Not Supported",
		known: both("404"), bug: "sipgo parses SIP/7.0 as it does SIP/2.0, and the node routes the request and answers in SIP/7.0 (\"SIP/7.0 404\")"},
	{name: "mismatch01", section: "3.1.2.17", udp: one("400"), tcp: one("400"),
		why: "start-line method OPTIONS, CSeq method INVITE: 400"},
	{name: "mismatch02", section: "3.1.2.18", udp: one("501", "400"), tcp: one("501", "400"),
		why: "unknown method with a CSeq mismatch: 501 (400 acceptable)"},
	{name: "bigcode", section: "3.1.2.19", udp: one(dropped), tcp: one(waits, closed), malformed: true,
		why: "status code > 699: dropped"},
	{name: "badbranch", section: "3.2.1", udp: one("200"), tcp: one("200"),
		why:   "branch is only the magic cookie (section 3.2, listed with these): an RFC 2543 transaction, forwarded, 200",
		check: checkForwarded},
}

// replace returns an edit that replaces old by new once, after
// substituting {phone} and {node} in new with their SIP addresses.
func replace(old, new string) func([]byte, *tortureNode) []byte {
	return func(msg []byte, n *tortureNode) []byte {
		s := strings.NewReplacer("{phone}", n.phone.addr, "{node}", n.p.SIP).Replace(new)
		return bytes.Replace(msg, []byte(old), []byte(s), 1)
	}
}

// Issue: every RFC 4475 section 3.1 message sent to a running node over
// UDP and TCP gets the answer the table says; the node answers an OPTIONS
// probe after each one, counts what it drops, and its goroutines and
// memory return to their baseline.
func TestRFC4475Torture(t *testing.T) {
	if testing.Short() {
		t.Skip("runs dsn-node processes")
	}
	resolver := nxdomainDNS(t)
	f := fleet.New(t, tortureDomain)
	// One node per transport: the messages carry fixed Via branches,
	// Call-IDs and CSeqs, so a second copy on the same node would be a
	// retransmission (or a stale REGISTER), not the same test.
	nodes := map[string]*tortureNode{}
	for i, tr := range []string{"udp", "tcp"} {
		// The test's client is a trusted peer (like an IMS CSCF), so
		// the messages for other domains are routed as the RFC expects
		// of a proxy, not refused by the relay rule (policy_test.go).
		p := f.Start("torture-"+tr, "127.0.0."+strconv.Itoa(44+i), nil, "-resolver", resolver, "-trusted", "127.0.0.1,"+clientIP)
		nodes[tr] = &tortureNode{p: p, tr: tr, phone: startPhone(t, phoneIP),
			viaHosts: map[string]string{}, txKeys: map[string]bool{}}
	}
	for _, tr := range []string{"udp", "tcp"} {
		n := nodes[tr]
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			n.run(t)
		})
	}
}

// tortureNode is a dsn-node under test, the transport the test uses with
// it, and the phone registered on it.
type tortureNode struct {
	p     *fleet.Proc
	tr    string
	phone *phone
	// viaHosts maps the top Via hosts of the messages to the loopback
	// addresses that replace them over TCP (see viaToLoopback).
	viaHosts map[string]string
	// txKeys are the server transaction keys of the messages sent so
	// far (see uniqueTx).
	txKeys map[string]bool
}

type tortureRow struct{ name, section, edits, want, got, lines string }

func (n *tortureNode) run(t *testing.T) {
	n.phone.register(t, n.p.SIP, tortureUser)
	// Warm up both transports, so that the baseline holds what their
	// first use starts.
	for _, tr := range []string{"udp", "tcp"} {
		if err := probe(n.p.SIP, tr, nil); err != nil {
			t.Fatal(err)
		}
	}
	base := n.usage(t)
	baseDrops := malformedCount(t, n.p)
	var rows []tortureRow
	wantDrops := 0
	for i := range tortureCases {
		tc := &tortureCases[i]
		t.Run(tc.name, func(t *testing.T) {
			got, edits, lines := n.runCase(t, tc)
			want := tc.want(n.tr)
			wantText := strings.Join(want, " | ")
			if k, ok := tc.known[n.tr]; ok {
				wantText += " (now " + strings.Join(k, " | ") + ")"
			}
			rows = append(rows, tortureRow{tc.name, tc.section, edits, wantText, got, lines})
			if tc.counted(n.tr, got) {
				wantDrops++
			}
		})
	}
	peak := n.usage(t)
	fleet.Eventually(t, 5*time.Second, "every drop counted once", func() error {
		if got := malformedCount(t, n.p) - baseDrops; got != wantDrops {
			return fmt.Errorf("%d malformed messages counted, want %d (one per malformed message dropped)", got, wantDrops)
		}
		return nil
	})
	start := time.Now()
	fleet.Eventually(t, 45*time.Second, "goroutines and RSS back to the baseline", func() error {
		u := n.usage(t)
		if u.goroutines > base.goroutines+5 {
			return fmt.Errorf("%d goroutines, baseline %d", u.goroutines, base.goroutines)
		}
		if margin := max(16<<20, base.rss/4); u.rss > base.rss+margin {
			return fmt.Errorf("RSS %d MiB, baseline %d MiB", u.rss>>20, base.rss>>20)
		}
		return nil
	})
	end := n.usage(t)
	var b strings.Builder
	fmt.Fprintf(&b, "RFC 4475 over %s (node %s):\n%-19s %-8s %-26s %-28s %-9s %s\n", n.tr, n.p.SIP,
		"message", "section", "edits", "want (RFC)", "got", "status lines")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-19s %-8s %-26s %-28s %-9s %s\n", r.name, r.section, r.edits, r.want, r.got, r.lines)
	}
	fmt.Fprintf(&b, "malformed messages dropped: %d; goroutines %d -> %d -> %d; RSS %d -> %d -> %d KiB; back to baseline after %s",
		wantDrops, base.goroutines, peak.goroutines, end.goroutines, base.rss>>10, peak.rss>>10, end.rss>>10,
		time.Since(start).Round(100*time.Millisecond))
	t.Log(b.String())
}

// runCase sends one message, compares the outcome with the table, runs
// the case's check and probes the node. It returns the outcome, the edits
// made to the message and the status lines received.
func (n *tortureNode) runCase(t *testing.T, tc *tortureCase) (got, edits, lines string) {
	file := tc.file
	if file == "" {
		file = tc.name
	}
	msg, err := os.ReadFile("testdata/rfc4475/" + file + ".dat")
	if err != nil {
		t.Fatal(err)
	}
	var edited []string
	if tc.edit != nil {
		out := tc.edit(msg, n)
		if bytes.Equal(out, msg) {
			t.Fatalf("the edit (%s) changed nothing", tc.edited)
		}
		msg = out
		edited = append(edited, tc.edited)
	}
	if n.tr == "tcp" {
		var ok bool
		if msg, ok = n.viaToLoopback(msg); ok {
			edited = append(edited, "Via host")
		}
	}
	var ok bool
	if msg, ok = n.uniqueTx(msg); ok {
		edited = append(edited, "branch")
	}
	want := tc.want(n.tr)
	wait := 3 * time.Second
	if !allAnswered(want) {
		// A loopback answer takes milliseconds; a second is plenty to
		// tell that none comes.
		wait = time.Second
	}
	before := malformedCount(t, n.p)
	ids := callIDs(msg)
	c, err := dial(n.p.SIP, n.tr, replyPort(msg))
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	ex, err := c.exchange(msg, ids, wait)
	if err != nil {
		t.Fatal(err)
	}
	got = ex.result(ids, n.tr)
	known, isKnown := tc.known[n.tr]
	switch {
	case slices.Contains(want, got) && isKnown && !tc.racy:
		t.Errorf("%s over %s now conforms (%s): remove its known deviation %v from the table", tc.name, n.tr, got, known)
	case slices.Contains(want, got):
	case slices.Contains(known, got):
		t.Logf("known deviation: %s over %s: got %s %s, RFC wants %s: %s", tc.name, n.tr, got, ex.lines(), strings.Join(want, " or "), tc.bug)
	default:
		t.Errorf("%s over %s: got %s %s, want %s (%s)", tc.name, n.tr, got, ex.lines(), strings.Join(want, " or "), tc.why)
	}
	if tc.check != nil {
		tc.check(t, n, msg, ex, got)
	}
	// Over UDP the probe goes from the same socket; over TCP on a new
	// connection (the node may be closing this one, or waiting on it for
	// the rest of a message), while this one stays open until the node
	// has answered the probe, and so, most likely, handled what was sent
	// before it (an ACK, say).
	if n.tr == "udp" {
		err = probe(n.p.SIP, n.tr, c)
	} else {
		err = probe(n.p.SIP, n.tr, nil)
	}
	if err != nil {
		t.Fatalf("after %s: %v\n%s", tc.name, err, n.p.LogTail(20))
	}
	if tc.counted(n.tr, got) {
		fleet.Eventually(t, 2*time.Second, tc.name+" counted as malformed", func() error {
			if c := malformedCount(t, n.p); c <= before {
				return fmt.Errorf("malformed messages counted: %d, before it %d", c, before)
			}
			return nil
		})
	}
	return got, strings.Join(edited, ", "), ex.lines()
}

// allAnswered reports whether every outcome is a status code for every
// message.
func allAnswered(outcomes []string) bool {
	for _, o := range outcomes {
		for _, part := range strings.Split(o, "+") {
			if _, err := strconv.Atoi(part); err != nil {
				return false
			}
		}
	}
	return true
}

type usage struct{ goroutines, rss int }

func (n *tortureNode) usage(t *testing.T) usage {
	t.Helper()
	m, err := n.p.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	return usage{int(m["go_goroutines"]), int(m["process_resident_memory_bytes"])}
}

// malformedCount is how many messages the node dropped as malformed:
// those its input filter rejects before sipgo sees them
// (dsn_sip_input_dropped_total{reason="malformed"}) and those sipgo fails
// to parse (dsn_sip_unparsable_dropped_total; sipgo's log line for each,
// which carried the whole message at ERROR, is now a rate-limited warning
// without it).
func malformedCount(t *testing.T, p *fleet.Proc) int {
	t.Helper()
	m, err := p.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	n := int(m["dsn_sip_unparsable_dropped_total"])
	for k, v := range m {
		if strings.HasPrefix(k, "dsn_sip_input_dropped_total{") && strings.Contains(k, `reason="malformed"`) {
			n += int(v)
		}
	}
	return n
}

// Checks of answers and forwarded copies.

func forwardedCopy(t *testing.T, n *tortureNode, msg []byte) *sip.Request {
	t.Helper()
	id := callIDs(msg)[0]
	r := n.phone.received(id)
	if r == nil {
		t.Errorf("the phone did not get %s", id)
	}
	return r
}

func checkForwarded(t *testing.T, n *tortureNode, msg []byte, _ *exchange, _ string) {
	forwardedCopy(t, n, msg)
}

func checkNotForwarded(t *testing.T, n *tortureNode, msg []byte, _ *exchange, _ string) {
	if r := n.phone.received(callIDs(msg)[0]); r != nil {
		t.Errorf("the registered phone got a request for another user: %s", r.StartLine())
	}
}

func original(t *testing.T, msg []byte) *sip.Request {
	t.Helper()
	m, err := sip.ParseMessage(msg)
	if err != nil {
		t.Fatalf("sipgo does not parse the sent message: %v", err)
	}
	return m.(*sip.Request)
}

// viaHops counts Via values (sipgo keeps comma-separated ones apart).
func viaHops(r *sip.Request) int { return len(r.GetHeaders("Via")) }

// checkCopy wants the forwarded copy to have one Via more than msg and
// its body unchanged.
func checkCopy(t *testing.T, n *tortureNode, msg []byte) (fwd, orig *sip.Request) {
	t.Helper()
	fwd = forwardedCopy(t, n, msg)
	if fwd == nil {
		return nil, nil
	}
	orig = original(t, msg)
	if got, want := viaHops(fwd), viaHops(orig)+1; got != want {
		t.Errorf("forwarded copy has %d Via values, want %d", got, want)
	}
	if !bytes.Equal(fwd.Body(), orig.Body()) {
		t.Errorf("forwarded body (%d bytes) differs from the original (%d bytes)", len(fwd.Body()), len(orig.Body()))
	}
	return fwd, orig
}

func checkWsinv(t *testing.T, n *tortureNode, msg []byte, _ *exchange, got string) {
	if got != "486" {
		return
	}
	r, _ := checkCopy(t, n, msg)
	if r == nil {
		return
	}
	if mf := r.MaxForwards(); mf == nil || mf.Val() != 67 {
		t.Errorf("forwarded Max-Forwards %v, want 67 (0068 - 1)", mf)
	}
	for name, want := range map[string]string{"UnknownHeaderWithUnusualValue": ";;,,;;,;", "NewFangledHeader": "continued newfangled value"} {
		if h := r.GetHeader(name); h == nil || !strings.Contains(h.Value(), want) {
			t.Errorf("forwarded %s = %v, want it to hold %q", name, h, want)
		}
	}
}

func checkLongreq(t *testing.T, n *tortureNode, msg []byte, _ *exchange, _ string) {
	r, o := checkCopy(t, n, msg)
	if r == nil {
		return
	}
	name := "Unknown-LongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLong-Name"
	if h, w := r.GetHeader(name), o.GetHeader(name); h == nil || w == nil || h.Value() != w.Value() {
		t.Errorf("forwarded %s = %v, want %v", name, h, w)
	}
}

func checkBodyIntact(t *testing.T, n *tortureNode, msg []byte, _ *exchange, _ string) {
	checkCopy(t, n, msg)
}

func checkEscnull(t *testing.T, _ *tortureNode, msg []byte, ex *exchange, got string) {
	if got != "200" {
		return
	}
	var cs []string
	for _, h := range ex.finals[callIDs(msg)[0]].GetHeaders("Contact") {
		cs = append(cs, h.Value())
	}
	all := strings.Join(cs, " ")
	if len(cs) != 2 || !strings.Contains(all, "<sip:%00@") || !strings.Contains(all, "<sip:%00%00@") {
		t.Errorf("200 lists contacts %q, want <sip:%%00@...> and <sip:%%00%%00@...>", cs)
	}
}

// forwardedOn returns the copy of msg the phone got when the outcome is
// the phone's answer, else nil.
func forwardedOn(t *testing.T, n *tortureNode, msg []byte, got, phoneAnswer string) *sip.Request {
	t.Helper()
	if got != phoneAnswer {
		return nil
	}
	return forwardedCopy(t, n, msg)
}

func checkEscruri(t *testing.T, n *tortureNode, msg []byte, _ *exchange, got string) {
	r := forwardedOn(t, n, msg, got, "486")
	if r == nil {
		return
	}
	if strings.Contains(r.StartLine(), "?") {
		t.Errorf("forwarded Request-URI keeps the escaped headers: %s", r.StartLine())
	}
	for _, h := range r.GetHeaders("Route") {
		if strings.Contains(h.Value(), tortureDomain) {
			t.Errorf("the escaped Route became a header: Route: %s", h.Value())
		}
	}
}

func checkBaddate(t *testing.T, n *tortureNode, msg []byte, _ *exchange, got string) {
	r := forwardedOn(t, n, msg, got, "486")
	if r == nil {
		return
	}
	if h := r.GetHeader("Date"); h == nil || h.Value() != "Fri, 01 Jan 2010 16:00:00 EST" {
		t.Errorf("forwarded Date = %v, want it unchanged", h)
	}
}

// A datagram of random bytes and a TCP stream of random bytes do not stop
// the node: it answers OPTIONS over both transports afterwards.
func TestGarbageDoesNotKillNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a dsn-node process")
	}
	f := fleet.New(t, tortureDomain)
	p := f.Start("garbage", "127.0.0.48", nil, "-resolver", nxdomainDNS(t))
	rng := rand.New(rand.NewPCG(4475, 1))
	garbage := func(k int) []byte {
		b := make([]byte, k)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	c, err := dial(p.SIP, "udp", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	// Random bytes, and random bytes after a plausible start line.
	for _, d := range [][]byte{garbage(1), garbage(512), garbage(1400), garbage(60000),
		append([]byte("INVITE sip:user@example.com SIP/2.0\r\n"), garbage(900)...)} {
		if err := c.write(d); err != nil {
			t.Fatal(err)
		}
	}
	tc, err := dial(p.SIP, "tcp", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.close()
	// The node closes the connection at its first parse error; write
	// until then, at most 256 KiB.
	for i := 0; i < 64; i++ {
		_ = tc.tcp.SetWriteDeadline(time.Now().Add(time.Second))
		if err := tc.write(garbage(4096)); err != nil {
			break
		}
	}
	for _, tr := range []string{"udp", "tcp"} {
		if err := probe(p.SIP, tr, nil); err != nil {
			t.Fatal(err)
		}
	}
	if !p.Alive() {
		t.Fatal("node exited")
	}
}

// Loopback peers of the torture tests: the client that sends the
// messages, the phone, and the DNS server.

const (
	clientIP = "127.0.0.46"
	phoneIP  = "127.0.0.47"
)

// sipText joins header lines into a message without a body.
func sipText(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n")
}

const (
	lws  = `(?:[ \t]|\r\n[ \t])*` // LWS, folding included
	lws1 = `(?:[ \t]|\r\n[ \t])+`
)

var (
	callIDLine = regexp.MustCompile(`(?im)^(?:call-id|i)[ \t]*:[ \t]*(\S+)`)
	// viaHost finds the first (top) Via's sent-by host: group 1 is what
	// precedes it, group 2 the host, group 3 the rest of the value's line.
	viaHost = regexp.MustCompile(`(?i)(\n(?:via|v)` + lws + `:` + lws + `SIP` + lws + `/` + lws + `[0-9.]+` + lws + `/` + lws +
		`[a-z]+` + lws1 + `)(\[[^\]]*\]|[^\s;:,]+)([^\r\n]*)`)
	// startLine matches the start line of a request or a response.
	startLine   = regexp.MustCompile(`(?m)^(?:[^\s:]+ +[^\r\n]* +SIP/[0-9.]+ *|SIP/[0-9.]+ +\d+[^\r\n]*)\r?$`)
	rportParam  = regexp.MustCompile(`(?i);` + lws + `rport` + lws + `(?:;|,|$)`)
	branchParam = regexp.MustCompile(`(?i);` + lws + `branch` + lws + `=` + lws + `([^\s;,]+)`)
	viaPort     = regexp.MustCompile(`^:(\d+)`)
)

// callIDs lists the Call-IDs of the messages in data, in order.
func callIDs(data []byte) []string {
	var ids []string
	for _, m := range callIDLine.FindAllSubmatch(data, -1) {
		ids = append(ids, string(m[1]))
	}
	return ids
}

// replyPort is the port a UDP response to data goes to (RFC 3261 18.2.2,
// RFC 3581): the top Via's port, 5060 without one, or 0 (the source port)
// with rport.
func replyPort(data []byte) int {
	m := viaHost.FindSubmatch(data)
	switch {
	case m == nil:
		return 5060
	case rportParam.Match(m[3]):
		return 0
	}
	if p := viaPort.FindSubmatch(m[3]); p != nil {
		n, _ := strconv.Atoi(string(p[1]))
		return n
	}
	return 5060
}

// viaToLoopback puts a loopback address in place of the top Via's host
// of each message in msg, the same one for the same host. Over TCP sipgo
// sends a response whose connection has closed (the node closed it at a
// framing error, or the client did) by connecting to the Via's host,
// looked up in the system's DNS, not to the source address RFC 3261
// 18.2.2 names. The node's dial guard (sip/proxy DialGuard) now refuses
// that connection and the look-up, so the response is dropped; the edit
// stays so that a regression cannot take the test off loopback.
// Everything else in the Via stays as the RFC wrote it.
func (n *tortureNode) viaToLoopback(msg []byte) ([]byte, bool) {
	var out []byte
	rest, done := msg, false
	for _, sl := range startLine.FindAllIndex(msg, -1) {
		// The first Via after each start line is that message's top Via.
		at := sl[1] - (len(msg) - len(rest))
		if at < 0 {
			continue
		}
		loc := viaHost.FindSubmatchIndex(rest[at:])
		if loc == nil {
			break
		}
		host := string(rest[at+loc[4] : at+loc[5]])
		ip, ok := n.viaHosts[host]
		if !ok {
			ip = "127.0.1." + strconv.Itoa(len(n.viaHosts)+1)
			n.viaHosts[host] = ip
		}
		out = append(append(out, rest[:at+loc[4]]...), ip...)
		rest, done = rest[at+loc[5]:], true
	}
	return append(out, rest...), done
}

// uniqueTx makes the top Via branch of msg unique (appending ".2") when
// msg would match the server transaction of a message sent before. The
// RFC's messages reuse branch z9hG4bKkdjuw and sent-by hosts: baddn and
// badvers, or baddate and mismatch01 (whose CSeq says INVITE), are one
// transaction by RFC 3261 17.2.3, and sent to one node within its
// transaction lifetime (32 s) the second is a retransmission of the
// first.
func (n *tortureNode) uniqueTx(msg []byte) ([]byte, bool) {
	key, ok := txKey(msg)
	if !ok {
		return msg, false
	}
	edited := false
	if n.txKeys[key] {
		loc := viaHost.FindSubmatchIndex(msg)
		b := branchParam.FindSubmatchIndex(msg[loc[6]:loc[7]])
		if b == nil {
			return msg, false
		}
		end := loc[6] + b[3]
		msg = slices.Concat(msg[:end], []byte(".2"), msg[end:])
		edited = true
		if key, ok = txKey(msg); !ok {
			return msg, edited
		}
	}
	n.txKeys[key] = true
	return msg, edited
}

// txKey is sipgo's server transaction key of the request in msg.
func txKey(msg []byte) (string, bool) {
	m, err := sip.ParseMessage(msg)
	if err != nil {
		return "", false
	}
	if _, ok := m.(*sip.Request); !ok {
		return "", false
	}
	key, err := sip.ServerTxKeyMake(m)
	return key, err == nil
}

// exchange is what came back for one send.
type exchange struct {
	finals map[string]*sip.Response // Call-ID -> first final response
	closed bool                     // TCP: the node closed the connection
	reqs   map[string]*sip.Request  // the requests sent that sipgo parses, for ACKs
}

func newExchange(msg []byte, ids []string) *exchange {
	ex := &exchange{finals: map[string]*sip.Response{}, reqs: map[string]*sip.Request{}}
	ps := sip.NewParser().NewSIPStream()
	_ = ps.ParseSIPStream(slices.Clone(msg), func(m sip.Message) {
		if r, ok := m.(*sip.Request); ok && r.CallID() != nil {
			ex.reqs[r.CallID().Value()] = r
		}
	})
	for _, id := range ids {
		ex.finals[id] = nil
	}
	return ex
}

// add records a response; it returns the ACK to send for a non-2xx final
// response to an INVITE (RFC 3261 17.1.1.3), or nil.
func (ex *exchange) add(m sip.Message) []byte {
	res, ok := m.(*sip.Response)
	if !ok || res.CallID() == nil || res.StatusCode < 200 {
		return nil
	}
	id := res.CallID().Value()
	if prev, sent := ex.finals[id]; !sent || prev != nil {
		return nil
	}
	ex.finals[id] = res
	req := ex.reqs[id]
	if req == nil || !req.IsInvite() || res.StatusCode < 300 {
		return nil
	}
	lines := []string{"ACK " + req.Recipient.String() + " SIP/2.0", "Via: " + req.Via().Value(), "Max-Forwards: 70"}
	for _, h := range req.GetHeaders("Route") {
		lines = append(lines, "Route: "+h.Value())
	}
	lines = append(lines, "From: "+req.From().Value(), "To: "+res.To().Value(), "Call-ID: "+id,
		"CSeq: "+strconv.Itoa(int(req.CSeq().SeqNo))+" ACK", "Content-Length: 0")
	return sipText(lines...)
}

func (ex *exchange) complete() bool {
	for _, r := range ex.finals {
		if r == nil {
			return false
		}
	}
	return true
}

// result is the outcome: the final status per Call-ID joined with "+"
// ("none" for one without), or dropped/closed/waits when nothing came.
func (ex *exchange) result(ids []string, tr string) string {
	var parts []string
	answered := false
	for _, id := range ids {
		if r := ex.finals[id]; r != nil {
			parts = append(parts, strconv.Itoa(r.StatusCode))
			answered = true
		} else {
			parts = append(parts, none)
		}
	}
	switch {
	case answered:
		return strings.Join(parts, "+")
	case tr == "udp":
		return dropped
	case ex.closed:
		return closed
	}
	return waits
}

// lines are the status lines received, for the report.
func (ex *exchange) lines() string {
	var out []string
	for _, r := range ex.finals {
		if r != nil {
			out = append(out, fmt.Sprintf("%q", r.StartLine()))
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// client is the test's end of a UDP socket or TCP connection to a node.
type client struct {
	udp *net.UDPConn
	dst *net.UDPAddr
	tcp net.Conn
	ps  *sip.ParserStream
}

// dial opens a client toward addr. Over UDP it binds port on clientIP:
// where the node answers a request whose top Via has no rport (RFC 3261
// 18.2.2: the source address and the Via's port); 0 picks one.
func dial(addr, tr string, port int) (*client, error) {
	if tr == "tcp" {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}, Timeout: time.Second}
		c, err := d.Dial("tcp4", addr)
		if err != nil {
			return nil, err
		}
		return &client{tcp: c, ps: sip.NewParser().NewSIPStream()}, nil
	}
	dst, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(clientIP), Port: port})
	if err != nil {
		return nil, err
	}
	return &client{udp: c, dst: dst}, nil
}

func (c *client) close() {
	if c.tcp != nil {
		c.tcp.Close()
	} else {
		c.udp.Close()
	}
}

func (c *client) write(b []byte) error {
	var err error
	if c.tcp != nil {
		_, err = c.tcp.Write(b)
	} else {
		_, err = c.udp.WriteTo(b, c.dst)
	}
	return err
}

// read returns the messages of the next datagram or stream segment.
// closed reports that the node closed the connection.
func (c *client) read(deadline time.Time, buf []byte) (msgs []sip.Message, closed bool, err error) {
	if c.tcp == nil {
		_ = c.udp.SetReadDeadline(deadline)
		k, _, err := c.udp.ReadFrom(buf)
		if err != nil {
			return nil, false, err
		}
		if m, err := sip.ParseMessage(buf[:k]); err == nil {
			msgs = append(msgs, m)
		}
		return msgs, false, nil
	}
	_ = c.tcp.SetReadDeadline(deadline)
	k, err := c.tcp.Read(buf)
	_ = c.ps.ParseSIPStream(slices.Clone(buf[:k]), func(m sip.Message) { msgs = append(msgs, m) })
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		return msgs, true, err
	}
	return msgs, false, err
}

// exchange sends msg and collects final responses for ids until each has
// one or wait passes, ACKing non-2xx answers to INVITEs.
func (c *client) exchange(msg []byte, ids []string, wait time.Duration) (*exchange, error) {
	ex := newExchange(msg, ids)
	if err := c.write(msg); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	buf := make([]byte, 1<<16)
	for !ex.complete() {
		msgs, closed, err := c.read(deadline, buf)
		for _, m := range msgs {
			if ack := ex.add(m); ack != nil && !closed {
				if err := c.write(ack); err != nil {
					return nil, err
				}
			}
		}
		if err != nil {
			ex.closed = closed
			break
		}
	}
	return ex, nil
}

// probe sends an OPTIONS to the node at addr over tr and wants 200 within
// 1 s; over c when given, else over a new socket or connection.
func probe(addr, tr string, c *client) error {
	if c == nil {
		var err error
		if c, err = dial(addr, tr, 0); err != nil {
			return err
		}
		defer c.close()
	}
	id := "probe-" + sip.GenerateTagN(12)
	via := "SIP/2.0/UDP " + clientIP + ";rport"
	if tr == "tcp" {
		via = "SIP/2.0/TCP " + clientIP
	}
	msg := sipText("OPTIONS sip:"+addr+" SIP/2.0",
		"Via: "+via+";branch=z9hG4bK"+sip.GenerateTagN(12),
		"Max-Forwards: 70",
		"From: <sip:probe@"+clientIP+">;tag="+sip.GenerateTagN(8),
		"To: <sip:"+addr+">",
		"Call-ID: "+id,
		"CSeq: 1 OPTIONS",
		"Content-Length: 0")
	ex, err := c.exchange(msg, []string{id}, time.Second)
	if err != nil {
		return err
	}
	if got := ex.result([]string{id}, tr); got != "200" {
		return fmt.Errorf("OPTIONS probe over %s: %s %s, want 200", tr, got, ex.lines())
	}
	return nil
}

// phone is a SIP phone on UDP and TCP (one port; a request over 1300
// bytes comes over TCP, RFC 3261 18.1.1): it answers INVITE with 486, ACK
// with nothing and any other request with 200, and keeps the last request
// of each Call-ID.
type phone struct {
	udp  net.PacketConn
	tcp  net.Listener
	addr string
	wg   sync.WaitGroup
	mu   sync.Mutex
	reqs map[string][]byte
	res  chan *sip.Response
	// conns are the open TCP connections, closed at cleanup.
	conns map[net.Conn]struct{}
}

func startPhone(t *testing.T, ip string) *phone {
	t.Helper()
	u, err := net.ListenPacket("udp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", u.LocalAddr().String())
	if err != nil {
		u.Close()
		t.Fatal(err)
	}
	ph := &phone{udp: u, tcp: l, addr: u.LocalAddr().String(), reqs: map[string][]byte{},
		res: make(chan *sip.Response, 8), conns: map[net.Conn]struct{}{}}
	ph.wg.Add(2)
	go ph.serveUDP()
	go ph.acceptTCP()
	t.Cleanup(func() {
		u.Close()
		l.Close()
		ph.mu.Lock()
		for c := range ph.conns {
			c.Close()
		}
		ph.mu.Unlock()
		ph.wg.Wait()
	})
	return ph
}

func (ph *phone) serveUDP() {
	defer ph.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		k, from, err := ph.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		m, err := sip.ParseMessage(slices.Clone(buf[:k]))
		if err != nil {
			continue
		}
		if res := ph.answer(m); res != nil {
			_, _ = ph.udp.WriteTo(res, from)
		}
	}
}

func (ph *phone) acceptTCP() {
	defer ph.wg.Done()
	for {
		c, err := ph.tcp.Accept()
		if err != nil {
			return
		}
		ph.mu.Lock()
		ph.conns[c] = struct{}{}
		ph.mu.Unlock()
		ph.wg.Add(1)
		go ph.serveTCP(c)
	}
}

func (ph *phone) serveTCP(c net.Conn) {
	defer ph.wg.Done()
	defer func() {
		ph.mu.Lock()
		delete(ph.conns, c)
		ph.mu.Unlock()
		c.Close()
	}()
	ps := sip.NewParser().NewSIPStream()
	buf := make([]byte, 1<<16)
	for {
		k, err := c.Read(buf)
		if err != nil {
			return
		}
		var out [][]byte
		if err := ps.ParseSIPStream(slices.Clone(buf[:k]), func(m sip.Message) {
			if res := ph.answer(m); res != nil {
				out = append(out, res)
			}
		}); err != nil && !errors.Is(err, sip.ErrParseSipPartial) {
			return
		}
		for _, res := range out {
			if _, err := c.Write(res); err != nil {
				return
			}
		}
	}
}

// answer records a request and returns the response to it (nil for an
// ACK or a response).
func (ph *phone) answer(m sip.Message) []byte {
	switch m := m.(type) {
	case *sip.Response:
		select {
		case ph.res <- m:
		default:
		}
	case *sip.Request:
		if m.IsAck() || m.CallID() == nil {
			return nil
		}
		ph.mu.Lock()
		ph.reqs[m.CallID().Value()] = []byte(m.String())
		ph.mu.Unlock()
		code, reason := 200, "OK"
		if m.IsInvite() {
			code, reason = 486, "Busy Here"
		}
		return []byte(sip.NewResponseFromRequest(m, code, reason, nil).String())
	}
	return nil
}

// received returns the request with Call-ID id as the phone got it (nil
// if it got none).
func (ph *phone) received(id string) *sip.Request {
	ph.mu.Lock()
	data := ph.reqs[id]
	ph.mu.Unlock()
	if data == nil {
		return nil
	}
	m, err := sip.ParseMessage(data)
	if err != nil {
		return nil
	}
	r, _ := m.(*sip.Request)
	return r
}

// register binds sip:user@example.com to the phone (over UDP) on the node
// at addr.
func (ph *phone) register(t *testing.T, addr, user string) {
	t.Helper()
	aor := "sip:" + user + "@" + tortureDomain
	msg := sipText("REGISTER sip:"+tortureDomain+" SIP/2.0",
		"Via: SIP/2.0/UDP "+ph.addr+";branch=z9hG4bK"+sip.GenerateTagN(12)+";rport",
		"Max-Forwards: 70",
		"From: <"+aor+">;tag="+sip.GenerateTagN(8),
		"To: <"+aor+">",
		"Call-ID: reg-"+sip.GenerateTagN(12),
		"CSeq: 1 REGISTER",
		"Contact: <sip:"+user+"@"+ph.addr+">",
		"Expires: 600",
		"Content-Length: 0")
	dst, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ph.udp.WriteTo(msg, dst); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-ph.res:
		if res.StatusCode != 200 {
			t.Fatalf("REGISTER %s: %s", aor, res.StartLine())
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("REGISTER %s: no answer", aor)
	}
}

// nxdomainDNS serves NXDOMAIN for every name on loopback UDP; the nodes
// resolve through it, so no look-up of theirs leaves loopback.
func nxdomainDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
			m := new(dns.Msg)
			m.SetRcode(q, dns.RcodeNameError)
			_ = w.WriteMsg(m)
		})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ActivateAndServe()
	}()
	<-started
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	return pc.LocalAddr().String()
}
