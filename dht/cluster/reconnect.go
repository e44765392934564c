package cluster

import (
	"context"
	"math/rand"
	"slices"
	"time"

	"go.uber.org/zap"
)

// failedMember is a member gossip declared dead: where to find it again,
// and since when.
type failedMember struct {
	addr  string
	since time.Time
}

// noteFailed remembers a member memberlist declared dead (NotifyLeave: a
// crash, a partition, or a graceful leave, which memberlist does not tell
// apart in its callback), so reconnect can try it again.
func (c *Cluster) noteFailed(name, addr string) {
	c.failedMu.Lock()
	c.failed[name] = failedMember{addr: addr, since: time.Now()}
	c.failedMu.Unlock()
}

// forgetFailed drops name: memberlist sees it alive again.
func (c *Cluster) forgetFailed(name string) {
	c.failedMu.Lock()
	delete(c.failed, name)
	c.failedMu.Unlock()
}

// reconnectLoop runs reconnectOnce every ReconnectInterval until ctx is
// done.
func (c *Cluster) reconnectLoop(ctx context.Context, rng *rand.Rand) {
	t := time.NewTicker(c.cfg.ReconnectInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if ctx.Err() == nil {
				c.reconnectOnce(now, rng)
			}
		}
	}
}

// reconnectOnce forgets the members dead for longer than ReconnectTimeout
// and tries to join one of the others, picked with rng, as Serf does: a
// join is a push/pull state exchange, so reaching one member of the other
// side of a healed partition merges both member lists (and, through
// Node.Consider, both rings). It returns the name tried ("" when there was
// none) and whether the join succeeded. It blocks for the join (at most
// memberlist's TCPTimeout).
func (c *Cluster) reconnectOnce(now time.Time, rng *rand.Rand) (string, bool) {
	c.failedMu.Lock()
	names := make([]string, 0, len(c.failed))
	for name, f := range c.failed {
		if now.Sub(f.since) > c.cfg.ReconnectTimeout {
			delete(c.failed, name)
			continue
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		c.failedMu.Unlock()
		return "", false
	}
	slices.Sort(names) // map order is random; rng alone decides
	name := names[rng.Intn(len(names))]
	addr := c.failed[name].addr
	c.failedMu.Unlock()

	if _, err := c.ml.Join([]string{addr}); err != nil {
		c.log.Debug("cluster: reconnect to a dead member failed", zap.String("member", name), zap.String("addr", addr), zap.Error(err))
		return name, false
	}
	c.log.Info("cluster: reconnected to a member declared dead (a partition healed)", zap.String("member", name), zap.String("addr", addr))
	return name, true
}
