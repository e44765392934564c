package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dsn-ims/dsn/node"
)

func TestStatus(t *testing.T) {
	a, b, c := threeNodes()
	f := &fakeAdmin{status: statusOf(b, a, []node.PeerInfo{c, a}, "dsn.test", []node.PeerInfo{a, b})}
	f.status.Representative = true
	addr := f.start(t)

	out := dsnctl(t, nil, "-admin", addr, "status").want(t, 0).stdout
	mustContain(t, out, "name             sn-b", "id               5000000000000000", "domain           dsn.test",
		"predecessor      sn-a (1000000000000000) 127.0.0.1:7946", "successors       sn-c, sn-a",
		"fingers          2 distinct", "representative   yes", "sn-a 127.0.0.1:5060, sn-b 127.0.0.2:5060",
		"registrations    4 owned, 8 replica")

	var st node.Status
	dsnctl(t, nil, "status", "-admin", addr, "-o", "json").want(t, 0).decode(t, &st)
	if st.Name != "sn-b" || st.Predecessor.Name != "sn-a" || len(st.Successors) != 2 || len(st.Representatives) != 2 || st.Registrations.Replica != 8 {
		t.Errorf("json status %+v", st)
	}
}

func TestStatusFromEnvironment(t *testing.T) {
	_, b, _ := threeNodes()
	f := &fakeAdmin{status: node.Status{Name: b.Name, ID: b.ID}}
	addr := f.start(t)
	dsnctl(t, map[string]string{envAdmin: "http://" + addr + "/"}, "status").want(t, 0)
	// The flag wins over the environment.
	r := dsnctl(t, map[string]string{envAdmin: "127.0.0.1:1"}, "-admin", addr, "status").want(t, 0)
	mustContain(t, r.stdout, "sn-b")
}

func TestReps(t *testing.T) {
	a, b, c := threeNodes()
	f := &fakeAdmin{status: statusOf(b, a, []node.PeerInfo{c}, "dsn.test", []node.PeerInfo{a, b})}
	addr := f.start(t)
	out := dsnctl(t, nil, "-admin", addr, "reps").want(t, 0).stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("reps table:\n%s", out)
	}
	mustContain(t, lines[1], "sn-a", "1000000000000000", "127.0.0.1:5060", "127.0.0.1:7946")
	mustContain(t, lines[2], "sn-b", "127.0.0.2:5060", "*")

	var rr repsResult
	dsnctl(t, nil, "-admin", addr, "-o", "json", "reps").want(t, 0).decode(t, &rr)
	if rr.Node != "sn-b" || rr.Domain != "dsn.test" || len(rr.Representatives) != 2 || rr.Representatives[1].SIP != "127.0.0.2:5060" {
		t.Errorf("json reps %+v", rr)
	}

	f.status.Representatives = nil
	out = dsnctl(t, nil, "-admin", addr, "reps").want(t, 0).stdout
	mustContain(t, out, "sees no representatives")
	dsnctl(t, nil, "-admin", addr, "-o", "json", "reps").want(t, 0).decode(t, &rr)
	if rr.Representatives == nil || len(rr.Representatives) != 0 {
		t.Errorf("json reps without representatives: %+v (want an empty list)", rr)
	}
}

func TestRingView(t *testing.T) {
	a, b, c := threeNodes()
	f := &fakeAdmin{status: statusOf(b, a, []node.PeerInfo{c, a}, "dsn.test", nil)}
	addr := f.start(t)
	out := dsnctl(t, nil, "-admin", addr, "ring").want(t, 0).stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"ROLE", "self ", "predecessor", "successor 1", "successor 2", "finger 60", "finger 61"}
	if len(lines) != len(want) {
		t.Fatalf("ring table has %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
	}
	mustContain(t, lines[3], "sn-c", "a000000000000000", "127.0.0.3:7946", "127.0.0.3:5060")

	var v ringView
	dsnctl(t, nil, "-admin", addr, "ring", "-o", "json").want(t, 0).decode(t, &v)
	if v.Self.Name != "sn-b" || v.Predecessor == nil || v.Predecessor.Name != "sn-a" || len(v.Successors) != 2 || len(v.Fingers) != 2 {
		t.Errorf("json ring %+v", v)
	}
}

func TestRingAll(t *testing.T) {
	a, b, c := threeNodes()
	reps := []node.PeerInfo{a, c}
	fa := &fakeAdmin{status: statusOf(a, c, []node.PeerInfo{b, c}, "dsn.test", reps)}
	fb := &fakeAdmin{status: statusOf(b, a, []node.PeerInfo{c, a}, "dsn.test", reps)}
	fc := &fakeAdmin{status: statusOf(c, b, []node.PeerInfo{a, b}, "dsn.test", reps)}
	addrs := []string{fc.start(t), fa.start(t), fb.start(t)} // any order

	all := strings.Join(addrs, ",")
	out := dsnctl(t, nil, "ring", "-all", all).want(t, 0).stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 4 || !strings.HasPrefix(lines[1], "sn-a") || !strings.HasPrefix(lines[2], "sn-b") || !strings.HasPrefix(lines[3], "sn-c") {
		t.Fatalf("not sorted by ring ID:\n%s", out)
	}
	mustContain(t, out, "ring consistent: 3 nodes")

	var res ringAllResult
	dsnctl(t, nil, "-o", "json", "ring", "-all", all).want(t, 0).decode(t, &res)
	if !res.Consistent || len(res.Nodes) != 3 || res.Nodes[0].Successor != "sn-b" || res.Nodes[2].Predecessor != "sn-b" || len(res.Problems) != 0 {
		t.Errorf("json ring -all %+v", res)
	}

	// b still points at a as successor: inconsistent, exit 1.
	fb.status.Successors = []node.PeerInfo{a}
	out = dsnctl(t, nil, "ring", "-all", all).want(t, 1).stdout
	mustContain(t, out, "ring INCONSISTENT", "sn-b: successor is sn-a", "want sn-c")
	fb.status.Successors = []node.PeerInfo{c, a}

	// Representative sets that differ are reported.
	fc.status.Representatives = []node.PeerInfo{a}
	out = dsnctl(t, nil, "ring", "-all", all).want(t, 1).stdout
	mustContain(t, out, "representative sets differ")
	fc.status.Representatives = reps

	// Leaving a node out of -all is named as such.
	out = dsnctl(t, nil, "ring", "-all", addrs[1]+","+addrs[2]).want(t, 1).stdout
	mustContain(t, out, "not among the nodes asked")

	// A node that cannot be asked: exit 2, the others still shown.
	dead := deadAddr(t)
	out = dsnctl(t, nil, "ring", "-all", all+","+dead).want(t, 2).stdout
	mustContain(t, out, "unreachable", "sn-a", "cannot be asked")
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestCheckRingSingleNode(t *testing.T) {
	a, b, _ := threeNodes()
	alone := node.Status{Name: a.Name, ID: a.ID}
	if res := checkRing([]string{"x"}, []node.Status{alone}, []error{nil}); !res.Consistent {
		t.Errorf("one node alone: %v", res.Problems)
	}
	alone.Successors = []node.PeerInfo{b}
	if res := checkRing([]string{"x"}, []node.Status{alone}, []error{nil}); res.Consistent {
		t.Error("a node whose successor is not listed passed")
	}
	dup := checkRing([]string{"x", "y"}, []node.Status{{Name: "a", ID: a.ID}, {Name: "a", ID: a.ID}}, []error{nil, nil})
	if dup.Consistent || !strings.Contains(strings.Join(dup.Problems, ";"), "same ring ID") {
		t.Errorf("duplicate IDs: %v", dup.Problems)
	}
	un := checkRing([]string{"x"}, []node.Status{{}}, []error{errors.New("refused")})
	if un.exitCode() != exitUsage {
		t.Errorf("unreachable exit %d", un.exitCode())
	}
}

func TestLookup(t *testing.T) {
	a, b, c := threeNodes()
	aor := "sip:alice@dsn.test"
	f := &fakeAdmin{lookups: map[string]node.LookupResult{
		aor: {AOR: aor, KeyID: "4711000000000000", Home: b, Replicas: []node.PeerInfo{c, a}, Hops: 2},
	}}
	addr := f.start(t)
	out := dsnctl(t, nil, "-admin", addr, "lookup", aor).want(t, 0).stdout
	mustContain(t, out, "aor   sip:alice@dsn.test", "key   4711000000000000", "hops  2")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	tail := lines[len(lines)-3:]
	for i, w := range []string{"home       sn-b", "replica 1  sn-c", "replica 2  sn-a"} {
		if !strings.HasPrefix(tail[i], w) {
			t.Errorf("row %d = %q, want prefix %q", i, tail[i], w)
		}
	}
	var lr node.LookupResult
	dsnctl(t, nil, "-admin", addr, "lookup", aor, "-o", "json").want(t, 0).decode(t, &lr)
	if lr.Home.Name != "sn-b" || len(lr.Replicas) != 2 || lr.Hops != 2 || lr.KeyID != "4711000000000000" {
		t.Errorf("json lookup %+v", lr)
	}
	// The node refuses the AOR: its message is shown, exit 2.
	r := dsnctl(t, nil, "-admin", addr, "lookup", "sip:bob@dsn.test").want(t, 2)
	mustContain(t, r.stderr, "HTTP 400", "aor sip:bob@dsn.test: bad")
	// Not a SIP URI: refused before asking.
	r = dsnctl(t, nil, "-admin", addr, "lookup", "alice").want(t, 2)
	mustContain(t, r.stderr, "want a SIP URI like sip:alice@dsn.example.com")
}

func TestBindings(t *testing.T) {
	aor := "sip:alice@dsn.test"
	f := &fakeAdmin{bindings: map[string][]node.BindingInfo{
		aor: {{Contact: "<sip:alice@192.0.2.7:5062>", Expires: 3590, Q: "0.5", Received: "udp:192.0.2.7:5062",
			Path: []string{"<sip:127.0.0.2:5060;lr>"}, CallID: "c1", CSeq: 7, Registered: "2026-01-02T03:04:05Z"}},
		"sip:gone@dsn.test": {},
	}}
	addr := f.start(t)
	out := dsnctl(t, nil, "-admin", addr, "bindings", aor).want(t, 0).stdout
	mustContain(t, out, "CONTACT", "EXPIRES", "<sip:alice@192.0.2.7:5062>", "3590s", "0.5", "udp:192.0.2.7:5062",
		"<sip:127.0.0.2:5060;lr>", "c1", "2026-01-02T03:04:05Z")
	var br bindingsReply
	dsnctl(t, nil, "-admin", addr, "-o", "json", "bindings", aor).want(t, 0).decode(t, &br)
	if br.AOR != aor || len(br.Bindings) != 1 || br.Bindings[0].CSeq != 7 || br.Bindings[0].Expires != 3590 {
		t.Errorf("json bindings %+v", br)
	}
	out = dsnctl(t, nil, "-admin", addr, "bindings", "sip:gone@dsn.test").want(t, 0).stdout
	mustContain(t, out, "no live binding")
	// No registration at all: exit 1 with the node's message.
	r := dsnctl(t, nil, "-admin", addr, "bindings", "sip:nobody@dsn.test").want(t, 1)
	mustContain(t, r.stderr, "HTTP 404", "no registration for sip:nobody@dsn.test")
}

func TestAdminUnreachable(t *testing.T) {
	r := dsnctl(t, nil, "-admin", deadAddr(t), "status").want(t, 2)
	mustContain(t, r.stderr, "cannot reach the admin API", "DSNCTL_ADMIN")
	// Something that is not a dsn-node admin API.
	f := &fakeAdmin{}
	addr := f.start(t)
	r = dsnctl(t, nil, "-admin", addr, "bindings", "sip:x@y").want(t, 1)
	r = dsnctl(t, nil, "-admin", "ftp://x", "status").want(t, 2)
	mustContain(t, r.stderr, "want host:port")
}

func TestReady(t *testing.T) {
	ready := true
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready {
			fmt.Fprintln(w, "ready")
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "joined but no successor yet")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	r := dsnctl(t, nil, "-admin", addr, "ready").want(t, 0)
	if r.stdout != "ready\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	ready = false
	r = dsnctl(t, nil, "-admin", addr, "ready").want(t, 1)
	mustContain(t, r.stdout, "not ready: joined but no successor yet")
	var rr readyResult
	dsnctl(t, nil, "-admin", addr, "-o", "json", "ready").want(t, 1).decode(t, &rr)
	if rr.Ready || rr.Reason != "joined but no successor yet" {
		t.Errorf("json %+v", rr)
	}
	dsnctl(t, nil, "-admin", deadAddr(t), "ready").want(t, 2)
}
