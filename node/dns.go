package node

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/node/reps"
)

// dnsEnabled reports whether this node reports to DNS (-dns-server set).
func (n *Node) dnsEnabled() bool { return len(n.cfg.DNS.Client.Servers) > 0 }

// startDNS builds the resolver and, when DNS reporting is on, the UPDATE
// client, the retrying Reporter and the representative Manager, and runs
// the last two until the node stops.
func (n *Node) startDNS(ctx context.Context) error {
	rng := mrand.New(mrand.NewPCG(uint64(n.now().UnixNano()), uint64(len(n.cfg.Name))))
	res, err := dnsreport.NewResolver(n.cfg.DNS.Resolver, nil, rng)
	if err != nil {
		return fmt.Errorf("node: -resolver: %w", err)
	}
	n.resolver = res
	if !n.dnsEnabled() {
		return nil
	}
	client, err := dnsreport.NewClient(n.cfg.DNS.Client, n.deps.TSIGKey)
	if err != nil {
		return fmt.Errorf("node: -dns-server/-tsig-key-file: %w", err)
	}
	rep, err := dnsreport.NewReporter(n.cfg.DNS.Reporter, client, dnsreport.SystemClock{},
		mrand.New(mrand.NewPCG(rng.Uint64(), rng.Uint64())), n.log.Named("dns"), n.onDNSResult)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	rcfg := n.cfg.Reps
	if rcfg.Zone == "" {
		rcfg.Zone = n.cfg.Domain
	}
	rcfg.Domain = n.cfg.Domain
	rcfg.Records = n.cfg.DNS.Records
	reader := &reps.DNSReader{
		Exchanger: client.Exchanger(), Servers: client.Servers(),
		Zone: rcfg.Zone, Domain: rcfg.Domain,
	}
	if n.deps.TSIGKey != nil {
		reader.Transfer = reps.TransferWithKey(n.deps.TSIGKey, n.cfg.DNS.Client.Timeout)
	}
	mgr, err := reps.New(rcfg, reps.Deps{
		Ring: n.cl.Node(), Prober: n.cl.Transport(), Publisher: rep, Reader: reader,
		Members: n.cl.Members, Logger: n.log.Named("reps"),
		Hooks: reps.Hooks{
			RepStatus: func(is bool) {
				v := 0.0
				if is {
					v = 1
				}
				n.metrics.isRep.Set(v)
			},
			RepSetSize:     func(k int) { n.metrics.repSetSize.Set(float64(k)) },
			DeletionSent:   func(role string) { n.metrics.deletionsSent.WithLabelValues(role).Inc() },
			NeighborFailed: func(role string) { n.metrics.repFailures.WithLabelValues(role).Inc() },
		},
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.reporter = rep
	n.reps.Store(mgr)
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		_ = rep.Run(ctx)
	}()
	go func() {
		defer n.wg.Done()
		_ = mgr.Run(ctx)
	}()
	return nil
}

func (n *Node) onDNSResult(r dnsreport.Result) {
	n.metrics.dnsUpdates.WithLabelValues(r.Op, r.Outcome, r.Role).Inc()
	if r.Err != nil {
		n.log.Warn("node: DNS update failed; will retry", zap.String("op", r.Op), zap.String("role", r.Role),
			zap.String("key", r.Key), zap.Int("attempt", r.Attempt), zap.Error(r.Err))
	}
}

// withdrawDNS deletes this node's own records (if it published any) and
// waits for DNS to confirm, bounded by ctx.
func (n *Node) withdrawDNS(ctx context.Context) error {
	mgr := n.reps.Load()
	if mgr == nil {
		return nil
	}
	start := time.Now()
	if err := mgr.Leave(ctx); err != nil {
		return fmt.Errorf("node: withdraw DNS records: %w", err)
	}
	n.log.Info("node: own DNS records withdrawn", zap.Duration("took", time.Since(start)))
	return nil
}
