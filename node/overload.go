package node

import (
	"context"
	"errors"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/sip/overload"
	"github.com/dsn-ims/dsn/sip/proxy"
)

// overloadGuard is the node's admission control (sip/overload) and the
// load it decides on: requests in the proxy's and the registrar's
// handlers, goroutines, and the scheduling delay its driver samples.
type overloadGuard struct {
	gate       *overload.Gate
	log        *zap.Logger
	proxy      atomic.Pointer[proxy.Proxy]
	registers  atomic.Int64  // REGISTERs in the registrar's handler
	queueDelay atomic.Int64  // nanoseconds, last sample
	heap       atomic.Uint64 // live heap bytes, last sample
}

// overloadTick is how often the overload driver samples the load.
const overloadTick = 100 * time.Millisecond

// startOverload creates the gate, registers its metrics and starts its
// driver, which stops with ctx: every 100 ms it samples the scheduling
// delay (the gate sees the delay sustained over Config.QueueDelayFor)
// and the live heap (collecting garbage first when there is no reading
// yet or it is at the limit, at most once a second), expires the gate's
// transaction window, and after an overload or a burst it returns free
// memory to the OS (overload.Recovery).
func (n *Node) startOverload(ctx context.Context) (*overloadGuard, error) {
	g := &overloadGuard{log: n.log.Named("overload")}
	cfg := n.cfg.Overload
	om := newOverloadMetrics(g)
	gate, err := overload.New(cfg, overload.Deps{Load: g.load, Now: n.now, Metrics: om})
	if err != nil {
		return nil, err
	}
	g.gate = gate
	for _, c := range om.collectors() {
		if err := n.metrics.reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			g.log.Warn("node: overload metric already registered; keeping the existing one", zap.Error(err))
		}
	}
	sampler := overload.NewSampler(0.99)
	sustained := overload.NewSustained(int(cfg.QueueDelayFor / overloadTick))
	rec := overload.NewRecovery(cfg)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		measured := false
		t := time.NewTicker(overloadTick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			delay, heap := sampler.Sample()
			if !measured || rec.CollectDue(heap, n.now()) {
				// The reading is from the last collection; an idle node
				// makes none (a new one none at all). Refresh it rather
				// than shed on it.
				runtime.GC()
				_, heap = sampler.Sample()
				measured = true
			}
			g.queueDelay.Store(int64(sustained.Add(delay)))
			g.heap.Store(heap)
			// Expire the transaction window when no request comes to do it.
			gate.Prune()
			if st := gate.Stats(); rec.Due(st.LastShed, n.now(), st.Transactions) {
				debug.FreeOSMemory()
				g.log.Info("node: after overload: free memory returned to the OS",
					zap.Time("last_shed", st.LastShed), zap.Int64("shed_total", st.Rejected))
			}
		}
	}()
	return g, nil
}

func (g *overloadGuard) load() overload.Load {
	l := overload.Load{
		InFlight:   int(g.registers.Load()),
		Goroutines: runtime.NumGoroutine(),
		QueueDelay: time.Duration(g.queueDelay.Load()),
		HeapBytes:  g.heap.Load(),
	}
	if px := g.proxy.Load(); px != nil {
		l.InFlight += px.InFlight()
	}
	return l
}

// countRegisters counts h's requests in progress as in flight.
func (g *overloadGuard) countRegisters(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		g.registers.Add(1)
		defer g.registers.Add(-1)
		h(req, tx)
	}
}

// overloadMetrics exports the gate's counts:
//
//	dsn_sip_overload_rejected_total{method,reason}  requests answered 503 for overload
//	dsn_sip_input_dropped_total{transport,reason}   input discarded (oversized, malformed, TCP limits and timeouts)
//	dsn_sip_tcp_connections                         inbound SIP TCP connections held
//	dsn_sip_inflight_requests                       requests being handled (the gate's InFlight)
//	dsn_sip_queue_delay_seconds                     p99 scheduling delay sustained over the last second
//	dsn_sip_transactions                            requests in the gate's transaction window
//	dsn_heap_live_bytes                             live heap after the last garbage collection
type overloadMetrics struct {
	rejected *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	conns    prometheus.Gauge
	inflight prometheus.GaugeFunc
	delay    prometheus.GaugeFunc
	txs      prometheus.GaugeFunc
	heap     prometheus.GaugeFunc
}

var _ overload.Metrics = (*overloadMetrics)(nil)

func newOverloadMetrics(g *overloadGuard) *overloadMetrics {
	return &overloadMetrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dsn_sip_overload_rejected_total", Help: "Requests answered 503 with Retry-After because the node was at a limit, by method and limit (inflight, goroutines, queue_delay, heap, rate, transactions; repeat: a retransmission of a request already answered 503).",
		}, []string{"method", "reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dsn_sip_input_dropped_total", Help: "SIP input discarded before parsing, by transport and reason (oversized, malformed, conn_limit, conn_limit_ip, idle_timeout, message_timeout, write_timeout).",
		}, []string{"transport", "reason"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dsn_sip_tcp_connections", Help: "Inbound SIP TCP connections held.",
		}),
		inflight: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dsn_sip_inflight_requests", Help: "SIP requests being handled by the proxy and the registrar.",
		}, func() float64 { return float64(g.load().InFlight) }),
		delay: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dsn_sip_queue_delay_seconds", Help: "Time runnable goroutines waited for a CPU (99th percentile of each 100 ms), the least over the last second: what the overload gate compares with -max-queue-delay.",
		}, func() float64 { return time.Duration(g.queueDelay.Load()).Seconds() }),
		txs: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dsn_sip_transactions", Help: "Requests handed to the SIP stack within the last -sip-tx-linger, each weighing 1 and 1 more per 2 KiB of its size (the overload gate's transaction window, at most -max-transactions).",
		}, func() float64 {
			if gate := g.gate; gate != nil {
				return float64(gate.Stats().Transactions)
			}
			return 0
		}),
		heap: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dsn_heap_live_bytes", Help: "Live heap after the last garbage collection (runtime/metrics /gc/heap/live:bytes), as the overload gate last sampled it.",
		}, func() float64 { return float64(g.heap.Load()) }),
	}
}

func (m *overloadMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.rejected, m.dropped, m.conns, m.inflight, m.delay, m.txs, m.heap}
}

func (m *overloadMetrics) Rejected(method string, r overload.Reason) {
	m.rejected.WithLabelValues(methodLabel(method), string(r)).Inc()
}

func (m *overloadMetrics) Dropped(transport string, why overload.Drop) {
	m.dropped.WithLabelValues(transport, string(why)).Inc()
}

func (m *overloadMetrics) Conns(n int) { m.conns.Set(float64(n)) }

// methodLabel keeps the label set bounded: a method name comes off the
// wire.
func methodLabel(m string) string {
	switch m {
	case "INVITE", "REGISTER", "MESSAGE", "SUBSCRIBE", "OPTIONS", "NOTIFY", "PUBLISH", "REFER", "INFO", "UPDATE", "PRACK", "BYE":
		return m
	}
	return "other"
}
