package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/dht/cluster"
	"github.com/dsn-ims/dsn/sip/registrar"
)

func memRing(t *testing.T, now func() time.Time) *dht.Node {
	t.Helper()
	net := dht.NewMemNetwork()
	self := dht.Peer{ID: dht.NodeID("a"), Name: "a", Addr: "mem:a"}
	n, err := dht.New(dht.DefaultConfig(), self, dht.Deps{Transport: net.Transport("mem:a"), Now: now, Rand: rand.New(rand.NewSource(1))})
	if err != nil {
		t.Fatal(err)
	}
	net.Serve("mem:a", n)
	n.Create()
	return n
}

func TestRingStoreRoundTripAndConflict(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	s := &ringStore{ring: memRing(t, clock), now: clock}
	ctx := context.Background()
	set, v, err := s.Get(ctx, "sip:alice@d.test")
	if err != nil || v != 0 || len(set.Bindings) != 0 {
		t.Fatalf("empty get: %v %d %+v", err, v, set)
	}
	in := registrar.BindingSet{RetainUntil: now.Add(time.Hour), Bindings: []registrar.Binding{{
		Contact: "sip:alice@10.0.0.1:5060", Expires: now.Add(time.Hour), CallID: "c1", CSeq: 1, Q: registrar.QNone,
	}}}
	if err := s.Put(ctx, "sip:alice@d.test", in, 0); err != nil {
		t.Fatal(err)
	}
	got, v1, err := s.Get(ctx, "sip:alice@d.test")
	if err != nil || v1 == 0 || len(got.Bindings) != 1 || got.Bindings[0].Contact != in.Bindings[0].Contact {
		t.Fatalf("get: %v %d %+v", err, v1, got)
	}
	// A stale writer loses with registrar.ErrConflict.
	if err := s.Put(ctx, "sip:alice@d.test", in, 0); !errors.Is(err, registrar.ErrConflict) {
		t.Fatalf("want ErrConflict, got %v", err)
	}
	// A set retained until now deletes the record.
	if err := s.Put(ctx, "sip:alice@d.test", registrar.BindingSet{RetainUntil: now}, v1); err != nil {
		t.Fatal(err)
	}
	if _, v, _ := s.Get(ctx, "sip:alice@d.test"); v != 0 {
		t.Fatalf("deleted record still has version %d", v)
	}
}

func TestConfigValidateNamesFlags(t *testing.T) {
	c := DefaultConfig()
	c.SIPAdvertise = "example.com:5060"
	err := c.Validate()
	for _, want := range []string{"-name", "-domain", "-sip-advertise"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want error naming %s, got %v", want, err)
		}
	}
}

func startNode(t *testing.T) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Name = "t1"
	cfg.Domain = "dsn.test"
	cfg.SIPListen = "127.0.0.1:0"
	cfg.AdminListen = "127.0.0.1:0"
	cfg.Cluster = cluster.LocalConfig("t1")
	cfg.Pprof = true
	n, err := New(cfg, Deps{ClusterKey: []byte("0123456789abcdef"), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func get(t *testing.T, n *Node, path string) (int, string) {
	t.Helper()
	res, err := http.Get("http://" + n.AdminAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestAdminAPI(t *testing.T) {
	n := startNode(t)
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/healthz", 200, "ok"},
		{"/readyz", 200, "ready"},
		{"/v1/status", 200, `"name": "t1"`},
		{"/v1/lookup?aor=sip:Alice@DSN.test", 200, `"aor": "sip:Alice@dsn.test"`},
		{"/v1/lookup", 400, "missing ?aor="},
		{"/v1/lookup?aor=%3Cnot-a-uri", 400, "error"},
		{"/v1/bindings?aor=sip:nobody@dsn.test", 404, "no registration"},
		{"/metrics", 200, `dsn_ring_records{role="owned"}`},
		{"/debug/pprof/", 200, "goroutine"},
	} {
		code, body := get(t, n, c.path)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %d %q; want %d containing %q", c.path, code, body, c.code, c.want)
		}
	}
	var st Status
	_, body := get(t, n, "/v1/status")
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.ID != dht.NodeID("t1").String() || st.SIP != n.SIPAddr() {
		t.Fatalf("status: %v %+v", err, st)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ok, _ := n.Ready(); ok {
		t.Fatal("ready after shutdown")
	}
}
