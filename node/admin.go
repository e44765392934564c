package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/node/reps"
	"github.com/dsn-ims/dsn/sip/registrar"
)

func (n *Node) startAdmin() error {
	if n.cfg.AdminListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.AdminListen)
	if err != nil {
		return fmt.Errorf("node: -admin %s: %w", n.cfg.AdminListen, err)
	}
	n.adminLn = ln
	n.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dsn_ring_records", Help: "Live records this node stores that it owns (home).",
		ConstLabels: prometheus.Labels{"role": "owned"},
	}, func() float64 { o, _ := n.recordCounts(); return float64(o) }))
	n.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dsn_ring_records", Help: "Live records this node stores that it owns (home).",
		ConstLabels: prometheus.Labels{"role": "replica"},
	}, func() float64 { _, r := n.recordCounts(); return float64(r) }))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", n.handleReady)
	mux.HandleFunc("GET /v1/status", n.handleStatus)
	mux.HandleFunc("GET /v1/lookup", n.handleLookup)
	mux.HandleFunc("GET /v1/bindings", n.handleBindings)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	if n.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	n.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Warn("node: admin server stopped", zap.Error(err))
		}
	}()
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// recordCounts returns the live records this node owns and holds as a
// replica.
func (n *Node) recordCounts() (owned, replica int) {
	ring := n.Ring()
	if ring == nil {
		return 0, 0
	}
	pred := ring.Predecessor()
	self := ring.Self().ID
	now := n.now().UnixNano()
	ring.LocalStore().Arc(self, self, func(id dht.ID, r dht.Record) bool {
		if r.Deleted || (r.Expires != 0 && r.Expires <= now) {
			return true
		}
		if pred.IsZero() || betweenIncl(id, pred.ID, self) {
			owned++
		} else {
			replica++
		}
		return true
	})
	return owned, replica
}

func betweenIncl(x, a, b dht.ID) bool {
	if a == b {
		return true
	}
	return x-a > 0 && x-a <= b-a
}

// Status is the body of GET /v1/status.
type Status struct {
	Name            string       `json:"name"`
	ID              string       `json:"id"`
	SIP             string       `json:"sip"`
	Cluster         string       `json:"cluster"`
	Domain          string       `json:"domain"`
	Predecessor     *PeerInfo    `json:"predecessor"`
	Successors      []PeerInfo   `json:"successors"`
	Fingers         []FingerInfo `json:"fingers"`
	Representative  bool         `json:"representative"`
	Representatives []PeerInfo   `json:"representatives"`
	Registrations   struct {
		Owned   int `json:"owned"`
		Replica int `json:"replica"`
	} `json:"registrations"`
	// DNS is the representative and neighbour-watch state (absent when
	// the node does not report to DNS).
	DNS     *reps.Status `json:"dns,omitempty"`
	Members int          `json:"members"`
	Uptime  string       `json:"uptime"`
}

// PeerInfo is a ring member as the admin API shows it.
type PeerInfo struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	Cluster string `json:"cluster"`
	SIP     string `json:"sip,omitempty"`
}

// FingerInfo is one distinct finger-table entry.
type FingerInfo struct {
	Index int      `json:"index"`
	Start string   `json:"start"`
	Node  PeerInfo `json:"node"`
}

func peerInfo(p dht.Peer) PeerInfo {
	return PeerInfo{Name: p.Name, ID: p.ID.String(), Cluster: p.Addr, SIP: p.Meta}
}

// StatusSnapshot returns what GET /v1/status shows.
func (n *Node) StatusSnapshot() Status {
	ring := n.Ring()
	st := Status{Name: n.cfg.Name, SIP: n.SIPAddr(), Cluster: n.ClusterAddr(), Domain: n.cfg.Domain}
	if ring == nil {
		return st
	}
	rs := ring.State()
	st.ID = rs.Self.ID.String()
	if !rs.Predecessor.IsZero() {
		p := peerInfo(rs.Predecessor)
		st.Predecessor = &p
	}
	st.Successors = []PeerInfo{}
	for _, s := range rs.Successors {
		st.Successors = append(st.Successors, peerInfo(s))
	}
	st.Fingers = []FingerInfo{}
	for _, f := range rs.Fingers {
		st.Fingers = append(st.Fingers, FingerInfo{Index: f.Index, Start: f.Start.String(), Node: peerInfo(f.Node)})
	}
	st.Representatives = []PeerInfo{}
	if mgr := n.reps.Load(); mgr != nil {
		ds := mgr.Status()
		st.DNS = &ds
		st.Representative = mgr.IsRep()
		for _, p := range mgr.Reps() {
			st.Representatives = append(st.Representatives, peerInfo(p))
		}
	}
	st.Registrations.Owned, st.Registrations.Replica = n.recordCounts()
	n.mu.Lock()
	if n.cl != nil {
		st.Members = len(n.cl.Members())
	}
	st.Uptime = n.now().Sub(n.joinedAt).Round(time.Second).String()
	n.mu.Unlock()
	return st
}

func (n *Node) handleStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.StatusSnapshot())
}

// Ready reports whether the node has joined the ring (and, as a
// representative, is registered in DNS), with the reason when not.
func (n *Node) Ready() (bool, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cl == nil || n.closed || n.leaving {
		return false, "not in the ring"
	}
	ring := n.cl.Node()
	if len(n.cfg.Cluster.Join) > 0 && len(ring.Successors()) == 0 {
		return false, "joined but no successor yet"
	}
	if mgr := n.reps.Load(); mgr != nil && mgr.IsRep() && !mgr.Registered() {
		return false, "representative, not yet registered in DNS"
	}
	return true, "ready"
}

func (n *Node) handleReady(w http.ResponseWriter, _ *http.Request) {
	ok, why := n.Ready()
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	w.WriteHeader(code)
	fmt.Fprintln(w, why)
}

// aorParam reads and canonicalises the aor query parameter.
func aorParam(r *http.Request) (string, error) {
	raw := r.URL.Query().Get("aor")
	if raw == "" {
		return "", errors.New("missing ?aor=sip:user@domain")
	}
	aor, err := registrar.CanonicalAOR(raw)
	if err != nil {
		return "", fmt.Errorf("aor %q: %v", raw, err)
	}
	return aor, nil
}

// LookupResult is the body of GET /v1/lookup.
type LookupResult struct {
	AOR      string     `json:"aor"`
	KeyID    string     `json:"key_id"`
	Home     PeerInfo   `json:"home"`
	Replicas []PeerInfo `json:"replicas"`
	Hops     int        `json:"hops"`
}

func (n *Node) handleLookup(w http.ResponseWriter, r *http.Request) {
	aor, err := aorParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ring := n.Ring()
	if ring == nil {
		writeError(w, http.StatusServiceUnavailable, "not in the ring")
		return
	}
	id := dht.HashKey(aor)
	res, err := ring.Lookup(r.Context(), id)
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	out := LookupResult{AOR: aor, KeyID: id.String(), Home: peerInfo(res.Owner), Hops: res.Hops, Replicas: []PeerInfo{}}
	for _, s := range lookupReplicas(r.Context(), ring, res) {
		out.Replicas = append(out.Replicas, peerInfo(s))
	}
	writeJSON(w, http.StatusOK, out)
}

// lookupReplicas names the replica nodes of a lookup's owner: its first
// Replicas-1 successors. The lookup's own list can be short (the node that
// answered knows only the entries after the owner in its successor list,
// which stops before itself); the locator completes it.
func lookupReplicas(ctx context.Context, ring *dht.Node, res dht.LookupResult) []dht.Peer {
	return (&ringLocator{ring: ring}).replicaHolders(ctx, res, ring.Config().Replicas-1)
}

// BindingInfo is one contact in GET /v1/bindings.
type BindingInfo struct {
	Contact    string   `json:"contact"`
	Expires    int      `json:"expires"`
	Q          string   `json:"q,omitempty"`
	Path       []string `json:"path,omitempty"`
	Received   string   `json:"received,omitempty"`
	CallID     string   `json:"call_id"`
	CSeq       uint32   `json:"cseq"`
	Registered string   `json:"registered"`
}

func (n *Node) handleBindings(w http.ResponseWriter, r *http.Request) {
	aor, err := aorParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if q := r.URL.Query().Get("local"); q == "1" || q == "true" {
		n.handleLocalBindings(w, aor)
		return
	}
	n.mu.Lock()
	reg := n.reg
	n.mu.Unlock()
	if reg == nil {
		writeError(w, http.StatusServiceUnavailable, "registrar not running")
		return
	}
	bs, err := reg.Lookup(r.Context(), aor)
	switch {
	case errors.Is(err, registrar.ErrNotFound):
		writeError(w, http.StatusNotFound, "no registration for "+aor)
		return
	case errors.Is(err, registrar.ErrNoBindings):
		bs = nil
	case err != nil:
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, newBindingsBody(aor, bs, n.now()))
}

// bindingsBody is the body of GET /v1/bindings. Version is set only for
// ?local=1 (the version of this node's copy).
type bindingsBody struct {
	AOR      string        `json:"aor"`
	Version  uint64        `json:"version,omitempty"`
	Bindings []BindingInfo `json:"bindings"`
}

func newBindingsBody(aor string, bs []registrar.Binding, now time.Time) bindingsBody {
	out := bindingsBody{AOR: aor, Bindings: []BindingInfo{}}
	for _, b := range bs {
		bi := BindingInfo{Contact: b.Contact, Expires: int(b.Remaining(now)), Path: b.Path,
			CallID: b.CallID, CSeq: b.CSeq, Registered: b.Registered.UTC().Format(time.RFC3339)}
		if q := b.QString(); q != "" {
			bi.Q = q
		}
		if b.Received.Addr.IsValid() {
			bi.Received = b.Received.Transport + ":" + b.Received.Addr.String()
		}
		out.Bindings = append(out.Bindings, bi)
	}
	return out
}

// handleLocalBindings answers GET /v1/bindings?aor=...&local=1 from this
// node's own copy of the record (owned or replica), without asking the
// ring: 404 when this node holds no live copy. Tests use it to count the
// copies of an AOR across the nodes.
func (n *Node) handleLocalBindings(w http.ResponseWriter, aor string) {
	ring := n.Ring()
	if ring == nil {
		writeError(w, http.StatusServiceUnavailable, "not in the ring")
		return
	}
	now := n.now()
	rec, ok := ring.LocalStore().Get(aor)
	if !ok || rec.Deleted || (rec.Expires != 0 && rec.Expires <= now.UnixNano()) {
		writeError(w, http.StatusNotFound, "no local copy of "+aor)
		return
	}
	set, err := registrar.UnmarshalBindings(rec.Value)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	body := newBindingsBody(aor, set.Live(now), now)
	body.Version = rec.Version
	writeJSON(w, http.StatusOK, body)
}
