package node

import (
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
	m.reg.MustRegister(m.dnsUpdates, m.deletionsSent, m.repFailures, m.isRep, m.repSetSize)
	m.reg.MustRegister(m.sipRequests, m.ringEvents,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
