package proxy

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// ackGate keeps in-dialog requests behind the ACK of their dialog's INVITE
// 2xx. sipgo hands every message to its own goroutine, so a caller's ACK
// and the BYE it sends right after can be handled in either order; without
// the gate the BYE could reach the callee first. When the proxy relays an
// INVITE 2xx on a dialog it stays on the route of (it record-routed, or the
// INVITE was in-dialog) it calls expect; when it has forwarded the ACK it
// calls acked; any other in-dialog request of that dialog waits, bounded,
// for acked. Entries no ACK ever clears go after a TTL, swept on insert.
// Safe for concurrent use.
type ackGate struct {
	clock Clock
	ttl   time.Duration

	mu      sync.Mutex
	waiting map[string]*gateEntry
	order   []gateItem // insertion order, for the TTL sweep
}

type gateEntry struct {
	acked   chan struct{} // closed by acked
	expires time.Time
}

type gateItem struct {
	key string
	e   *gateEntry
}

func newAckGate(clock Clock, ttl time.Duration) *ackGate {
	return &ackGate{clock: clock, ttl: ttl, waiting: make(map[string]*gateEntry)}
}

// dialogKey identifies a dialog the same way from both ends: Call-ID and
// the two tags in a fixed order. "" if a tag is missing.
func dialogKey(m sip.Message) string {
	from, to, cid := m.From(), m.To(), m.CallID()
	if from == nil || to == nil || cid == nil {
		return ""
	}
	ft, _ := from.Params.Get("tag")
	tt, _ := to.Params.Get("tag")
	if ft == "" || tt == "" {
		return ""
	}
	tags := []string{ft, tt}
	sort.Strings(tags)
	return strings.Join([]string{cid.Value(), tags[0], tags[1]}, "\x00")
}

// expect records that the ACK of key's INVITE 2xx is still to come. A
// second expect for a key already waiting keeps the first entry.
func (g *ackGate) expect(key string) {
	if key == "" {
		return
	}
	now := g.clock.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweepLocked(now)
	if _, ok := g.waiting[key]; ok {
		return
	}
	e := &gateEntry{acked: make(chan struct{}), expires: now.Add(g.ttl)}
	g.waiting[key] = e
	g.order = append(g.order, gateItem{key: key, e: e})
}

// acked records that the ACK of key has been forwarded and releases the
// requests waiting for it.
func (g *ackGate) acked(key string) {
	if key == "" {
		return
	}
	g.mu.Lock()
	e, ok := g.waiting[key]
	if ok {
		delete(g.waiting, key)
		close(e.acked)
	}
	g.mu.Unlock()
}

// wait blocks until key's ACK has been forwarded, bound has passed, or ctx
// ends, whichever is first; it returns at once when no ACK is awaited. It
// reports whether it had to give up waiting.
func (g *ackGate) wait(ctx context.Context, key string, bound time.Duration) (timedOut bool) {
	if key == "" {
		return false
	}
	g.mu.Lock()
	e, ok := g.waiting[key]
	g.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case <-e.acked:
		return false
	default:
	}
	expired := make(chan struct{})
	stop := g.clock.AfterFunc(bound, func() { close(expired) })
	defer stop()
	select {
	case <-e.acked:
		return false
	case <-expired:
		return true
	case <-ctx.Done():
		return true
	}
}

// size is the number of dialogs whose ACK is awaited (for tests).
func (g *ackGate) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.waiting)
}

// sweepLocked drops entries past their TTL. order holds entries in
// insertion order, so expired ones are at its front; entries acked since
// are skipped.
func (g *ackGate) sweepLocked(now time.Time) {
	n := 0
	for n < len(g.order) {
		it := g.order[n]
		if cur, ok := g.waiting[it.key]; ok && cur == it.e {
			if now.Before(it.e.expires) {
				break
			}
			delete(g.waiting, it.key)
			close(it.e.acked)
		}
		n++
	}
	if n > 0 {
		g.order = append(g.order[:0:0], g.order[n:]...)
	}
}
