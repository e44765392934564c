package churn

import (
	"fmt"
	"strings"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// Signals a victim gets.
const (
	SigKill = "kill -9"
	SigTerm = "SIGTERM"
)

// eventPlan is what one event will do, chosen on the test goroutine.
type eventPlan struct {
	N       int
	Victims []string // one node, or two ring neighbours (predecessor first)
	Signals []string
	Down    time.Duration
}

// plan picks the victims of event n: a random node and, for a pair event,
// its ring successor; a signal for each; and the down time.
func (r *runner) plan(n int) eventPlan {
	pair := r.rng.Float64() < r.cfg.PairShare
	if r.cfg.PairEvery > 0 {
		pair = (n+1)%r.cfg.PairEvery == 0
	}
	i := r.rng.IntN(len(r.order))
	p := eventPlan{N: n, Victims: []string{r.order[i]}}
	if pair {
		p.Victims = append(p.Victims, r.order[(i+1)%len(r.order)])
	}
	for range p.Victims {
		sig := SigTerm
		if r.rng.Float64() < r.cfg.KillShare {
			sig = SigKill
		}
		p.Signals = append(p.Signals, sig)
	}
	p.Down = r.cfg.DownMin + time.Duration(r.rng.Int64N(int64(r.cfg.DownMax-r.cfg.DownMin)+1))
	return p
}

// EventResult is what one event did and how long the fleet took to be
// consistent again, after the kill and after the restart.
type EventResult struct {
	N       int
	Victims []string
	Signals []string
	// Reps is set for the victims that were representatives when the
	// event started.
	Reps []bool
	// KillAt: the signals were sent. RestartAt: the first restart began;
	// ReadyAt: every victim serves again; SettledAt: DNS, ring and copies
	// had been consistent for StableFor (or SettleTimeout passed).
	KillAt, RestartAt, ReadyAt, SettledAt time.Time
	// AfterKill: from KillAt, when each check last turned true before the
	// restart (-1: still false at the restart). AfterRestart: the same
	// from ReadyAt until settled (-1: not settled within SettleTimeout).
	AfterKill, AfterRestart settle
	// Errors: a SIGTERM exit that was not clean, a restart that failed,
	// the reason it did not settle.
	Errors []string
}

// repsBefore reports which victims are representatives in the view of a
// live node that is not a victim.
func (r *runner) repsBefore(victims []string) []bool {
	out := make([]bool, len(victims))
	for _, p := range r.live() {
		if contains(victims, p.Name) {
			continue
		}
		st, err := p.Status()
		if err != nil {
			continue
		}
		for i, v := range victims {
			for _, rp := range st.Representatives {
				if rp.Name == v {
					out[i] = true
				}
			}
		}
		break
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// runEvent signals the victims, watches the fleet until their restart,
// restarts them under their names and addresses, and watches until the
// fleet is settled. It runs on its own goroutine and must not use the TB.
func (r *runner) runEvent(p eventPlan) EventResult {
	ev := EventResult{N: p.N, Victims: p.Victims, Signals: p.Signals, Reps: r.repsBefore(p.Victims)}
	old := map[string]*fleet.Proc{}
	r.mu.Lock()
	ev.KillAt = time.Now()
	for _, v := range p.Victims {
		old[v] = r.procs[v]
		r.down[v] = true
		r.downs[v] = append(r.downs[v], interval{From: ev.KillAt})
	}
	r.mu.Unlock()
	exited := make(chan string, len(p.Victims))
	for i, v := range p.Victims {
		go func(proc *fleet.Proc, sig string) {
			if sig == SigKill {
				proc.Kill()
				exited <- ""
				return
			}
			if err := proc.Term(20 * time.Second); err != nil {
				exited <- fmt.Sprintf("%s: SIGTERM: %v", proc.Name, err)
				return
			}
			exited <- ""
		}(old[v], p.Signals[i])
	}
	ss, _ := r.observe(r.cfg.AORs, ev.KillAt, ev.KillAt.Add(p.Down), false)
	for range p.Victims {
		if e := <-exited; e != "" {
			ev.Errors = append(ev.Errors, e)
		}
	}
	ev.AfterKill = settleTimes(ev.KillAt, ss)

	ev.RestartAt = time.Now()
	for _, v := range p.Victims {
		np, err := r.restart(old[v])
		if err != nil {
			ev.Errors = append(ev.Errors, err.Error())
			continue
		}
		r.mu.Lock()
		r.procs[v] = np
		r.down[v] = false
		iv := r.downs[v]
		iv[len(iv)-1].To = time.Now()
		r.mu.Unlock()
	}
	ev.ReadyAt = time.Now()
	ss, err := r.observe(r.cfg.AORs, ev.ReadyAt, ev.ReadyAt.Add(r.cfg.SettleTimeout), true)
	if err != nil {
		ev.Errors = append(ev.Errors, err.Error())
	}
	ev.SettledAt = time.Now()
	ev.AfterRestart = settleTimes(ev.ReadyAt, ss)
	return ev
}

// restart starts old's node again under its name, on the same SIP,
// cluster and admin addresses, joined to two live nodes. A port may still
// be held for a moment after a crash: it tries up to three times.
func (r *runner) restart(old *fleet.Proc) (*fleet.Proc, error) {
	var join []string
	for _, p := range r.live() {
		if len(join) < 2 {
			join = append(join, p.Cluster)
		}
	}
	args := append(r.nodeArgs(), "-sip", old.SIP, "-cluster", old.Cluster, "-admin", old.Admin)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var np *fleet.Proc
		np, err = r.f.TryStart(old.Name, old.IP, r.f.KeyFile, join, args...)
		if err == nil {
			return np, nil
		}
		time.Sleep(time.Second)
	}
	return nil, fmt.Errorf("churn: restart %s: %w", old.Name, err)
}

// Line is the event as one line of the report, times relative to t0.
func (ev EventResult) Line(t0 time.Time) string {
	var vs []string
	for i, v := range ev.Victims {
		s := v + " (" + ev.Signals[i]
		if ev.Reps[i] {
			s += ", representative"
		}
		vs = append(vs, s+")")
	}
	out := fmt.Sprintf("t=%5.1fs %-58s down %4.1fs; after kill: DNS %s ring %s copies %s; after restart: DNS %s ring %s copies %s",
		ev.KillAt.Sub(t0).Seconds(), strings.Join(vs, " + "), ev.ReadyAt.Sub(ev.KillAt).Seconds(),
		secs(ev.AfterKill.DNS), secs(ev.AfterKill.Ring), secs(ev.AfterKill.Copies),
		secs(ev.AfterRestart.DNS), secs(ev.AfterRestart.Ring), secs(ev.AfterRestart.Copies))
	if len(ev.Errors) > 0 {
		out += "; ERRORS: " + strings.Join(ev.Errors, "; ")
	}
	return out
}

func secs(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
