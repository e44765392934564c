package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/dsn-ims/dsn/node"
)

// printer writes the human-readable progress lines, each prefixed with the
// time since the demo started. Safe for concurrent use.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func newPrinter(w io.Writer, start time.Time) *printer { return &printer{w: w, start: start} }

// say prints one progress line.
func (p *printer) say(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%6.2fs  %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// raw prints text as it is (the summary table).
func (p *printer) raw(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	io.WriteString(p.w, s)
}

// secs formats a duration as seconds with two decimals.
func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// millis formats a duration as whole milliseconds (tenths below 10 ms).
func millis(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

// tally is what a set of calls came to.
type tally struct {
	Attempted, OK int
	// FailedOver counts calls that completed on the next SRV target after
	// the first one sent nothing back.
	FailedOver int
	// Failed counts failed calls by cause (an explained cause or the
	// SIP/transport error of an unexplained one).
	Failed map[string]int
	// Unexplained is how many of the failed calls have no crash to blame.
	Unexplained int
	// ViaRep counts answered calls by the representative that took the
	// INVITE (the node at the target that answered).
	ViaRep map[string]int
	Setup  []time.Duration // setup times (INVITE to 200) of the calls that worked
}

func newTally() *tally { return &tally{Failed: map[string]int{}, ViaRep: map[string]int{}} }

// add counts one call; why is its failure cause ("" for a call that
// worked) and explained whether the crash accounts for it.
func (t *tally) add(c *call, why string, explained bool) {
	t.Attempted++
	if c.OK {
		t.OK++
		t.Setup = append(t.Setup, c.Setup)
		if len(c.Attempts) > 1 {
			t.FailedOver++
		}
		t.ViaRep[c.Via]++
		return
	}
	t.Failed[why]++
	if !explained {
		t.Unexplained++
	}
}

func (t *tally) failed() int { return t.Attempted - t.OK }

// setupStats gives the median and maximum setup time.
func (t *tally) setupStats() (median, maxSetup time.Duration) {
	if len(t.Setup) == 0 {
		return 0, 0
	}
	s := slices.Clone(t.Setup)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}

// line is the one-line account of a tally: "200/200 ok (median setup
// 4.1 ms, max 12 ms; via sn2: 104, sn4: 96)".
func (t *tally) line() string {
	med, mx := t.setupStats()
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d ok", t.OK, t.Attempted)
	if t.OK > 0 {
		fmt.Fprintf(&b, " (median setup %s, max %s; via %s)", millis(med), millis(mx), countList(t.ViaRep))
	}
	if t.FailedOver > 0 {
		fmt.Fprintf(&b, "; %d completed on the next SRV target after the first stayed silent", t.FailedOver)
	}
	if n := t.failed(); n > 0 {
		fmt.Fprintf(&b, "; %d failed: %s", n, countList(t.Failed))
	}
	return b.String()
}

// countList renders "a: 3, b: 1" sorted by key.
func countList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// nodeRow is one line of the per-node table.
type nodeRow struct {
	Name, SIP       string
	Killed          bool
	Rep             bool
	Owned, Replica  int
	RegisteredVia   int // phones whose current registration went through this node
	Answered        int // calls this node took as the representative
	HomeOfPhones    int // phones homed here (by a ring look-up at the end)
	StatusAvailable bool
}

// summary is everything the final table shows.
type summary struct {
	Phones, Reregistered int
	Phases               []phaseResult
	Failover             *failoverResult
	Nodes                []nodeRow
	Shutdown             string
}

// phaseResult names a tally.
type phaseResult struct {
	Name string
	T    *tally
}

// render writes the summary table.
func (s *summary) render() string {
	var b strings.Builder
	b.WriteString("\nsummary\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  phones\t%d registered", s.Phones)
	if s.Reregistered > 0 {
		fmt.Fprintf(tw, " (%d registered again through another node after their edge node died)", s.Reregistered)
	}
	fmt.Fprintln(tw)
	tw.Flush()

	b.WriteString("\n  calls\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "    phase\tattempted\tok\tfailed\tnext SRV target\tmedian setup\tmax setup\t")
	total := newTally()
	for _, ph := range s.Phases {
		med, mx := ph.T.setupStats()
		fmt.Fprintf(tw, "    %s\t%d\t%d\t%d\t%d\t%s\t%s\t\n", ph.Name, ph.T.Attempted, ph.T.OK, ph.T.failed(), ph.T.FailedOver, millis(med), millis(mx))
		total.Attempted += ph.T.Attempted
		total.OK += ph.T.OK
		total.FailedOver += ph.T.FailedOver
		for k, v := range ph.T.Failed {
			total.Failed[k] += v
		}
	}
	fmt.Fprintf(tw, "    total\t%d\t%d\t%d\t%d\t\t\t\n", total.Attempted, total.OK, total.failed(), total.FailedOver)
	tw.Flush()
	if len(total.Failed) > 0 {
		b.WriteString("    failed calls, by cause:\n")
		keys := make([]string, 0, len(total.Failed))
		for k := range total.Failed {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "      %4d  %s\n", total.Failed[k], k)
		}
	}

	if f := s.Failover; f != nil {
		fmt.Fprintf(&b, "\n  failover (representative %s crashed at %s)\n", f.Dead, f.KilledAt)
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		row := func(what string, d time.Duration, ok bool, extra string) {
			v := "not within the limit"
			if ok {
				v = secs(d)
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\n", what, v, extra)
		}
		row("ring repaired (no live node points at it)", f.RingRepaired, f.RingRepairedOK, "")
		row("DNS forgot it (A, SRV targets)", f.DNSForgot, f.DNSForgotOK, "")
		row("replacement published", f.Replaced, f.ReplacedOK, f.Replacement)
		if f.EdgePhones > 0 {
			row(fmt.Sprintf("its %d phones registered elsewhere", f.EdgePhones), f.Reregistered, f.ReregisteredOK, "")
		}
		tw.Flush()
		fmt.Fprintf(&b, "    (%d phones were homed on it, %d had registered through it)\n", f.HomePhones, f.EdgePhones)
		if len(f.Failures) > 0 {
			b.WriteString("    failed calls (start relative to the crash, callee, cause: error):\n")
			for _, l := range f.Failures {
				fmt.Fprintf(&b, "      %s\n", l)
			}
		}
	}

	b.WriteString("\n  nodes\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "    node\tSIP\trole\towned\treplica\thome of\tregistered via\tcalls taken\t")
	for _, n := range s.Nodes {
		role := "-"
		switch {
		case n.Killed:
			role = "killed"
		case n.Rep:
			role = "rep"
		}
		owned, replica, home := "-", "-", "-"
		if n.StatusAvailable {
			owned, replica, home = fmt.Sprint(n.Owned), fmt.Sprint(n.Replica), fmt.Sprint(n.HomeOfPhones)
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n", n.Name, n.SIP, role, owned, replica, home, n.RegisteredVia, n.Answered)
	}
	tw.Flush()
	b.WriteString("    (owned/replica: registrations stored, from StatusSnapshot; home of: phones whose AOR the node owns)\n")
	if s.Shutdown != "" {
		fmt.Fprintf(&b, "\n  shutdown: %s\n", s.Shutdown)
	}
	return b.String()
}

// statusRow fills a nodeRow from a live node's status.
func statusRow(m *member, st node.Status) nodeRow {
	r := nodeRow{Name: m.Name, SIP: m.SIP, Killed: m.Killed, StatusAvailable: !m.Killed}
	if !m.Killed {
		r.Rep = st.Representative
		r.Owned, r.Replica = st.Registrations.Owned, st.Registrations.Replica
	}
	return r
}
