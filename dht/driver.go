package dht

import (
	"context"
	"math/rand"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Driver runs a Node's maintenance rounds on timers with jitter: the only
// place in this package that owns goroutines and tickers.
type Driver struct {
	n       *Node
	cfg     Config
	log     *zap.Logger
	members func() []Peer

	// withTimeout bounds a round or a probe; context.WithTimeout, but
	// replaceable so tests end deadlines on a fake clock.
	withTimeout func(context.Context, time.Duration) (context.Context, context.CancelFunc)

	rngMu sync.Mutex
	rng   *rand.Rand
}

// NewDriver returns a driver for n. members, if not nil, returns the peers
// the gossip layer knows about; they are offered to the node periodically
// (Node.Consider) so rings split by a partition merge again.
func NewDriver(n *Node, rng *rand.Rand, log *zap.Logger, members func() []Peer) *Driver {
	if log == nil {
		log = zap.NewNop()
	}
	if rng == nil {
		rng = rand.New(rand.NewSource(time.Now().UnixNano()))
	}
	return &Driver{n: n, cfg: n.cfg, log: log, members: members, rng: rng, withTimeout: context.WithTimeout}
}

// Run drives the node until ctx is done. It blocks.
func (d *Driver) Run(ctx context.Context) {
	var wg sync.WaitGroup
	loop := func(every time.Duration, round func(ctx context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTimer(d.jitter(every))
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				round(ctx)
				t.Reset(d.jitter(every))
			}
		}()
	}
	loop(d.cfg.StabilizeInterval, d.stabilizeRound)
	loop(d.cfg.FixFingersInterval, func(ctx context.Context) {
		rctx, cancel := context.WithTimeout(ctx, 4*d.cfg.RPCTimeout)
		defer cancel()
		if d.members != nil {
			d.n.Consider(rctx, d.members())
		}
		if err := d.n.FixFingers(rctx); err != nil && ctx.Err() == nil {
			d.log.Debug("dht: fix-fingers", zap.Error(err))
		}
	})
	loop(d.cfg.MaintainInterval, func(ctx context.Context) {
		rctx, cancel := context.WithTimeout(ctx, 10*d.cfg.RPCTimeout)
		defer cancel()
		st, err := d.n.Maintain(rctx)
		if err != nil && ctx.Err() == nil {
			d.log.Debug("dht: maintain", zap.Error(err))
		}
		if st.Pushed+st.Pulled+st.HandedOff+st.Expired > 0 {
			d.log.Debug("dht: maintenance", zap.Int("pushed", st.Pushed), zap.Int("pulled", st.Pulled),
				zap.Int("handed_off", st.HandedOff), zap.Int("expired", st.Expired))
		}
	})
	loop(d.cfg.ProbeInterval, d.probeRound)
	wg.Wait()
}

// stabilizeRound runs check-predecessor, bounded by ProbeTimeout (a silent
// predecessor must not eat the round), then stabilize, bounded by
// RPCTimeout.
func (d *Driver) stabilizeRound(ctx context.Context) {
	pctx, cancel := d.withTimeout(ctx, d.cfg.ProbeTimeout)
	err := d.n.CheckPredecessor(pctx)
	cancel()
	if err != nil && ctx.Err() == nil {
		d.log.Debug("dht: check-predecessor", zap.Error(err))
	}
	rctx, cancel := d.withTimeout(ctx, d.cfg.RPCTimeout)
	defer cancel()
	if err := d.n.Stabilize(rctx); err != nil && ctx.Err() == nil {
		d.log.Debug("dht: stabilize", zap.Error(err))
	}
}

// probeRound pings the neighbours concurrently, each bounded by
// ProbeTimeout; it returns when every ping has.
func (d *Driver) probeRound(ctx context.Context) {
	d.n.ProbeNeighbors(ctx, func() (context.Context, context.CancelFunc) {
		return d.withTimeout(ctx, d.cfg.ProbeTimeout)
	})
}

// jitter returns every randomised by ±Jitter.
func (d *Driver) jitter(every time.Duration) time.Duration {
	if d.cfg.Jitter == 0 {
		return every
	}
	d.rngMu.Lock()
	f := 1 + d.cfg.Jitter*(2*d.rng.Float64()-1)
	d.rngMu.Unlock()
	return time.Duration(float64(every) * f)
}
