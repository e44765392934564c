package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/dnsreport/dnsserver"
	"github.com/dsn-ims/dsn/node"
)

// runResult is one dsnctl invocation.
type runResult struct {
	code           int
	stdout, stderr string
}

// dsnctl runs the command with env as its whole environment.
func dsnctl(t *testing.T, env map[string]string, args ...string) runResult {
	t.Helper()
	var out, errb bytes.Buffer
	code := runEnv(args, func(k string) string { return env[k] }, &out, &errb)
	return runResult{code: code, stdout: out.String(), stderr: errb.String()}
}

func (r runResult) want(t *testing.T, code int) runResult {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

func (r runResult) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, r.stdout)
	}
}

func mustContain(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("output lacks %q:\n%s", sub, s)
		}
	}
}

// hasRows checks that out has, for each row, a line whose
// whitespace-separated fields are the row's (column widths ignored).
func hasRows(t *testing.T, out string, rows ...string) {
	t.Helper()
	lines := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		lines[strings.Join(strings.Fields(l), " ")] = true
	}
	for _, r := range rows {
		if !lines[r] {
			t.Errorf("output lacks the row %q:\n%s", r, out)
		}
	}
}

// fakeAdmin is a dsn-node admin API with canned answers.
type fakeAdmin struct {
	status   node.Status
	lookups  map[string]node.LookupResult
	bindings map[string][]node.BindingInfo
}

func peer(name, id, cluster, sip string) node.PeerInfo {
	return node.PeerInfo{Name: name, ID: id, Cluster: cluster, SIP: sip}
}

// start serves the fake on loopback and returns its address (host:port).
func (f *fakeAdmin) start(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	write := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) { write(w, 200, f.status) })
	mux.HandleFunc("GET /v1/lookup", func(w http.ResponseWriter, r *http.Request) {
		aor := r.URL.Query().Get("aor")
		lr, ok := f.lookups[aor]
		if !ok {
			write(w, 400, map[string]string{"error": "aor " + aor + ": bad"})
			return
		}
		write(w, 200, lr)
	})
	mux.HandleFunc("GET /v1/bindings", func(w http.ResponseWriter, r *http.Request) {
		aor := r.URL.Query().Get("aor")
		bs, ok := f.bindings[aor]
		if !ok {
			write(w, 404, map[string]string{"error": "no registration for " + aor})
			return
		}
		write(w, 200, map[string]any{"aor": aor, "bindings": bs})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// threeNodes is a consistent 3-node ring (IDs in ring order a < b < c);
// the status is node b's.
func threeNodes() (a, b, c node.PeerInfo) {
	return peer("sn-a", "1000000000000000", "127.0.0.1:7946", "127.0.0.1:5060"),
		peer("sn-b", "5000000000000000", "127.0.0.2:7946", "127.0.0.2:5060"),
		peer("sn-c", "a000000000000000", "127.0.0.3:7946", "127.0.0.3:5060")
}

// statusOf builds the status node self would report in the ring
// self -> succ -> ... with pred before it.
func statusOf(self, pred node.PeerInfo, succs []node.PeerInfo, domain string, reps []node.PeerInfo) node.Status {
	st := node.Status{Name: self.Name, ID: self.ID, SIP: self.SIP, Cluster: self.Cluster, Domain: domain,
		Predecessor: &pred, Successors: succs, Representatives: reps, Members: 3, Uptime: "1m0s"}
	for i, s := range succs {
		st.Fingers = append(st.Fingers, node.FingerInfo{Index: 60 + i, Start: s.ID, Node: s})
	}
	st.Registrations.Owned, st.Registrations.Replica = 4, 8
	return st
}

// dnsFixture is the embedded DNS server with the dev zones of domain and
// e164.arpa. and a key file for it.
type dnsFixture struct {
	addr    string
	key     dnsreport.Key
	keyFile string
	client  *dnsreport.Client
}

func startDNS(t *testing.T, domain string) *dnsFixture {
	t.Helper()
	key, err := dnsreport.GenerateKey("k", "", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := dnsserver.Start(dnsserver.DevConfig(domain, "", key), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	keyFile := filepath.Join(t.TempDir(), "k.key")
	if err := os.WriteFile(keyFile, []byte(key.BINDFormat()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := dnsreport.FastConfig().Client
	cfg.Servers = []string{srv.Addr()}
	client, err := dnsreport.NewClient(cfg, &key)
	if err != nil {
		t.Fatal(err)
	}
	return &dnsFixture{addr: srv.Addr(), key: key, keyFile: keyFile, client: client}
}

// publish puts a representative's records in DNS by hand, as a node
// would.
func (d *dnsFixture) publish(t *testing.T, zone, domain, name, sip string) {
	t.Helper()
	label, err := dnsreport.NodeLabel(name)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(sip)
	rep := dnsreport.Representative{Zone: zone, Domain: domain, Label: label, IPs: []netip.Addr{ap.Addr()},
		Port: ap.Port(), TTL: 30 * time.Second, Priority: 10, Weight: 10}
	ch, err := rep.PublishChange()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.client.Update(ctx, ch); err != nil {
		t.Fatal(err)
	}
}
