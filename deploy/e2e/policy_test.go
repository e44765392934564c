package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/dsn-ims/dsn/deploy/fleet"
	"github.com/dsn-ims/dsn/sip/auth"
)

// Loopback peers of the policy tests.
const (
	polDomain = "dsn.policy"
	polCSCF   = "127.0.0.130" // the IMS CSCF: -trusted
	polPhone  = "127.0.0.131" // bob's phone
	polCaller = "127.0.0.132" // a phone or stranger: not trusted
	polIMS    = "127.0.0.133" // an IMS node outside the DSN
)

var polPasswords = map[string]string{"alice": "alice-pw", "bob": "bob-pw"}

// polCredentials writes the -auth-file: alice and bob, MD5 and SHA-256.
func polCredentials(t *testing.T) string {
	t.Helper()
	var lines []string
	for u, pw := range polPasswords {
		for _, a := range auth.Algorithms() {
			l, err := auth.HA1Line(u, polDomain, pw, a)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, l)
		}
	}
	p := filepath.Join(t.TempDir(), "sip-users")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// polNode runs a dsn-node with exactly these settings plus extra (no
// harness defaults: no -auth-open, nothing trusted). SIPp 3.6 answers
// only the first challenge and only MD5: -auth-algorithms MD5,SHA-256.
func polNode(t *testing.T, f *fleet.Fleet, name, ip, resolver string, join []string, extra ...string) *fleet.Proc {
	t.Helper()
	args := []string{"-name", name, "-domain", polDomain, "-sip", ip + ":0", "-cluster", ip + ":0", "-admin", ip + ":0",
		"-cluster-key-file", f.KeyFile, "-log-level", "debug", "-resolver", resolver, "-auth-algorithms", "MD5,SHA-256"}
	if len(join) > 0 {
		args = append(args, "-join", strings.Join(join, ","))
	}
	p, err := f.Exec(name, ip, append(args, extra...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// registerBob registers bob's phone (polPhone:port) through node with
// Digest.
func registerBob(t *testing.T, node *fleet.Proc, port int) {
	t.Helper()
	fleet.SIPp(t, node.SIP, "-sf", "testdata/register_auth.xml", "-i", polPhone, "-p", strconv.Itoa(port),
		"-s", "bob", "-au", "bob", "-ap", polPasswords["bob"], "-auth_uri", polDomain, "-key", "domain", polDomain, "-m", "1")
}

// refusedWith runs one call of scenario from ip to node and wants it to
// fail with code (SIPp logs the unexpected status).
func refusedWith(t *testing.T, node *fleet.Proc, code int, ip string, args ...string) {
	t.Helper()
	c := fleet.RunSIPpCounted(t, 30*time.Second, node.SIP, append([]string{"-i", ip, "-p", strconv.Itoa(fleet.FreeUDPPort(t, ip)),
		"-m", "1", "-recv_timeout", "5000"}, args...)...)
	if c.Successful != 0 || c.Failed != 1 {
		t.Fatalf("want the call refused with %d: %+v", code, c)
	}
	if all := strings.Join(c.Errors, "\n"); !strings.Contains(all, "SIP/2.0 "+strconv.Itoa(code)) && !strings.Contains(all, " "+strconv.Itoa(code)+" ") {
		t.Fatalf("want %d, SIPp logged: %v", code, c.Errors)
	}
}

// rawInvite sends an INVITE from ip (with extra header lines) to node
// over UDP and returns the final status (ACKing it).
func rawInvite(t *testing.T, node *fleet.Proc, ip, ruri string, extra ...string) int {
	t.Helper()
	dst, err := net.ResolveUDPAddr("udp4", node.SIP)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	c := &client{udp: conn, dst: dst}
	defer c.close()
	id := "pol-" + sip.GenerateTagN(12)
	lines := []string{"INVITE " + ruri + " SIP/2.0",
		"Via: SIP/2.0/UDP " + conn.LocalAddr().String() + ";branch=z9hG4bK" + sip.GenerateTagN(12) + ";rport",
		"Max-Forwards: 70",
		"From: <sip:mallory@" + polDomain + ">;tag=" + sip.GenerateTagN(8),
		"To: <" + ruri + ">",
		"Call-ID: " + id,
		"CSeq: 1 INVITE",
		"Contact: <sip:mallory@" + conn.LocalAddr().String() + ">"}
	lines = append(lines, extra...)
	ex, err := c.exchange(sipText(append(lines, "Content-Length: 0")...), []string{id}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := ex.finals[id]
	if r == nil {
		t.Fatalf("INVITE %s from %s: no final response", ruri, ip)
	}
	return r.StatusCode
}

// forgedMarker is a DSN-Node-Auth header with a fresh time and a MAC
// made without the cluster key.
func forgedMarker() string {
	return "DSN-Node-Auth: t=" + strconv.FormatInt(time.Now().Unix(), 10) + ";mac=AAAAAAAAAAAAAAAAAAAAAA"
}

// Issue 6, "who may do what": calls from unauthenticated sources follow
// -call-policy; the node relays out of the DSN only for trusted peers,
// DSN nodes and authenticated users; a forged DSN node marker gets the
// policy's answer. Real dsn-node processes, SIPp phones and callers.
func TestCallPolicyWithSIPp(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	fleet.RequireTool(t, "sipp")
	resolver := nxdomainDNS(t)
	creds := polCredentials(t)
	f := fleet.New(t, polDomain)
	imsPort := fleet.FreeUDPPort(t, polIMS)
	imsURI := fmt.Sprintf("sip:carol@%s:%d", polIMS, imsPort)

	t.Run("challenge (default with -auth-file)", func(t *testing.T) {
		n := polNode(t, f, "pol-challenge", "127.0.0.134", resolver, nil, "-auth-file", creds, "-trusted", polCSCF)
		if !strings.Contains(n.LogTail(200), `"call_policy":"challenge"`) {
			t.Fatalf("the node does not say it challenges:\n%s", n.LogTail(40))
		}
		phonePort := fleet.FreeUDPPort(t, polPhone)
		registerBob(t, n, phonePort)
		uas := fleet.StartSIPp(t, "", "-sf", scenarios+"uas.xml", "-i", polPhone, "-p", strconv.Itoa(phonePort),
			"-m", "2", "-timeout", "30s", "-timeout_error")

		// 407, then the INVITE with credentials completes (ACK and BYE
		// through the node's Record-Route).
		fleet.SIPp(t, n.SIP, "-sf", "testdata/uac_auth.xml", "-i", polCaller, "-p", strconv.Itoa(fleet.FreeUDPPort(t, polCaller)),
			"-s", "bob", "-key", "domain", polDomain, "-key", "caller", "alice", "-au", "alice", "-ap", polPasswords["alice"],
			"-auth_uri", "bob@"+polDomain, "-m", "1", "-d", "100")
		// The trusted CSCF needs no credentials.
		fleet.SIPp(t, n.SIP, "-sf", scenarios+"uac.xml", "-i", polCSCF, "-p", strconv.Itoa(fleet.FreeUDPPort(t, polCSCF)),
			"-s", "bob", "-key", "domain", polDomain, "-m", "1", "-d", "100")
		uas.Wait(t, 20*time.Second)

		// A wrong password: challenged again, the call fails.
		refusedWith(t, n, 407, polCaller, "-sf", "testdata/uac_auth.xml", "-s", "bob", "-key", "domain", polDomain,
			"-key", "caller", "alice", "-au", "alice", "-ap", "guess", "-auth_uri", "bob@"+polDomain)
		// No credentials at all: 407.
		refusedWith(t, n, 407, polCaller, "-sf", scenarios+"uac.xml", "-s", "bob", "-key", "domain", polDomain)
		// Relay out of the DSN from an unauthenticated source: 407.
		refusedWith(t, n, 407, polCaller, "-sf", "testdata/uac_uri_contact.xml", "-inf", callees(t, imsURI), "-key", "uriparams", "")
		// ... from the trusted CSCF: relayed to the IMS node.
		ims := fleet.StartSIPp(t, "", "-sf", "testdata/uas_via.xml", "-i", polIMS, "-p", strconv.Itoa(imsPort),
			"-m", "1", "-timeout", "30s", "-timeout_error")
		fleet.SIPp(t, n.SIP, "-sf", "testdata/uac_uri_contact.xml", "-inf", callees(t, imsURI), "-key", "uriparams", "",
			"-i", polCSCF, "-p", strconv.Itoa(fleet.FreeUDPPort(t, polCSCF)), "-m", "1", "-d", "100")
		ims.Wait(t, 20*time.Second)
		// A forged DSN node marker: the policy's answer, not a pass.
		if code := rawInvite(t, n, polCaller, "sip:bob@"+polDomain, forgedMarker()); code != 407 {
			t.Fatalf("forged marker: %d, want 407", code)
		}
		if code := rawInvite(t, n, polCaller, imsURI, forgedMarker()); code != 407 {
			t.Fatalf("forged marker on a relay: %d, want 407", code)
		}
	})

	t.Run("reject", func(t *testing.T) {
		n := polNode(t, f, "pol-reject", "127.0.0.135", resolver, nil, "-auth-file", creds, "-trusted", polCSCF, "-call-policy", "reject")
		refusedWith(t, n, 403, polCaller, "-sf", scenarios+"uac.xml", "-s", "bob", "-key", "domain", polDomain)
		refusedWith(t, n, 403, polCaller, "-sf", "testdata/uac_uri_contact.xml", "-inf", callees(t, imsURI), "-key", "uriparams", "")
		if code := rawInvite(t, n, polCaller, "sip:bob@"+polDomain, forgedMarker()); code != 403 {
			t.Fatalf("forged marker: %d, want 403", code)
		}
		// The trusted CSCF is let through (bob is not registered here).
		if code := rawInvite(t, n, polCSCF, "sip:bob@"+polDomain); code != 404 {
			t.Fatalf("trusted CSCF: %d, want 404 (routed: bob unknown here)", code)
		}
	})

	t.Run("accept (-auth-open): no open relay", func(t *testing.T) {
		n := polNode(t, f, "pol-open", "127.0.0.136", resolver, nil, "-auth-open")
		refusedWith(t, n, 403, polCaller, "-sf", "testdata/uac_uri_contact.xml", "-inf", callees(t, imsURI), "-key", "uriparams", "")
		if code := rawInvite(t, n, polCaller, "sip:nobody@"+polDomain); code != 404 {
			t.Fatalf("call to a DSN user under accept: %d, want 404 (routed)", code)
		}
	})
}

// Issue 6, inter-node: in a ring where each node trusts only the CSCF, a
// call that enters at B for a user homed on H, whose phone registered
// through A, is admitted at H and at A by the marker of the node before
// (with reject, any refusal would end the call with 403).
func TestCallPolicyThroughRing(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	fleet.RequireTool(t, "sipp")
	resolver := nxdomainDNS(t)
	creds := polCredentials(t)
	f := fleet.New(t, polDomain)
	var ps []*fleet.Proc
	for i := 0; i < 3; i++ {
		var join []string
		if i > 0 {
			join = []string{ps[0].Cluster}
		}
		ps = append(ps, polNode(t, f, fmt.Sprintf("pr%d", i+1), fmt.Sprintf("127.0.0.%d", 137+i), resolver, join,
			"-auth-file", creds, "-trusted", polCSCF, "-call-policy", "reject"))
	}
	fleet.Eventually(t, 15*time.Second, "ring of 3", func() error { return fleet.RingConsistent(ps) })
	A, B, H := ps[0], ps[1], ps[2]
	// The phone registers as bob; move the test's users so that bob's
	// home is H: find which node is home and name the nodes after it.
	switch homeOf(t, A, "sip:bob@"+polDomain) {
	case A.Name:
		A, H = H, A
	case B.Name:
		B, H = H, B
	}
	phonePort := fleet.FreeUDPPort(t, polPhone)
	registerBob(t, A, phonePort)
	uas := fleet.StartSIPp(t, "", "-sf", scenarios+"uas.xml", "-i", polPhone, "-p", strconv.Itoa(phonePort),
		"-m", "3", "-timeout", "30s", "-timeout_error")
	fleet.SIPp(t, B.SIP, "-sf", scenarios+"uac.xml", "-i", polCSCF, "-p", strconv.Itoa(fleet.FreeUDPPort(t, polCSCF)),
		"-s", "bob", "-key", "domain", polDomain, "-m", "3", "-d", "100")
	uas.Wait(t, 30*time.Second)
	for _, p := range ps {
		if strings.Contains(p.LogTail(1<<20), "node marker refused") {
			t.Fatalf("%s refused a node marker:\n%s", p.Name, p.LogTail(30))
		}
	}
}
