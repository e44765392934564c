package reps

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Run drives the Manager until ctx ends: an election at once and every
// ElectInterval (and, at most once per ProbeInterval, when the ring around
// this node changes), probes of the watched representatives whenever one
// falls due (and at once when the ring reports one failed), and a
// reconciliation every ReconcileInterval. The three loops run in their own
// goroutines, so a slow DNS read never delays failure detection. Run
// blocks until ctx ends and returns ctx.Err().
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { m.electLoop(ctx) })
	wg.Go(func() { m.probeLoop(ctx) })
	if m.reader != nil && m.cfg.ReconcileInterval > 0 {
		wg.Go(func() { m.reconcileLoop(ctx) })
	}
	wg.Wait()
	return ctx.Err()
}

func (m *Manager) electLoop(ctx context.Context) {
	for {
		if err := m.Elect(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrLeaving) {
			m.log.Warn("reps: election failed; keeping the previous representative set", zap.Error(err))
		}
		// Kicked elections are rate-limited to one per ProbeInterval.
		if !m.wait(ctx, m.cfg.ProbeInterval, nil) {
			return
		}
		if !m.wait(ctx, m.cfg.ElectInterval-m.cfg.ProbeInterval, m.electKick) {
			return
		}
	}
}

func (m *Manager) probeLoop(ctx context.Context) {
	for {
		m.Probe(ctx)
		d := m.cfg.ProbeInterval
		if next := m.NextProbe(); !next.IsZero() {
			d = min(d, next.Sub(m.clock.Now()))
		}
		if !m.wait(ctx, d, m.probeKick) {
			return
		}
	}
}

func (m *Manager) reconcileLoop(ctx context.Context) {
	for {
		if !m.wait(ctx, m.cfg.ReconcileInterval, nil) {
			return
		}
		if _, err := m.Reconcile(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("reps: reconciliation failed; retrying next interval", zap.Error(err))
		}
	}
}

// wait returns after d, or earlier when kick fires; false when ctx ended.
func (m *Manager) wait(ctx context.Context, d time.Duration, kick <-chan struct{}) bool {
	if d <= 0 {
		select {
		case <-ctx.Done():
			return false
		default:
			return true
		}
	}
	select {
	case <-ctx.Done():
		return false
	case <-kick:
	case <-m.clock.After(d):
	}
	return true
}
