package node

import (
	"github.com/dsn-ims/dsn/sip/proxy"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics is the node's Prometheus instrumentation, on a registry of its
// own (no global state: several nodes can run in one process).
type metrics struct {
	reg         *prometheus.Registry
	sipRequests *prometheus.CounterVec
	ringEvents  *prometheus.CounterVec

	dnsUpdates    *prometheus.CounterVec
	deletionsSent *prometheus.CounterVec
	repFailures   *prometheus.CounterVec
	isRep         prometheus.Gauge
	repSetSize    prometheus.Gauge

	registrations prometheus.Counter
	calls         *prometheus.CounterVec
	callSeconds   *prometheus.HistogramVec
	lookups       *prometheus.CounterVec
	lookupHops    prometheus.Histogram
	failovers     *prometheus.CounterVec
}

// observeCall records one request the proxy finished.
func (m *metrics) observeCall(e proxy.Event) {
	m.sipRequests.WithLabelValues(e.Method).Inc()
	m.calls.WithLabelValues(e.Method, string(e.Route), string(e.Mode), string(e.Outcome())).Inc()
	if e.Method == "INVITE" {
		m.callSeconds.WithLabelValues(string(e.Route)).Observe(e.Duration.Seconds())
	}
	m.failovers.WithLabelValues("target").Add(float64(e.Failovers.Target))
	m.failovers.WithLabelValues("home").Add(float64(e.Failovers.Home))
	m.failovers.WithLabelValues("path").Add(float64(e.Failovers.Path))
}

// observeLookup records one home-node lookup.
func (m *metrics) observeLookup(hops int, err error) {
	if err != nil {
		m.lookups.WithLabelValues("error").Inc()
		return
	}
	m.lookups.WithLabelValues("ok").Inc()
	m.lookupHops.Observe(float64(hops))
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		sipRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dsn_sip_requests_total", Help: "SIP requests received, by method.",
		}, []string{"method"}),
		ringEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dsn_ring_events_total", Help: "Ring state changes seen by this node (neighbor-failed counts detected neighbour failures).",
		}, []string{"kind"}),
	}
	m.dnsUpdates = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dsn_dns_updates_total", Help: "DNS UPDATE attempts, by operation (publish/delete), result and sender role (self, leave, predecessor, successor, backup, reconcile).",
	}, []string{"op", "result", "role"})
	m.deletionsSent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dsn_dns_deletions_sent_total", Help: "Deletions of representative records this node submitted, by role.",
	}, []string{"role"})
	m.repFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dsn_representative_failures_detected_total", Help: "Representatives this node declared failed, by its watcher role.",
	}, []string{"role"})
	m.isRep = prometheus.NewGauge(prometheus.GaugeOpts{Name: "dsn_representative", Help: "1 when this node is a representative."})
	m.repSetSize = prometheus.NewGauge(prometheus.GaugeOpts{Name: "dsn_representatives", Help: "Size of the representative set this node computed."})
	m.registrations = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dsn_sip_registers_total", Help: "REGISTER requests handled by this node.",
	})
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dsn_sip_routed_total", Help: "Requests the proxy finished, by method, route (local, home, proxy, redirect, external, dialog, alternate, policy: refused or challenged by the call policy or the relay rule), route mode and outcome.",
	}, []string{"method", "route", "mode", "outcome"})
	m.callSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "dsn_sip_invite_seconds", Help: "Time from INVITE to final response, by route.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
	}, []string{"route"})
	m.lookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dsn_dht_lookups_total", Help: "Home-node lookups over the DHT, by result.",
	}, []string{"result"})
	m.lookupHops = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "dsn_dht_lookup_hops", Help: "Remote hops per home-node lookup.", Buckets: []float64{0, 1, 2, 3, 4, 5, 6, 8, 10, 15},
	})
	m.failovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dsn_sip_failovers_total", Help: "Next hops given up for the next one: target (RFC 3263), home (a silent home node, to its alternates), path (a dead Path edge, to the phone directly).",
	}, []string{"kind"})
	m.reg.MustRegister(m.registrations, m.calls, m.callSeconds, m.lookups, m.lookupHops, m.failovers)
	m.reg.MustRegister(m.dnsUpdates, m.deletionsSent, m.repFailures, m.isRep, m.repSetSize)
	m.reg.MustRegister(m.sipRequests, m.ringEvents,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
