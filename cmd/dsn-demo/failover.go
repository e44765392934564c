package main

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/sip/registrar"
)

// failoverConfig tunes the crash step.
type failoverConfig struct {
	// Poll is the period of the DNS (and ring) checks after the crash.
	Poll time.Duration
	// CallInterval is the pace of the calls placed during failover.
	CallInterval time.Duration
	// Limit bounds the wait for recovery (ring repaired, DNS forgot the
	// dead node, replacement published, phones registered elsewhere).
	Limit time.Duration
	// Settle is how long calls continue after recovery.
	Settle time.Duration
}

// failoverResult is what the crash step measured. Durations count from
// the moment node.Close was called on the representative.
type failoverResult struct {
	Dead     string
	DeadSIP  string
	KilledAt string // time since the demo started, for the summary

	RingRepaired   time.Duration
	RingRepairedOK bool
	DNSForgot      time.Duration
	DNSForgotOK    bool
	Replaced       time.Duration
	ReplacedOK     bool
	Replacement    string
	Reregistered   time.Duration // the last of the dead node's phones
	ReregisteredOK bool

	HomePhones, EdgePhones int
	Calls                  *tally
	// Failures describes each failed call: when it started relative to
	// the crash, the callee, the cause and the error seen.
	Failures []string
}

// crash is the state the classification of failover calls needs.
type crash struct {
	victim     *member
	addr       netip.AddrPort
	at         time.Time
	homeBefore map[*phone]string
	ringAt     time.Time // zero while the ring still points at the victim
}

// homes asks the ring (through asker) for each phone's home node.
func homes(ctx context.Context, asker *member, phones []*phone) (map[*phone]string, error) {
	out := make(map[*phone]string, len(phones))
	for _, p := range phones {
		aor, err := registrar.CanonicalAOR(p.AOR)
		if err != nil {
			return nil, err
		}
		res, err := asker.Node.Ring().Lookup(ctx, dht.HashKey(aor))
		if err != nil {
			return nil, fmt.Errorf("home of %s: %w", aor, err)
		}
		out[p] = res.Owner.Name
	}
	return out, nil
}

// failover crashes the representative victim (node.Close: no leave, no
// DNS withdrawal, exactly what the others see of a crash), places calls at
// a steady pace throughout, and measures when the ring, DNS and the
// phones have dealt with it.
func (d *demo) failover(ctx context.Context, victim *member, repsBefore []publishedRep) (*failoverResult, error) {
	f, cfg := d.fleet, d.o.failover
	var asker *member
	for _, m := range f.live() {
		if m != victim {
			asker = m
			break
		}
	}
	before, err := homes(ctx, asker, d.phones.phones)
	if err != nil {
		return nil, err
	}
	cr := &crash{victim: victim, addr: netip.MustParseAddrPort(victim.SIP), homeBefore: before}
	res := &failoverResult{Dead: victim.Name, DeadSIP: victim.SIP, Calls: newTally()}
	var edgePhones []*phone
	for _, p := range d.phones.phones {
		if before[p] == victim.Name {
			res.HomePhones++
		}
		if p.Edge() == victim {
			edgePhones = append(edgePhones, p)
		}
	}
	res.EdgePhones = len(edgePhones)
	victimIP := cr.addr.Addr()

	// Calls at a steady pace from just before the crash until recovery
	// plus Settle.
	var mu sync.Mutex
	var calls []*call
	var wg sync.WaitGroup
	stop, paced := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(paced)
		t := time.NewTicker(cfg.CallInterval)
		defer t.Stop()
		for {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl := d.caller.place(ctx, d.pickCallee(), d.nodeName)
				mu.Lock()
				calls = append(calls, cl)
				mu.Unlock()
			}()
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	stopCalls := func() {
		close(stop)
		<-paced
		wg.Wait()
	}

	cr.at = time.Now()
	res.KilledAt = fmt.Sprintf("+%s", secs(cr.at.Sub(d.start)))
	victim.Killed = true
	closed := make(chan time.Duration, 1)
	go func() {
		victim.Node.Close()
		closed <- time.Since(cr.at)
	}()
	d.out.say("killed representative %s (%s): node.Close, no leave and no DNS withdrawal (a crash as the others see it); calls continue every %s",
		victim.Name, victim.SIP, millis(cfg.CallInterval))
	if len(edgePhones) > 0 || res.HomePhones > 0 {
		d.out.say("%s was home of %d phones and the edge (registered through) of %d", victim.Name, res.HomePhones, len(edgePhones))
	}

	oldReps := map[string]bool{}
	for _, r := range repsBefore {
		oldReps[r.Label] = true
	}
	want := min(d.o.reps, len(f.live()))
	deadline := time.NewTimer(cfg.Limit)
	defer deadline.Stop()
	poll := time.NewTicker(cfg.Poll)
	defer poll.Stop()
	var recovered time.Time
	for recovered.IsZero() || time.Since(recovered) < cfg.Settle {
		select {
		case <-ctx.Done():
			stopCalls()
			if closed != nil {
				<-closed
			}
			return res, ctx.Err()
		case <-deadline.C:
			recovered = time.Now().Add(-cfg.Settle) // give up waiting; report what happened
			continue
		case took := <-closed:
			closed = nil
			d.out.say("node.Close of %s returned after %s", victim.Name, millis(took))
		case <-poll.C:
		}
		since := time.Since(cr.at)
		if !res.RingRepairedOK && f.forgotten(victim) {
			res.RingRepaired, res.RingRepairedOK, cr.ringAt = since, true, time.Now()
			d.out.say("ring repaired after %s: no live node has %s as predecessor or successor", secs(since), victim.Name)
		}
		if !res.DNSForgotOK {
			if in, err := f.view.mentions(ctx, victimIP); err == nil && !in {
				res.DNSForgot, res.DNSForgotOK = since, true
				d.out.say("DNS forgot %s after %s (no A or SRV target gives %s)", victim.Name, secs(since), victimIP)
			}
		}
		if !res.ReplacedOK {
			if pub, err := f.view.reps(ctx); err == nil && len(pub) == want && !containsLabel(pub, victim.Name) {
				var fresh []string
				for _, p := range pub {
					if !oldReps[p.Label] {
						fresh = append(fresh, p.String())
					}
				}
				res.Replaced, res.ReplacedOK, res.Replacement = since, true, strings.Join(fresh, ", ")
				d.out.say("replacement %s published after %s", res.Replacement, secs(since))
			}
		}
		if !res.ReregisteredOK && allMoved(edgePhones, victim) {
			res.ReregisteredOK = true
			if len(edgePhones) > 0 {
				res.Reregistered = lastRereg(d.phones.reregistrations(), victim.Name).Sub(cr.at)
				d.out.say("%d phones registered through other nodes; the last %s after the crash", len(edgePhones), secs(res.Reregistered))
			}
		}
		if recovered.IsZero() && res.RingRepairedOK && res.DNSForgotOK && res.ReplacedOK && res.ReregisteredOK {
			recovered = time.Now()
		}
	}
	stopCalls()
	if closed != nil {
		<-closed
	}
	sort.Slice(calls, func(i, j int) bool { return calls[i].Started.Before(calls[j].Started) })
	for _, cl := range calls {
		why, explained := cr.classify(cl)
		res.Calls.add(cl, why, explained)
		if !cl.OK {
			res.Failures = append(res.Failures, fmt.Sprintf("%+.2f s  %s  %s: %v (Call-ID %s)",
				cl.Started.Sub(cr.at).Seconds(), cl.Callee.Number, why, cl.Err, cl.CallID))
		}
	}
	return res, nil
}

func containsLabel(pub []publishedRep, label string) bool {
	for _, p := range pub {
		if p.Label == label {
			return true
		}
	}
	return false
}

// allMoved reports whether none of ps is still registered through dead.
func allMoved(ps []*phone, dead *member) bool {
	for _, p := range ps {
		if p.Edge() == dead {
			return false
		}
	}
	return true
}

// lastRereg is the time of the last re-registration away from node.
func lastRereg(rs []reregistration, node string) time.Time {
	var last time.Time
	for _, r := range rs {
		if r.From == node && r.At.After(last) {
			last = r.At
		}
	}
	return last
}

// Causes of failed calls that the crash explains.
const (
	whyDeadTarget = "sent to the dead representative (DNS still named it)"
	whyInFlight   = "in progress at the dead node when it crashed"
	whyEdge       = "callee registered through the dead node, not yet registered elsewhere"
	whyHome       = "callee homed on the dead node, ring not yet repaired"
)

// classify says why a failover call failed and whether the crash
// explains it.
func (cr *crash) classify(cl *call) (why string, explained bool) {
	if cl.OK {
		return "", true
	}
	victim := cr.victim.Name
	onlyVictim := len(cl.Attempts) > 0
	for _, a := range cl.Attempts {
		if a.Target != cr.addr {
			onlyVictim = false
		}
	}
	switch {
	case cl.allSilent() && onlyVictim:
		return whyDeadTarget, true
	case cl.Via == victim && cl.Started.Before(cr.at):
		return whyInFlight, true
	case cl.Callee != nil && cl.Edge == victim:
		return whyEdge, true
	case cl.Callee != nil && cr.homeBefore[cl.Callee] == victim && (cr.ringAt.IsZero() || cl.Started.Before(cr.ringAt)):
		return whyHome, true
	}
	return unexplained(cl), false
}

// unexplained names the failure of a call no crash accounts for.
func unexplained(cl *call) string {
	if cl.Err == nil {
		return "failed without an error"
	}
	return "unexplained: " + cl.Err.Error()
}

// sortedNames renders reps as "sn2 (127.0.0.12:5060), sn4 (...)".
func sortedNames(reps []publishedRep) string {
	s := make([]string, 0, len(reps))
	for _, r := range reps {
		s = append(s, r.String())
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}
