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
	m.reg.MustRegister(m.sipRequests, m.ringEvents,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
