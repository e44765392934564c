package main

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemoSmallFleet runs the whole demo with small numbers: a 3-node ring,
// 10 phones, 30 calls before and after the crash of a representative.
func TestDemoSmallFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node fleet, 10 phones and about 90 calls on loopback (about 5 s)")
	}
	logFile := filepath.Join(t.TempDir(), "nodes.log")
	var out, errb bytes.Buffer
	code := run([]string{"-nodes", "3", "-phones", "10", "-calls", "30", "-ip", "127.0.0.61",
		"-sip-port", "0", "-cluster-port", "0", "-timeout", "40s", "-seed", "7", "-log-file", logFile}, &out, &errb)
	t.Logf("output:\n%s", out.String())
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, errb.String())
	}
	for _, want := range []string{
		"ring of 3 formed",
		"representatives: sn",
		"ENUM provisioned by TSIG-signed UPDATE: *.5.5.5.1.e164.arpa.",
		"10 phones registered",
		"calls: 30/30 ok",
		"killed representative sn",
		"DNS forgot sn",
		"replacement sn",
		"ring repaired after",
		"calls during failover:",
		"calls after failover: 30/30 ok",
		"failover (representative sn",
		"shutdown: 2/2 nodes left gracefully",
		"DNS publishes no representative",
		"result: OK",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "PROBLEM") {
		t.Error("output reports a problem")
	}
	if b, err := os.ReadFile(logFile); err != nil || !bytes.Contains(b, []byte(`"node: serving"`)) {
		t.Errorf("node log file %s: %v, %d bytes without the start-up line", logFile, err, len(b))
	}
}

func TestFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-nodes", "2"}, "-nodes 2"},
		{[]string{"-reps", "5"}, "-reps 5"},
		{[]string{"-phones", "0"}, "-phones 0"},
		{[]string{"-calls", "0"}, "-calls 0"},
		{[]string{"-ip", "10.0.0.1"}, "IPv4 loopback"},
		{[]string{"-ip", "127.0.0.254"}, "no room"},
		{[]string{"-prefix", "abc"}, "-prefix"},
		{[]string{"-log-level", "loud"}, "-log-level"},
		{[]string{"-timeout", "0s"}, "must be positive"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"-no-such-flag"}, "not defined"},
	} {
		var out, errb bytes.Buffer
		if code := run(c.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming %q", c.args, code, errb.String(), c.want)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "Usage: dsn-demo") {
		t.Errorf("-h: exit %d, %q", code, errb.String())
	}
}

// TestClassify checks the causes given to failed failover calls.
func TestClassify(t *testing.T) {
	victim := &member{Name: "sn2", SIP: "127.0.0.12:5060"}
	dead := netip.MustParseAddrPort(victim.SIP)
	live := netip.MustParseAddrPort("127.0.0.13:5060")
	at := time.Unix(1000, 0)
	homed, other, edged := &phone{Number: "+15550000001"}, &phone{Number: "+15550000002"}, &phone{Number: "+15550000003"}
	cr := &crash{victim: victim, addr: dead, at: at, ringAt: at.Add(time.Second),
		homeBefore: map[*phone]string{homed: "sn2", other: "sn3", edged: "sn3"}}
	failed := errors.New("no final response")
	for _, c := range []struct {
		name      string
		cl        call
		why       string
		explained bool
	}{
		{"ok", call{OK: true, Callee: other}, "", true},
		{"only the dead target, silent", call{Callee: other, Started: at.Add(100 * time.Millisecond),
			Attempts: []attempt{{Target: dead, Silent: true}}, Err: failed}, whyDeadTarget, true},
		{"in flight at the dead node", call{Callee: other, Via: "sn2", Started: at.Add(-10 * time.Millisecond),
			Attempts: []attempt{{Target: dead, Code: 408}}, Err: failed}, whyInFlight, true},
		{"callee's edge dead", call{Callee: edged, Edge: "sn2", Via: "sn3", Started: at.Add(200 * time.Millisecond),
			Attempts: []attempt{{Target: live}}, Err: failed}, whyEdge, true},
		{"callee homed on the dead node before repair", call{Callee: homed, Via: "sn3", Started: at.Add(500 * time.Millisecond),
			Attempts: []attempt{{Target: live}}, Err: failed}, whyHome, true},
		{"callee homed on the dead node after repair", call{Callee: homed, Via: "sn3", Started: at.Add(2 * time.Second),
			Attempts: []attempt{{Target: live}}, Err: failed}, "unexplained: no final response", false},
		{"live target silent", call{Callee: other, Started: at.Add(100 * time.Millisecond),
			Attempts: []attempt{{Target: dead, Silent: true}, {Target: live, Silent: true}}, Err: failed}, "unexplained: no final response", false},
		{"unrelated failure", call{Callee: other, Via: "sn3", Started: at.Add(100 * time.Millisecond),
			Attempts: []attempt{{Target: live, Code: 500}}, Err: failed}, "unexplained: no final response", false},
	} {
		why, explained := cr.classify(&c.cl)
		if why != c.why || explained != c.explained {
			t.Errorf("%s: got (%q, %v), want (%q, %v)", c.name, why, explained, c.why, c.explained)
		}
	}
}

// TestTallyAndSummary checks the one-line account and the table.
func TestTallyAndSummary(t *testing.T) {
	tl := newTally()
	p := &phone{Number: "+15550000001"}
	tl.add(&call{OK: true, Callee: p, Via: "sn2", Setup: 4 * time.Millisecond}, "", true)
	tl.add(&call{OK: true, Callee: p, Via: "sn4", Setup: 1002 * time.Millisecond,
		Attempts: []attempt{{Silent: true}, {Code: 200}}}, "", true)
	tl.add(&call{Callee: p, Err: errors.New("x")}, whyEdge, true)
	line := tl.line()
	for _, want := range []string{"2/3 ok", "via sn2: 1, sn4: 1", "1 completed on the next SRV target", "1 failed: " + whyEdge + ": 1"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	s := &summary{Phones: 1, Phases: []phaseResult{{"during failover", tl}},
		Failover: &failoverResult{Dead: "sn2", KilledAt: "+3.00 s", DNSForgot: 620 * time.Millisecond, DNSForgotOK: true, Calls: tl},
		Nodes:    []nodeRow{{Name: "sn2", SIP: "127.0.0.12:5060", Killed: true}, {Name: "sn3", SIP: "127.0.0.13:5060", Rep: true, Owned: 3, StatusAvailable: true}}}
	out := s.render()
	for _, want := range []string{"during failover", "0.62 s", "not within the limit", "killed", "rep", whyEdge} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}
